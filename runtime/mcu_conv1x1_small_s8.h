/*
 * mcu_conv1x1_small_s8.h - int8 1x1 conv (any stride, no padding) over few input channels (c = 4, 8, 12, 16
 * or 32), bit-exact with TFLite's reference kernel. Called by the shape-specialised wrappers that
 * mcutool/codegen/fast_kernels.py generates (every shape argument a literal), in place of the shared conv kernel
 * (mcu_conv_gemm_s8.h), whose fixed cost per block of 2 pixels x 2 channels (~45 instructions around a tap loop
 * of c / 4 steps) held VWW's 8->16 layer at 0.33 MAC/instruction and the 16->32 ones at 0.51-0.55.
 *
 * Each pixel's c inputs are widened to int16 once (c / 2 words, the input offset added by SXTAB16): four
 * pixels into a stack buffer for c = 8 and two for c = 16 and 32 on cores with DSP (then per channel LDRD pairs
 * of inputs and weights and SMLADs in asm, each weight pair serving all the pixels), else two pixels (c <= 8) or
 * one (c = 12, and the last pixels of a row). Per output channel one record of c / 2 + 4 words: the c / 2
 * weight words (pre-widened to int16 in SXTB16 lane order, doubled for mcu_requant_x2_s8), the doubled bias, and
 * mcu_requant_x2_s8's multiplier, rounding constant and shift; one SMLAD per weight word and pixel, one SMMLAR
 * requantization per output. Without DSP (host under MCU_GEMM=1) the same loops in C.
 *
 * mcu_fc_w16_s8: a small fully connected layer (weights of at most a few KB, so that pre-widening them to int16
 * costs little flash) with the same records: two output channels per pass over the input row, each 4 inputs
 * widened once (LDR, 2 SXTAB16) for both, the two channels' weight words in one LDRD each, four SMLAD: 9.5
 * instructions per 8 MACs (asm, 16 taps per branch where k % 16 == 0, else 8), where the shared conv kernel's
 * 4-channel rows paid its per-call and per-block fixed cost over as few as 2 outputs (VWW 256->2, ResNet-8
 * 64->10, AD 128->8). Like the shared conv kernel it is one function in the image (shapes as arguments); a
 * layer's wrapper is a call.
 *
 * mcu_conv1x1_small_w4 / mcu_fc_w4_s8: the int4-weight forms of both (the packed nibbles read from flash, one
 * AND per SMLAD's weight word; see below).
 */
#ifndef MCU_CONV1X1_SMALL_S8_H
#define MCU_CONV1X1_SMALL_S8_H

#include <stdint.h>

#include "mcu_dot_s8.h"
#include "mcu_requant.h"

/* the c / 2 widened words of the pixel at p (x + x_offset), in SXTB16 lane order */
MCU_DOT_INLINE void mcu_conv1x1_widen(const int8_t* p, int32_t c, int32_t x_offset, int32_t* x)
{
#if MCU_DOT_SIMD32
    const int16x2_t off = mcu_dup16(x_offset);
    for (int32_t i = 0; i < c / 4; i++) {
        const int8x4_t u = mcu_ld_s8x4(p + 4 * i);
        x[2 * i] = (int32_t)__sxtab16(off, u);
        x[2 * i + 1] = (int32_t)mcu_sxtab16_ror8(off, u);
    }
#else
    for (int32_t i = 0; i < c / 4; i++) { /* (x0, x2), (x1, x3) as int32 pairs: the lane order */
        const int32_t v[4] = {p[4 * i] + x_offset, p[4 * i + 1] + x_offset, p[4 * i + 2] + x_offset,
                              p[4 * i + 3] + x_offset};
        x[2 * i] = (int32_t)(((uint32_t)v[0] & 0xFFFFu) | ((uint32_t)v[2] << 16));
        x[2 * i + 1] = (int32_t)(((uint32_t)v[1] & 0xFFFFu) | ((uint32_t)v[3] << 16));
    }
#endif
}

/* acc + the dot product of n widened input words and n weight words (pairs of int16 each) */
MCU_DOT_INLINE int32_t mcu_conv1x1_dot(const int32_t* x, const int32_t* wd, int32_t n, int32_t acc)
{
    for (int32_t j = 0; j < n; j++) {
        int32_t wj;
        __builtin_memcpy(&wj, wd + j, 4);
#if MCU_DOT_SIMD32
        acc = __smlad(x[j], wj, acc);
#else
        acc += (int32_t)(int16_t)(x[j] & 0xFFFF) * (int32_t)(int16_t)(wj & 0xFFFF) + (x[j] >> 16) * (wj >> 16);
#endif
    }
    return acc;
}

#if MCU_DOT_SIMD32 && defined(__GNUC__)
/* c = 16, two pixels: their 8 + 8 widened words xw[0..15] (8-byte aligned) against one channel's 8 weight words
 * wd[0..7]: 4 LDRD of weights, 8 of inputs, 16 SMLAD */
MCU_DOT_INLINE void mcu_conv1x1_c16x2(const int32_t* xw, const int32_t* wd, int32_t* acc_a, int32_t* acc_b)
{
    int32_t a = *acc_a, b = *acc_b, p, q, u, v;
#define MCU_C16_STEP(j)                                                                                        \
    "ldrd %[p], %[q], [%[w], #" #j "*8]\n\t"                                                                   \
    "ldrd %[u], %[v], [%[x], #" #j "*8]\n\t"                                                                   \
    "smlad %[a], %[u], %[p], %[a]\n\t"                                                                         \
    "smlad %[a], %[v], %[q], %[a]\n\t"                                                                         \
    "ldrd %[u], %[v], [%[x], #32+" #j "*8]\n\t"                                                                \
    "smlad %[b], %[u], %[p], %[b]\n\t"                                                                         \
    "smlad %[b], %[v], %[q], %[b]\n\t"
    __asm__(MCU_C16_STEP(0) MCU_C16_STEP(1) MCU_C16_STEP(2) MCU_C16_STEP(3)
            : [a] "+r"(a), [b] "+r"(b), [p] "=&r"(p), [q] "=&r"(q), [u] "=&r"(u), [v] "=&r"(v)
            : [x] "r"(xw), [w] "r"(wd), "m"(*(const int32_t(*)[16])xw), "m"(*(const int32_t(*)[8])wd));
#undef MCU_C16_STEP
    *acc_a = a;
    *acc_b = b;
}

/* c = 32, two pixels: xw[0..15] and xw[16..31] against 16 weight words: 8 LDRD of weights, 16 of inputs, 32 SMLAD */
MCU_DOT_INLINE void mcu_conv1x1_c32x2(const int32_t* xw, const int32_t* wd, int32_t* acc_a, int32_t* acc_b)
{
    int32_t a = *acc_a, b = *acc_b, p, q, u, v;
#define MCU_C32_STEP(j)                                                                                        \
    "ldrd %[p], %[q], [%[w], #" #j "*8]\n\t"                                                                   \
    "ldrd %[u], %[v], [%[x], #" #j "*8]\n\t"                                                                   \
    "smlad %[a], %[u], %[p], %[a]\n\t"                                                                         \
    "smlad %[a], %[v], %[q], %[a]\n\t"                                                                         \
    "ldrd %[u], %[v], [%[x], #64+" #j "*8]\n\t"                                                                \
    "smlad %[b], %[u], %[p], %[b]\n\t"                                                                         \
    "smlad %[b], %[v], %[q], %[b]\n\t"
    __asm__(MCU_C32_STEP(0) MCU_C32_STEP(1) MCU_C32_STEP(2) MCU_C32_STEP(3) MCU_C32_STEP(4) MCU_C32_STEP(5)
            MCU_C32_STEP(6) MCU_C32_STEP(7)
            : [a] "+r"(a), [b] "+r"(b), [p] "=&r"(p), [q] "=&r"(q), [u] "=&r"(u), [v] "=&r"(v)
            : [x] "r"(xw), [w] "r"(wd), "m"(*(const int32_t(*)[32])xw), "m"(*(const int32_t(*)[16])wd));
#undef MCU_C32_STEP
    *acc_a = a;
    *acc_b = b;
}

/* c = 8, four pixels: their 4 widened words each, xw[4 * i .. 4 * i + 3] (8-byte aligned), against one channel's
 * 4 weight words: 2 LDRD of weights, 8 of inputs, 16 SMLAD */
MCU_DOT_INLINE void mcu_conv1x1_c8x4(const int32_t* xw, const int32_t* wd, int32_t* acc)
{
    int32_t a = acc[0], b = acc[1], c = acc[2], d = acc[3], p, q, u, v;
#define MCU_C8_STEP(j)                                                                                         \
    "ldrd %[p], %[q], [%[w], #" #j "*8]\n\t"                                                                   \
    "ldrd %[u], %[v], [%[x], #" #j "*8]\n\t"                                                                   \
    "smlad %[a], %[u], %[p], %[a]\n\t"                                                                         \
    "smlad %[a], %[v], %[q], %[a]\n\t"                                                                         \
    "ldrd %[u], %[v], [%[x], #16+" #j "*8]\n\t"                                                                \
    "smlad %[b], %[u], %[p], %[b]\n\t"                                                                         \
    "smlad %[b], %[v], %[q], %[b]\n\t"                                                                         \
    "ldrd %[u], %[v], [%[x], #32+" #j "*8]\n\t"                                                                \
    "smlad %[c], %[u], %[p], %[c]\n\t"                                                                         \
    "smlad %[c], %[v], %[q], %[c]\n\t"                                                                         \
    "ldrd %[u], %[v], [%[x], #48+" #j "*8]\n\t"                                                                \
    "smlad %[d], %[u], %[p], %[d]\n\t"                                                                         \
    "smlad %[d], %[v], %[q], %[d]\n\t"
    __asm__(MCU_C8_STEP(0) MCU_C8_STEP(1)
            : [a] "+r"(a), [b] "+r"(b), [c] "+r"(c), [d] "+r"(d), [p] "=&r"(p), [q] "=&r"(q), [u] "=&r"(u),
              [v] "=&r"(v)
            : [x] "r"(xw), [w] "r"(wd), "m"(*(const int32_t(*)[16])xw), "m"(*(const int32_t(*)[4])wd));
#undef MCU_C8_STEP
    acc[0] = a;
    acc[1] = b;
    acc[2] = c;
    acc[3] = d;
}
#endif

/*
 * in (1, h, w, c) -> out (1, oh, ow, n_out), output pixel (oy, ox) reading input pixel (oy * sh, ox * sw);
 * rec: n_out records of c / 2 + 4 words {weight words, bias2, mult, cst, e}; sign_fix, act_min, act_max:
 * mcu_requant_x2_s8's.
 */
MCU_DOT_INLINE void mcu_conv1x1_small_s8(const int8_t* in, int8_t* out, int32_t w, int32_t c, int32_t sh,
                                         int32_t sw, int32_t oh, int32_t ow, int32_t n_out, int32_t x_offset,
                                         const int32_t* rec, int32_t sign_fix, int32_t act_min, int32_t act_max)
{
    const int32_t n = c / 2, stride = n + 4;
    for (int32_t oy = 0; oy < oh; oy++) {
        const int8_t* row = in + oy * sh * w * c;
        int32_t ox = 0;
#if MCU_DOT_SIMD32 && defined(__GNUC__)
        if (c == 16 || c == 32) { /* two pixels widened into a buffer: LDRD pairs of inputs and weights */
            for (; ox + 2 <= ow; ox += 2, out += 2 * n_out) {
                int32_t xw[32] __attribute__((aligned(8)));
                mcu_conv1x1_widen(row + ox * sw * c, c, x_offset, xw);
                mcu_conv1x1_widen(row + (ox + 1) * sw * c, c, x_offset, xw + n);
                const int32_t* r = rec;
                for (int32_t o = 0; o < n_out; o++, r += stride) {
                    int32_t a = r[n], b = r[n];
                    if (c == 16)
                        mcu_conv1x1_c16x2(xw, r, &a, &b);
                    else
                        mcu_conv1x1_c32x2(xw, r, &a, &b);
                    const int32_t m = r[n + 1], cc = r[n + 2], e = r[n + 3];
                    const int32_t ya = mcu_requant_x2_s8(a, m, cc, e, sign_fix, act_min, act_max);
                    const int32_t yb = mcu_requant_x2_s8(b, m, cc, e, sign_fix, act_min, act_max);
                    out[o] = (int8_t)ya;
                    out[n_out + o] = (int8_t)yb;
                }
            }
        }
        if (c == 8) { /* four pixels widened into a buffer: each weight LDRD serves all four */
            for (; ox + 4 <= ow; ox += 4, out += 4 * n_out) {
                int32_t xw[16] __attribute__((aligned(8)));
                for (int32_t i = 0; i < 4; i++)
                    mcu_conv1x1_widen(row + (ox + i) * sw * c, c, x_offset, xw + 4 * i);
                const int32_t* r = rec;
                for (int32_t o = 0; o < n_out; o++, r += stride) {
                    int32_t acc[4] = {r[n], r[n], r[n], r[n]};
                    mcu_conv1x1_c8x4(xw, r, acc);
                    const int32_t m = r[n + 1], cc = r[n + 2], e = r[n + 3];
                    int32_t y[4];
                    for (int32_t i = 0; i < 4; i++)
                        y[i] = mcu_requant_x2_s8(acc[i], m, cc, e, sign_fix, act_min, act_max);
                    for (int32_t i = 0; i < 4; i++)
                        out[i * n_out + o] = (int8_t)y[i];
                }
            }
        }
#endif
        if (c <= 8) { /* two pixels: each weight word serves both */
            for (; ox + 2 <= ow; ox += 2, out += 2 * n_out) {
                int32_t xa[8], xb[8];
                mcu_conv1x1_widen(row + ox * sw * c, c, x_offset, xa);
                mcu_conv1x1_widen(row + (ox + 1) * sw * c, c, x_offset, xb);
                const int32_t* r = rec;
                for (int32_t o = 0; o < n_out; o++, r += stride) {
                    const int32_t a = mcu_conv1x1_dot(xa, r, n, r[n]), b = mcu_conv1x1_dot(xb, r, n, r[n]);
                    const int32_t m = r[n + 1], cc = r[n + 2], e = r[n + 3];
                    const int32_t ya = mcu_requant_x2_s8(a, m, cc, e, sign_fix, act_min, act_max);
                    const int32_t yb = mcu_requant_x2_s8(b, m, cc, e, sign_fix, act_min, act_max);
                    out[o] = (int8_t)ya;
                    out[n_out + o] = (int8_t)yb;
                }
            }
        }
        for (; ox < ow; ox++, out += n_out) { /* one pixel (c > 8, or the last of an odd row) */
            int32_t x[16];
            mcu_conv1x1_widen(row + ox * sw * c, c, x_offset, x);
            const int32_t* r = rec;
            for (int32_t o = 0; o < n_out; o++, r += stride)
                out[o] = (int8_t)mcu_requant_x2_s8(mcu_conv1x1_dot(x, r, n, r[n]), r[n + 1], r[n + 2], r[n + 3],
                                                   sign_fix, act_min, act_max);
        }
    }
}

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 8
#define MCU_FC_NO_UNROLL _Pragma("GCC unroll 1")
#else
#define MCU_FC_NO_UNROLL
#endif

/* acc0 += x . (channel of w0), acc1 += x . (channel of w1) over k inputs (k % 8 == 0 under DSP) */
MCU_DOT_INLINE void mcu_fc_w16_pair(const int8_t* x, const int32_t* w0, const int32_t* w1, int32_t k, int32_t x_offset,
                                    int32_t* acc0, int32_t* acc1)
{
#if MCU_DOT_SIMD32 && defined(__GNUC__)
    int32_t a0 = *acc0, a1 = *acc1, m = k / 8, u, xa, xb, p, q, r, t;
    const int32_t off = (int32_t)mcu_dup16(x_offset);
#define MCU_FC_W16_STEP                                                                                        \
    "ldr %[u], [%[x]], #4\n\t"                                                                                 \
    "sxtab16 %[xa], %[off], %[u]\n\t"                                                                          \
    "sxtab16 %[xb], %[off], %[u], ror #8\n\t"                                                                  \
    "ldrd %[p], %[q], [%[w0]], #8\n\t"                                                                         \
    "ldrd %[r], %[t], [%[w1]], #8\n\t"                                                                         \
    "smlad %[a0], %[xa], %[p], %[a0]\n\t"                                                                      \
    "smlad %[a0], %[xb], %[q], %[a0]\n\t"                                                                      \
    "smlad %[a1], %[xa], %[r], %[a1]\n\t"                                                                      \
    "smlad %[a1], %[xb], %[t], %[a1]\n\t"
    if (k % 16 == 0) { /* 16 taps per branch */
        m = k / 16;
        __asm__("1:\n\t" MCU_FC_W16_STEP MCU_FC_W16_STEP MCU_FC_W16_STEP MCU_FC_W16_STEP
                "subs %[m], %[m], #1\n\t"
                "bne 1b"
                : [a0] "+r"(a0), [a1] "+r"(a1), [x] "+r"(x), [w0] "+r"(w0), [w1] "+r"(w1), [m] "+r"(m), [u] "=&r"(u),
                  [xa] "=&r"(xa), [xb] "=&r"(xb), [p] "=&r"(p), [q] "=&r"(q), [r] "=&r"(r), [t] "=&r"(t)
                : [off] "r"(off)
                : "cc", "memory");
    } else {
        __asm__("1:\n\t" MCU_FC_W16_STEP MCU_FC_W16_STEP
                "subs %[m], %[m], #1\n\t"
                "bne 1b"
                : [a0] "+r"(a0), [a1] "+r"(a1), [x] "+r"(x), [w0] "+r"(w0), [w1] "+r"(w1), [m] "+r"(m), [u] "=&r"(u),
                  [xa] "=&r"(xa), [xb] "=&r"(xb), [p] "=&r"(p), [q] "=&r"(q), [r] "=&r"(r), [t] "=&r"(t)
                : [off] "r"(off)
                : "cc", "memory");
    }
#undef MCU_FC_W16_STEP
    *acc0 = a0;
    *acc1 = a1;
#else
    int32_t xw[2];
    for (int32_t i = 0; i < k; i += 4) {
        mcu_conv1x1_widen(x + i, 4, x_offset, xw);
        *acc0 = mcu_conv1x1_dot(xw, w0 + i / 2, 2, *acc0);
        *acc1 = mcu_conv1x1_dot(xw, w1 + i / 2, 2, *acc1);
    }
#endif
}

/* the same over the row already widened into xw (k / 2 words, 8-byte aligned): the inputs by LDRD too, 7 instead
 * of 9 instructions per 8 MACs */
MCU_DOT_INLINE void mcu_fc_w16_pair_w(const int32_t* xw, const int32_t* w0, const int32_t* w1, int32_t k,
                                      int32_t* acc0, int32_t* acc1)
{
#if MCU_DOT_SIMD32 && defined(__GNUC__)
    int32_t a0 = *acc0, a1 = *acc1, m = k / 8, xa, xb, p, q, r, t;
#define MCU_FC_W16_STEPW                                                                                       \
    "ldrd %[xa], %[xb], [%[x]], #8\n\t"                                                                        \
    "ldrd %[p], %[q], [%[w0]], #8\n\t"                                                                         \
    "ldrd %[r], %[t], [%[w1]], #8\n\t"                                                                         \
    "smlad %[a0], %[xa], %[p], %[a0]\n\t"                                                                      \
    "smlad %[a0], %[xb], %[q], %[a0]\n\t"                                                                      \
    "smlad %[a1], %[xa], %[r], %[a1]\n\t"                                                                      \
    "smlad %[a1], %[xb], %[t], %[a1]\n\t"
    if (k % 16 == 0) { /* 16 taps per branch */
        m = k / 16;
        __asm__("1:\n\t" MCU_FC_W16_STEPW MCU_FC_W16_STEPW MCU_FC_W16_STEPW MCU_FC_W16_STEPW
                "subs %[m], %[m], #1\n\t"
                "bne 1b"
                : [a0] "+r"(a0), [a1] "+r"(a1), [x] "+r"(xw), [w0] "+r"(w0), [w1] "+r"(w1), [m] "+r"(m),
                  [xa] "=&r"(xa), [xb] "=&r"(xb), [p] "=&r"(p), [q] "=&r"(q), [r] "=&r"(r), [t] "=&r"(t)
                :
                : "cc", "memory");
    } else {
        __asm__("1:\n\t" MCU_FC_W16_STEPW MCU_FC_W16_STEPW
                "subs %[m], %[m], #1\n\t"
                "bne 1b"
                : [a0] "+r"(a0), [a1] "+r"(a1), [x] "+r"(xw), [w0] "+r"(w0), [w1] "+r"(w1), [m] "+r"(m),
                  [xa] "=&r"(xa), [xb] "=&r"(xb), [p] "=&r"(p), [q] "=&r"(q), [r] "=&r"(r), [t] "=&r"(t)
                :
                : "cc", "memory");
    }
#undef MCU_FC_W16_STEPW
    *acc0 = a0;
    *acc1 = a1;
#else
    *acc0 = mcu_conv1x1_dot(xw, w0, k / 2, *acc0);
    *acc1 = mcu_conv1x1_dot(xw, w1, k / 2, *acc1);
#endif
}

/*
 * in (rows, k) -> out (rows, n_out); rec: n_out records of k / 2 + 4 words {weight words, bias2, mult, cst, e},
 * 8-byte aligned; k % 8 == 0. xbuf: k / 2 words of scratch (8-byte aligned) where the wrapper can spare them
 * (each row widened once for all its channels), else 0 (widened per channel pair).
 */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((noinline, noclone, unused)) /* once in the image, shapes as arguments: the asm loop does not need
                                              them as literals, and each layer's wrapper stays a call */
#elif defined(__GNUC__)
__attribute__((noinline, unused))
#endif
MCU_KERNEL_OPT static void mcu_fc_w16_s8(const int8_t* in, int8_t* out, int32_t rows, int32_t k, int32_t n_out,
                                         int32_t x_offset, const int32_t* rec, int32_t sign_fix, int32_t act_min,
                                         int32_t act_max, int32_t* xbuf)
{
    const int32_t n = k / 2, stride = n + 4;
    for (int32_t b = 0; b < rows; b++, in += k, out += n_out) {
        const int32_t* r = rec;
        int32_t o = 0;
        if (xbuf) {
            for (int32_t i = 0; i < k; i += 4)
                mcu_conv1x1_widen(in + i, 4, x_offset, xbuf + i / 2);
            MCU_FC_NO_UNROLL
            for (; o + 2 <= n_out; o += 2, r += 2 * stride) {
                int32_t a0 = r[n], a1 = r[stride + n];
                mcu_fc_w16_pair_w(xbuf, r, r + stride, k, &a0, &a1);
                const int32_t y0 = mcu_requant_x2_s8(a0, r[n + 1], r[n + 2], r[n + 3], sign_fix, act_min, act_max);
                const int32_t y1 = mcu_requant_x2_s8(a1, r[stride + n + 1], r[stride + n + 2], r[stride + n + 3],
                                                     sign_fix, act_min, act_max);
                out[o] = (int8_t)y0;
                out[o + 1] = (int8_t)y1;
            }
        }
        MCU_FC_NO_UNROLL /* (GCC specialises the function for a single caller: unrolled, KWS's 64->12 took 1 KB) */
        for (; o + 2 <= n_out; o += 2, r += 2 * stride) {
            int32_t a0 = r[n], a1 = r[stride + n];
            mcu_fc_w16_pair(in, r, r + stride, k, x_offset, &a0, &a1);
            const int32_t y0 = mcu_requant_x2_s8(a0, r[n + 1], r[n + 2], r[n + 3], sign_fix, act_min, act_max);
            const int32_t y1 = mcu_requant_x2_s8(a1, r[stride + n + 1], r[stride + n + 2], r[stride + n + 3],
                                                 sign_fix, act_min, act_max);
            out[o] = (int8_t)y0;
            out[o + 1] = (int8_t)y1;
        }
        if (o < n_out) { /* an odd channel count: the last one with itself */
            int32_t a0 = r[n], a1 = r[n];
            mcu_fc_w16_pair(in, r, r, k, x_offset, &a0, &a1);
            out[o] = (int8_t)mcu_requant_x2_s8(a0, r[n + 1], r[n + 2], r[n + 3], sign_fix, act_min, act_max);
        }
    }
}

/*
 * int4 weights (mcu_conv1x1_small_w4, mcu_fc_w4_s8): the same loops reading packed int4 weights from flash and
 * unpacking them in registers. Each output channel's record holds c / 8 (k / 8) words of 8 nibbles, then
 * {4096 x bias, mult, cst, e}. A word's nibbles are placed (mcutool/codegen/fast_kernels.py: W4_NIBBLE_TAPS) so
 * that ((word << 4 j) & 0xF000F000), j = 0..3, is the j-th weight word of its 8 taps in SXTB16 lane order with
 * each weight in the top 4 bits of its int16 lane, i.e. 4096 x w: one AND per SMLAD pair, no sign extension.
 * The accumulators hold 4096 x the int8 layer's sums, exact (the generator checks 4096 (|bias| + max|x - zp|
 * sum|w|) < 2^31 per channel, else the layer keeps the shared conv kernel), and ASR 11 gives back the doubled
 * sum that mcu_requant_x2_s8 takes.
 */
#define MCU_W4_LANES 0xF000F000u

/* the n weight words (n = c / 2, even) of one channel from its (n + 3) / 4 nibble words at wd */
MCU_DOT_INLINE void mcu_w4_unpack(const uint32_t* wd, int32_t n, int32_t* p)
{
    for (int32_t j = 0; j < n; j++)
        p[j] = (int32_t)((wd[j / 4] << (4 * (j % 4))) & MCU_W4_LANES);
}

/* acc + the dot product of n widened input words (n even, at most 16) and one channel's nibble words at wd */
MCU_DOT_INLINE int32_t mcu_conv1x1_dot_w4(const int32_t* x, const uint32_t* wd, int32_t n, int32_t acc)
{
    int32_t p[16];
    mcu_w4_unpack(wd, n, p);
    return mcu_conv1x1_dot(x, p, n, acc);
}

#if MCU_DOT_SIMD32 && defined(__GNUC__)
/* 8 taps of two pixels (pixel b's words B bytes after pixel a's) against nibble word j: LDR, 4 AND, 4 LDRD,
 * 8 SMLAD */
#define MCU_W4X2_STEP(j, B)                                                                                    \
    "ldr %[W], [%[w], #" #j "*4]\n\t"                                                                          \
    "and %[p], %[mask], %[W]\n\t"                                                                              \
    "and %[q], %[mask], %[W], lsl #4\n\t"                                                                      \
    "ldrd %[u], %[v], [%[x], #" #j "*16]\n\t"                                                                  \
    "smlad %[a], %[u], %[p], %[a]\n\t"                                                                         \
    "smlad %[a], %[v], %[q], %[a]\n\t"                                                                         \
    "ldrd %[u], %[v], [%[x], #" #B "+" #j "*16]\n\t"                                                           \
    "smlad %[b], %[u], %[p], %[b]\n\t"                                                                         \
    "smlad %[b], %[v], %[q], %[b]\n\t"                                                                         \
    "and %[p], %[mask], %[W], lsl #8\n\t"                                                                      \
    "and %[q], %[mask], %[W], lsl #12\n\t"                                                                     \
    "ldrd %[u], %[v], [%[x], #8+" #j "*16]\n\t"                                                                \
    "smlad %[a], %[u], %[p], %[a]\n\t"                                                                         \
    "smlad %[a], %[v], %[q], %[a]\n\t"                                                                         \
    "ldrd %[u], %[v], [%[x], #" #B "+8+" #j "*16]\n\t"                                                         \
    "smlad %[b], %[u], %[p], %[b]\n\t"                                                                         \
    "smlad %[b], %[v], %[q], %[b]\n\t"
#define MCU_W4X2_OPERANDS(n)                                                                                   \
    : [a] "+r"(a), [b] "+r"(b), [W] "=&r"(W), [p] "=&r"(p), [q] "=&r"(q), [u] "=&r"(u), [v] "=&r"(v)          \
    : [x] "r"(xw), [w] "r"(wd), [mask] "r"(MCU_W4_LANES), "m"(*(const int32_t(*)[n])xw),                       \
      "m"(*(const uint32_t(*)[n / 8])wd)

/* c = 16 / 32, two pixels: xw[0 .. c / 2 - 1] and xw[c / 2 .. c - 1] against one channel's c / 8 nibble words */
MCU_DOT_INLINE void mcu_conv1x1_c16x2_w4(const int32_t* xw, const uint32_t* wd, int32_t* acc_a, int32_t* acc_b)
{
    int32_t a = *acc_a, b = *acc_b, W, p, q, u, v;
    __asm__(MCU_W4X2_STEP(0, 32) MCU_W4X2_STEP(1, 32) MCU_W4X2_OPERANDS(16));
    *acc_a = a;
    *acc_b = b;
}

MCU_DOT_INLINE void mcu_conv1x1_c32x2_w4(const int32_t* xw, const uint32_t* wd, int32_t* acc_a, int32_t* acc_b)
{
    int32_t a = *acc_a, b = *acc_b, W, p, q, u, v;
    __asm__(MCU_W4X2_STEP(0, 64) MCU_W4X2_STEP(1, 64) MCU_W4X2_STEP(2, 64) MCU_W4X2_STEP(3, 64)
            MCU_W4X2_OPERANDS(32));
    *acc_a = a;
    *acc_b = b;
}
#undef MCU_W4X2_STEP
#undef MCU_W4X2_OPERANDS

/* c = 8, four pixels: their 4 widened words each, xw[4 * i .. 4 * i + 3] (8-byte aligned), against one channel's
 * nibble word: LDR, 4 AND, 8 LDRD of inputs, 16 SMLAD */
MCU_DOT_INLINE void mcu_conv1x1_c8x4_w4(const int32_t* xw, const uint32_t* wd, int32_t* acc)
{
    int32_t a = acc[0], b = acc[1], c = acc[2], d = acc[3], W, p, q, u, v;
#define MCU_W4X4_HALF(o)                                                                                       \
    "ldrd %[u], %[v], [%[x], #" #o "]\n\t"                                                                     \
    "smlad %[a], %[u], %[p], %[a]\n\t"                                                                         \
    "smlad %[a], %[v], %[q], %[a]\n\t"                                                                         \
    "ldrd %[u], %[v], [%[x], #16+" #o "]\n\t"                                                                  \
    "smlad %[b], %[u], %[p], %[b]\n\t"                                                                         \
    "smlad %[b], %[v], %[q], %[b]\n\t"                                                                         \
    "ldrd %[u], %[v], [%[x], #32+" #o "]\n\t"                                                                  \
    "smlad %[c], %[u], %[p], %[c]\n\t"                                                                         \
    "smlad %[c], %[v], %[q], %[c]\n\t"                                                                         \
    "ldrd %[u], %[v], [%[x], #48+" #o "]\n\t"                                                                  \
    "smlad %[d], %[u], %[p], %[d]\n\t"                                                                         \
    "smlad %[d], %[v], %[q], %[d]\n\t"
    __asm__("ldr %[W], [%[w]]\n\t"
            "and %[p], %[mask], %[W]\n\t"
            "and %[q], %[mask], %[W], lsl #4\n\t" MCU_W4X4_HALF(0)
            "and %[p], %[mask], %[W], lsl #8\n\t"
            "and %[q], %[mask], %[W], lsl #12\n\t" MCU_W4X4_HALF(8)
            : [a] "+r"(a), [b] "+r"(b), [c] "+r"(c), [d] "+r"(d), [W] "=&r"(W), [p] "=&r"(p), [q] "=&r"(q),
              [u] "=&r"(u), [v] "=&r"(v)
            : [x] "r"(xw), [w] "r"(wd), [mask] "r"(MCU_W4_LANES), "m"(*(const int32_t(*)[16])xw), "m"(*wd));
#undef MCU_W4X4_HALF
    acc[0] = a;
    acc[1] = b;
    acc[2] = c;
    acc[3] = d;
}
#endif

/* mcu_conv1x1_small_s8 with int4 weights, the same loops; rec: n_out records of (c + 7) / 8 + 4 words {nibble
 * words (c = 4, 12: the last one's upper 4 taps zero), 4096 bias, mult, cst, e} */
MCU_DOT_INLINE void mcu_conv1x1_small_w4(const int8_t* in, int8_t* out, int32_t w, int32_t c, int32_t sh,
                                         int32_t sw, int32_t oh, int32_t ow, int32_t n_out, int32_t x_offset,
                                         const int32_t* rec, int32_t sign_fix, int32_t act_min, int32_t act_max)
{
    const int32_t n = (c + 7) / 8, stride = n + 4;
    for (int32_t oy = 0; oy < oh; oy++) {
        const int8_t* row = in + oy * sh * w * c;
        int32_t ox = 0;
#if MCU_DOT_SIMD32 && defined(__GNUC__)
        if (c == 16 || c == 32) { /* two pixels widened into a buffer, each unpacked weight word serving both */
            for (; ox + 2 <= ow; ox += 2, out += 2 * n_out) {
                int32_t xw[32] __attribute__((aligned(8)));
                mcu_conv1x1_widen(row + ox * sw * c, c, x_offset, xw);
                mcu_conv1x1_widen(row + (ox + 1) * sw * c, c, x_offset, xw + c / 2);
                const int32_t* r = rec;
                for (int32_t o = 0; o < n_out; o++, r += stride) {
                    int32_t a = r[n], b = r[n];
                    if (c == 16)
                        mcu_conv1x1_c16x2_w4(xw, (const uint32_t*)r, &a, &b);
                    else
                        mcu_conv1x1_c32x2_w4(xw, (const uint32_t*)r, &a, &b);
                    const int32_t m = r[n + 1], cc = r[n + 2], e = r[n + 3];
                    const int32_t ya = mcu_requant_x2_s8(a >> 11, m, cc, e, sign_fix, act_min, act_max);
                    const int32_t yb = mcu_requant_x2_s8(b >> 11, m, cc, e, sign_fix, act_min, act_max);
                    out[o] = (int8_t)ya;
                    out[n_out + o] = (int8_t)yb;
                }
            }
        }
        if (c == 8) { /* four pixels widened into a buffer: each unpacked weight word serves all four */
            for (; ox + 4 <= ow; ox += 4, out += 4 * n_out) {
                int32_t xw[16] __attribute__((aligned(8)));
                for (int32_t i = 0; i < 4; i++)
                    mcu_conv1x1_widen(row + (ox + i) * sw * c, c, x_offset, xw + 4 * i);
                const int32_t* r = rec;
                for (int32_t o = 0; o < n_out; o++, r += stride) {
                    int32_t acc[4] = {r[n], r[n], r[n], r[n]};
                    mcu_conv1x1_c8x4_w4(xw, (const uint32_t*)r, acc);
                    const int32_t m = r[n + 1], cc = r[n + 2], e = r[n + 3];
                    int32_t y[4];
                    for (int32_t i = 0; i < 4; i++)
                        y[i] = mcu_requant_x2_s8(acc[i] >> 11, m, cc, e, sign_fix, act_min, act_max);
                    for (int32_t i = 0; i < 4; i++)
                        out[i * n_out + o] = (int8_t)y[i];
                }
            }
        }
#endif
        if (c <= 12) { /* two pixels: each unpacked weight word serves both (c = 12 too, unlike int8: its
                          unpacking is paid once for two pixels) */
            for (; ox + 2 <= ow; ox += 2, out += 2 * n_out) {
                int32_t xa[6], xb[6];
                mcu_conv1x1_widen(row + ox * sw * c, c, x_offset, xa);
                mcu_conv1x1_widen(row + (ox + 1) * sw * c, c, x_offset, xb);
                const int32_t* r = rec;
                for (int32_t o = 0; o < n_out; o++, r += stride) {
                    int32_t p[6];
                    mcu_w4_unpack((const uint32_t*)r, c / 2, p);
                    const int32_t a = mcu_conv1x1_dot(xa, p, c / 2, r[n]), b = mcu_conv1x1_dot(xb, p, c / 2, r[n]);
                    const int32_t m = r[n + 1], cc = r[n + 2], e = r[n + 3];
                    const int32_t ya = mcu_requant_x2_s8(a >> 11, m, cc, e, sign_fix, act_min, act_max);
                    const int32_t yb = mcu_requant_x2_s8(b >> 11, m, cc, e, sign_fix, act_min, act_max);
                    out[o] = (int8_t)ya;
                    out[n_out + o] = (int8_t)yb;
                }
            }
        }
        for (; ox < ow; ox++, out += n_out) { /* one pixel (the last of a row) */
            int32_t x[16];
            mcu_conv1x1_widen(row + ox * sw * c, c, x_offset, x);
            const int32_t* r = rec;
            for (int32_t o = 0; o < n_out; o++, r += stride)
                out[o] = (int8_t)mcu_requant_x2_s8(mcu_conv1x1_dot_w4(x, (const uint32_t*)r, c / 2, r[n]) >> 11,
                                                   r[n + 1], r[n + 2], r[n + 3], sign_fix, act_min, act_max);
        }
    }
}

/* acc0 / acc1 += the row widened in xw (k / 2 words, 8-byte aligned) . two channels, whose k / 8 nibble words are
 * interleaved at wp (channel 0's word i at wp[2 i], channel 1's at wp[2 i + 1]; 8-byte aligned): per 8 taps of both
 * channels 3 LDRD, 8 AND, 8 SMLAD */
MCU_DOT_INLINE void mcu_fc_w4_pair_w(const int32_t* xw, const uint32_t* wp, int32_t k, int32_t* acc0, int32_t* acc1)
{
#if MCU_DOT_SIMD32 && defined(__GNUC__)
    int32_t a0 = *acc0, a1 = *acc1, m = k / 8, W0, W1, p, u, v;
    const uint32_t mask = MCU_W4_LANES;
#define MCU_FC_W4_STEP                                                                                         \
    "ldrd %[W0], %[W1], [%[w]], #8\n\t"                                                                        \
    "ldrd %[u], %[v], [%[x]], #8\n\t"                                                                          \
    "and %[p], %[mask], %[W0]\n\t"                                                                             \
    "smlad %[a0], %[u], %[p], %[a0]\n\t"                                                                       \
    "and %[p], %[mask], %[W0], lsl #4\n\t"                                                                     \
    "smlad %[a0], %[v], %[p], %[a0]\n\t"                                                                       \
    "and %[p], %[mask], %[W1]\n\t"                                                                             \
    "smlad %[a1], %[u], %[p], %[a1]\n\t"                                                                       \
    "and %[p], %[mask], %[W1], lsl #4\n\t"                                                                     \
    "smlad %[a1], %[v], %[p], %[a1]\n\t"                                                                       \
    "ldrd %[u], %[v], [%[x]], #8\n\t"                                                                          \
    "and %[p], %[mask], %[W0], lsl #8\n\t"                                                                     \
    "smlad %[a0], %[u], %[p], %[a0]\n\t"                                                                       \
    "and %[p], %[mask], %[W0], lsl #12\n\t"                                                                    \
    "smlad %[a0], %[v], %[p], %[a0]\n\t"                                                                       \
    "and %[p], %[mask], %[W1], lsl #8\n\t"                                                                     \
    "smlad %[a1], %[u], %[p], %[a1]\n\t"                                                                       \
    "and %[p], %[mask], %[W1], lsl #12\n\t"                                                                    \
    "smlad %[a1], %[v], %[p], %[a1]\n\t"
#define MCU_FC_W4_LOOP(steps)                                                                                  \
    __asm__("1:\n\t" steps "subs %[m], %[m], #1\n\t"                                                           \
            "bne 1b"                                                                                           \
            : [a0] "+r"(a0), [a1] "+r"(a1), [x] "+r"(xw), [w] "+r"(wp), [m] "+r"(m), [W0] "=&r"(W0),             \
              [W1] "=&r"(W1), [p] "=&r"(p), [u] "=&r"(u), [v] "=&r"(v)                                           \
            : [mask] "r"(mask)                                                                                 \
            : "cc", "memory")
    if (k % 32 == 0) { /* 32 taps per branch */
        m = k / 32;
        MCU_FC_W4_LOOP(MCU_FC_W4_STEP MCU_FC_W4_STEP MCU_FC_W4_STEP MCU_FC_W4_STEP);
    } else {
        MCU_FC_W4_LOOP(MCU_FC_W4_STEP);
    }
#undef MCU_FC_W4_LOOP
#undef MCU_FC_W4_STEP
    *acc0 = a0;
    *acc1 = a1;
#else
    for (int32_t i = 0; i < k / 8; i++) {
        const uint32_t w0 = wp[2 * i], w1 = wp[2 * i + 1];
        *acc0 = mcu_conv1x1_dot_w4(xw + 4 * i, &w0, 4, *acc0);
        *acc1 = mcu_conv1x1_dot_w4(xw + 4 * i, &w1, 4, *acc1);
    }
#endif
}

/* the same reading the int8 row x itself (each 4 inputs widened inline, for both channels: the channel pairs are
 * few), x_offset added: per 8 taps of both channels 2 LDR, 4 SXTAB16, LDRD, 8 AND, 8 SMLAD */
MCU_DOT_INLINE void mcu_fc_w4_pair(const int8_t* x, const uint32_t* wp, int32_t k, int32_t x_offset, int32_t* acc0,
                                   int32_t* acc1)
{
#if MCU_DOT_SIMD32 && defined(__GNUC__)
    int32_t a0 = *acc0, a1 = *acc1, m = k / 8, W0, W1, p, u, xa, xb;
    const int32_t off = (int32_t)mcu_dup16(x_offset);
    const uint32_t mask = MCU_W4_LANES;
#define MCU_FC_W4_XSTEP(s0, s1)                                                                                \
    "ldr %[u], [%[x]], #4\n\t"                                                                                 \
    "sxtab16 %[xa], %[off], %[u]\n\t"                                                                          \
    "sxtab16 %[xb], %[off], %[u], ror #8\n\t"                                                                  \
    "and %[p], %[mask], %[W0]" s0 "\n\t"                                                                       \
    "smlad %[a0], %[xa], %[p], %[a0]\n\t"                                                                      \
    "and %[p], %[mask], %[W0]" s1 "\n\t"                                                                       \
    "smlad %[a0], %[xb], %[p], %[a0]\n\t"                                                                      \
    "and %[p], %[mask], %[W1]" s0 "\n\t"                                                                       \
    "smlad %[a1], %[xa], %[p], %[a1]\n\t"                                                                      \
    "and %[p], %[mask], %[W1]" s1 "\n\t"                                                                       \
    "smlad %[a1], %[xb], %[p], %[a1]\n\t"
#define MCU_FC_W4_X8                                                                                           \
    "ldrd %[W0], %[W1], [%[w]], #8\n\t" MCU_FC_W4_XSTEP("", ", lsl #4") MCU_FC_W4_XSTEP(", lsl #8", ", lsl #12")
#define MCU_FC_W4_XLOOP(steps)                                                                                 \
    __asm__("1:\n\t" steps "subs %[m], %[m], #1\n\t"                                                          \
            "bne 1b"                                                                                           \
            : [a0] "+r"(a0), [a1] "+r"(a1), [x] "+r"(x), [w] "+r"(wp), [m] "+r"(m), [W0] "=&r"(W0),              \
              [W1] "=&r"(W1), [p] "=&r"(p), [u] "=&r"(u), [xa] "=&r"(xa), [xb] "=&r"(xb)                         \
            : [mask] "r"(mask), [off] "r"(off)                                                                 \
            : "cc", "memory")
    if (k % 32 == 0) { /* 32 taps per branch */
        m = k / 32;
        MCU_FC_W4_XLOOP(MCU_FC_W4_X8 MCU_FC_W4_X8 MCU_FC_W4_X8 MCU_FC_W4_X8);
    } else {
        MCU_FC_W4_XLOOP(MCU_FC_W4_X8);
    }
#undef MCU_FC_W4_XLOOP
#undef MCU_FC_W4_X8
#undef MCU_FC_W4_XSTEP
    *acc0 = a0;
    *acc1 = a1;
#else
    int32_t xw[4];
    for (int32_t i = 0; i < k / 8; i++) {
        mcu_conv1x1_widen(x + 8 * i, 8, x_offset, xw);
        const uint32_t w0 = wp[2 * i], w1 = wp[2 * i + 1];
        *acc0 = mcu_conv1x1_dot_w4(xw, &w0, 4, *acc0);
        *acc1 = mcu_conv1x1_dot_w4(xw, &w1, 4, *acc1);
    }
#endif
}

/*
 * mcu_fc_w16_s8 with int4 weights: in (rows, k) -> out (rows, n_out), k % 8 == 0; rec: one record per pair of
 * output channels (an odd last channel paired with a copy of itself), k / 4 + 8 words: the two channels' nibble
 * words interleaved, then {4096 bias, mult, cst, e} of each; xbuf: k / 2 words of scratch, 8-byte aligned (each
 * row widened once for all its channels), or 0 (widened per channel pair: few outputs)
 */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((noinline, noclone, unused))
#elif defined(__GNUC__)
__attribute__((noinline, unused))
#endif
MCU_KERNEL_OPT static void mcu_fc_w4_s8(const int8_t* in, int8_t* out, int32_t rows, int32_t k, int32_t n_out,
                                        int32_t x_offset, const int32_t* rec, int32_t sign_fix, int32_t act_min,
                                        int32_t act_max, int32_t* xbuf)
{
    const int32_t n = k / 4, stride = n + 8;
    for (int32_t b = 0; b < rows; b++, in += k, out += n_out) {
        if (xbuf)
            for (int32_t i = 0; i < k; i += 4)
                mcu_conv1x1_widen(in + i, 4, x_offset, xbuf + i / 2);
        const int32_t* r = rec;
        MCU_FC_NO_UNROLL
        for (int32_t o = 0; o < n_out; o += 2, r += stride) {
            int32_t a0 = r[n], a1 = r[n + 4];
            if (xbuf)
                mcu_fc_w4_pair_w(xbuf, (const uint32_t*)r, k, &a0, &a1);
            else
                mcu_fc_w4_pair(in, (const uint32_t*)r, k, x_offset, &a0, &a1);
            out[o] = (int8_t)mcu_requant_x2_s8(a0 >> 11, r[n + 1], r[n + 2], r[n + 3], sign_fix, act_min, act_max);
            if (o + 1 < n_out)
                out[o + 1] = (int8_t)mcu_requant_x2_s8(a1 >> 11, r[n + 5], r[n + 6], r[n + 7], sign_fix, act_min,
                                                       act_max);
        }
    }
}

#endif /* MCU_CONV1X1_SMALL_S8_H */
