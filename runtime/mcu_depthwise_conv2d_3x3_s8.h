/*
 * mcu_depthwise_conv2d_3x3_s8.h - int8 depthwise conv, 3x3 kernel, depth multiplier 1, stride 1 or 2, any
 * padding, bit-exact with TFLite's reference kernel. Called by the shape-specialised wrappers that
 * mcutool/codegen/fast_kernels.py generates (every shape argument a literal, so GCC specialises the loops).
 *
 * One channel at a time (its weights and requantization constants in registers), the input offset folded into
 * the bias at compile time (bias - zp * sum w), so the taps are the raw x and padding holds the zero point.
 * Per kernel row the weights are two words, W01 = (w0, w1) and W12 = (w1, w2) (low, high halfword).
 *
 * Stride 1: through a ring of 3 input rows in int16 whose padding columns and rows hold the zero point (the
 * interior runs without a border test, each input value is widened once for the 3 output rows that read it),
 * neighbouring columns being adjacent halfwords; with p0 = (x[o], x[o+1]) and p2 = (x[o+2], x[o+3]):
 *     outputs o and o+1:  a0 += SMLAD(p0, W01) + SMLABT(p2, W12)   (x[o]w0 + x[o+1]w1 + x[o+2]w2)
 *                         a1 += SMLATB(p0, W01) + SMLAD(p2, W12)   (x[o+1]w0 + x[o+2]w1 + x[o+3]w2)
 * (four outputs per step on rows of 8 or more: three words per kernel row serve them).
 * Stride 2: straight from the NHWC input (a ring would widen 4 values per output for 1.5 uses each): per
 * kernel row a0 += SMLAD(PKHBT(x[2o], x[2o+1]), W01) + SMLABT(x[2o+2], W12), two outputs per step sharing
 * x[2o+2]; the outputs whose window reaches into the padding (loop partitioning: the first and last columns
 * and rows) take a plain loop with the zero point for the padded taps.
 *
 * The weights and the bias are doubled at compile time for mcu_requant_x2_s8 (one SMMLAR per output); each
 * output is requantized once. Without DSP (RV32, M0/M3, host) the same loops in plain C. |x| <= 128,
 * |2w| <= 256: every product is exact, and the generator bounds the sums (fast_kernels.x2_requant).
 *
 * `ring` (stride 1) holds 3 * rw int16, 4-byte aligned; rw >= pl + w and rw >= the last tap read + 2, even:
 * fast_kernels.dw3x3_ring_width computes it (0 for stride 2: no ring).
 *
 * `by_cols` 1 (stride 1): the same loops over the transposed image, columns as rows (the caller gives the
 * transposed weights and sizes the ring for h): a tall narrow image (KWS: 25 x 5) gets long rows, where four
 * outputs share their loads, and the ring's per-row overhead is paid w times instead of h.
 */
#ifndef MCU_DEPTHWISE_CONV2D_3X3_S8_H
#define MCU_DEPTHWISE_CONV2D_3X3_S8_H

#include <stdint.h>

#include "mcu_dot_s8.h"
#include "mcu_requant.h"

/* the 3 kernel rows' weight words of one channel (wk + 6 * ch: W01 of rows 0..2, then W12 of rows 0..2) */
typedef struct {
    int32_t w01[3];
    int32_t w12[3];
} mcu_dw3x3_w;

/* the ring's declaration in a wrapper: 4-byte aligned, so that column pairs at even offsets are word loads */
#if defined(__GNUC__)
#define MCU_DW3X3_RING(name, n) int16_t name[n] __attribute__((aligned(4)))
#else
#define MCU_DW3X3_RING(name, n) int16_t name[n]
#endif

#if MCU_DOT_SIMD32
/* (lo, hi) halfwords of two int32 values in one PKHBT (GCC writes UXTH + ORR for the C form) */
MCU_DOT_INLINE int32_t mcu_pack16(int32_t lo, int32_t hi)
{
    int32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(lo), "r"(hi));
    return r;
}
#define MCU_DW_LO(v) ((int32_t)(int16_t)(v))
#else
#define MCU_DW_LO(v) ((int32_t)(int16_t)((uint32_t)(v) & 0xFFFFu))
#endif
#define MCU_DW_HI(v) ((int32_t)(v) >> 16)
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 8
#define MCU_DW3X3_NO_UNROLL _Pragma("GCC unroll 1")
#else
#define MCU_DW3X3_NO_UNROLL
#endif

/* Input row iy of channel ch into `dst` (its columns [pl, pl + w)) as int16; the zero point outside the image.
 * Rows are sy bytes apart, columns sx (w * c and c; c and w * c when the kernel runs over columns). */
MCU_DOT_INLINE void mcu_dw3x3_fill_row(int16_t* dst, const int8_t* in, int32_t iy, int32_t h, int32_t w, int32_t sy,
                                       int32_t c, int32_t ch, int16_t zp)
{
    if (iy < 0 || iy >= h) {
        for (int32_t j = 0; j < w; j++)
            dst[j] = zp;
        return;
    }
    const int8_t* src = in + iy * sy + ch;
    int32_t j = 0;
#if MCU_DOT_SIMD32 && defined(__GNUC__)
    /* 8 values per iteration in 8 LDRSB, 4 PKHBT, 4 STR and the loop step (19 instructions; GCC's own
     * unrolling reloaded its end pointer from the stack and dispatched on the remainder at run time). The
     * column step is an immediate offset: a literal after inlining, else the C loop below does it all. */
    if (__builtin_constant_p(c) && c > 0 && c <= 256 && w >= 8) {
        const int8_t* end = src + (w / 8) * 8 * c;
        int16_t* d = dst;
        int32_t t0, t1, t2, t3;
        __asm__ volatile(
            "1:\n\t"
            "ldrsb %[t0], [%[s]]\n\t"
            "ldrsb %[t1], [%[s], %[c1]]\n\t"
            "ldrsb %[t2], [%[s], %[c2]]\n\t"
            "ldrsb %[t3], [%[s], %[c3]]\n\t"
            "pkhbt %[t0], %[t0], %[t1], lsl #16\n\t"
            "pkhbt %[t2], %[t2], %[t3], lsl #16\n\t"
            "str %[t0], [%[d]], #4\n\t"
            "str %[t2], [%[d]], #4\n\t"
            "ldrsb %[t0], [%[s], %[c4]]\n\t"
            "ldrsb %[t1], [%[s], %[c5]]\n\t"
            "ldrsb %[t2], [%[s], %[c6]]\n\t"
            "ldrsb %[t3], [%[s], %[c7]]\n\t"
            "add %[s], %[s], %[c8]\n\t"
            "pkhbt %[t0], %[t0], %[t1], lsl #16\n\t"
            "pkhbt %[t2], %[t2], %[t3], lsl #16\n\t"
            "str %[t0], [%[d]], #4\n\t"
            "str %[t2], [%[d]], #4\n\t"
            "cmp %[s], %[e]\n\t"
            "bne 1b"
            : [s] "+r"(src), [d] "+r"(d), [t0] "=&r"(t0), [t1] "=&r"(t1), [t2] "=&r"(t2), [t3] "=&r"(t3)
            : [e] "r"(end), [c1] "i"(c), [c2] "i"(2 * c), [c3] "i"(3 * c), [c4] "i"(4 * c), [c5] "i"(5 * c),
              [c6] "i"(6 * c), [c7] "i"(7 * c), [c8] "r"(8 * c)
            : "cc", "memory");
        j = (w / 8) * 8;
    }
    for (; j + 2 <= w; j += 2, src += 2 * c) { /* two LDRSB, PKHBT and STR per pair (GCC's own pairing: BFI each) */
        const int32_t v = mcu_pack16(src[0], src[c]);
        __builtin_memcpy(dst + j, &v, 4);
    }
#endif
    for (; j + 4 <= w; j += 4, src += 4 * c) { /* one LDRSB and one STRH per value, the loop test per 4 */
        dst[j] = src[0];
        dst[j + 1] = src[c];
        dst[j + 2] = src[2 * c];
        dst[j + 3] = src[3 * c];
    }
    for (; j < w; j++, src += c)
        dst[j] = src[0];
}

/* the three kernel rows' contribution to the output whose taps start at column col of the ring rows */
MCU_DOT_INLINE int32_t mcu_dw3x3_one(const int16_t* r0, const int16_t* r1, const int16_t* r2, int32_t col,
                                     const mcu_dw3x3_w* k, int32_t a)
{
#if MCU_DOT_SIMD32
    a = __smlad(mcu_ld_s16x2(r0 + col), k->w01[0], a);
    a = __smlabt(mcu_ld_s16x2(r0 + col + 2), k->w12[0], a);
    a = __smlad(mcu_ld_s16x2(r1 + col), k->w01[1], a);
    a = __smlabt(mcu_ld_s16x2(r1 + col + 2), k->w12[1], a);
    a = __smlad(mcu_ld_s16x2(r2 + col), k->w01[2], a);
    a = __smlabt(mcu_ld_s16x2(r2 + col + 2), k->w12[2], a);
#else
    const int16_t* r[3] = {r0, r1, r2};
    for (int32_t i = 0; i < 3; i++)
        a += r[i][col] * MCU_DW_LO(k->w01[i]) + r[i][col + 1] * MCU_DW_HI(k->w01[i])
           + r[i][col + 2] * MCU_DW_HI(k->w12[i]);
#endif
    return a;
}

/* outputs o and o + 1 of a stride-1 row (o even) */
MCU_DOT_INLINE void mcu_dw3x3_two(const int16_t* r0, const int16_t* r1, const int16_t* r2, int32_t o,
                                  const mcu_dw3x3_w* k, int32_t* a0, int32_t* a1)
{
#if MCU_DOT_SIMD32
    const int16_t* r[3] = {r0, r1, r2};
    int32_t x0 = *a0, x1 = *a1;
    for (int32_t i = 0; i < 3; i++) {
        const int32_t p0 = mcu_ld_s16x2(r[i] + o), p2 = mcu_ld_s16x2(r[i] + o + 2);
        x0 = __smlad(p0, k->w01[i], x0);
        x0 = __smlabt(p2, k->w12[i], x0);
        x1 = __smlatb(p0, k->w01[i], x1);
        x1 = __smlad(p2, k->w12[i], x1);
    }
    *a0 = x0;
    *a1 = x1;
#else
    *a0 = mcu_dw3x3_one(r0, r1, r2, o, k, *a0);
    *a1 = mcu_dw3x3_one(r0, r1, r2, o + 1, k, *a1);
#endif
}

/* outputs o .. o + 3 of a stride-1 row (o even): three words per kernel row serve the four */
MCU_DOT_INLINE void mcu_dw3x3_four(const int16_t* r0, const int16_t* r1, const int16_t* r2, int32_t o,
                                   const mcu_dw3x3_w* k, int32_t* acc)
{
#if MCU_DOT_SIMD32
    const int16_t* r[3] = {r0, r1, r2};
    int32_t x0 = acc[0], x1 = acc[1], x2 = acc[2], x3 = acc[3];
    for (int32_t i = 0; i < 3; i++) {
        const int32_t p0 = mcu_ld_s16x2(r[i] + o), p2 = mcu_ld_s16x2(r[i] + o + 2), p4 = mcu_ld_s16x2(r[i] + o + 4);
        const int32_t w01 = k->w01[i], w12 = k->w12[i];
        x0 = __smlad(p0, w01, x0);
        x0 = __smlabt(p2, w12, x0);
        x1 = __smlatb(p0, w01, x1);
        x1 = __smlad(p2, w12, x1);
        x2 = __smlad(p2, w01, x2);
        x2 = __smlabt(p4, w12, x2);
        x3 = __smlatb(p2, w01, x3);
        x3 = __smlad(p4, w12, x3);
    }
    acc[0] = x0;
    acc[1] = x1;
    acc[2] = x2;
    acc[3] = x3;
#else
    for (int32_t j = 0; j < 4; j++)
        acc[j] = mcu_dw3x3_one(r0, r1, r2, o + j, k, acc[j]);
#endif
}

/* stride 2, straight from the NHWC input (`in` at channel ch): an output whose window has a tap in the padding,
 * with the zero point there (the bias holds -zp * sum w) */
MCU_DOT_INLINE int32_t mcu_dw3x3_s2_border(const int8_t* in, int32_t h, int32_t w, int32_t c, int32_t iy0,
                                           int32_t ix0, const mcu_dw3x3_w* k, int32_t zp, int32_t a)
{
    for (int32_t ky = 0; ky < 3; ky++) {
        const int32_t iy = iy0 + ky, wt[3] = {MCU_DW_LO(k->w01[ky]), MCU_DW_HI(k->w01[ky]), MCU_DW_HI(k->w12[ky])};
        for (int32_t kx = 0; kx < 3; kx++) {
            const int32_t ix = ix0 + kx;
            a += (iy >= 0 && iy < h && ix >= 0 && ix < w ? (int32_t)in[(iy * w + ix) * c] : zp) * wt[kx];
        }
    }
    return a;
}

/* stride 2, an output whose window starts inside the input (its top-left tap) but runs past the bottom or right
 * edge: kernel rows [0, nr) and columns [0, nc) inside (1..3 each), the zero point at the other taps (the bias holds
 * -zp * sum w); it costs what an inside output does. */
MCU_DOT_INLINE int32_t mcu_dw3x3_s2_edge(const int8_t* p, int32_t row, int32_t c, const mcu_dw3x3_w* k, int32_t zp,
                                         int32_t nr, int32_t nc, int32_t a)
{
    for (int32_t i = 0; i < 3; i++, p += row) {
        const int32_t in_row = i < nr;
        const int32_t x0 = in_row ? p[0] : zp, x1 = in_row && nc > 1 ? p[c] : zp;
        const int32_t x2 = in_row && nc > 2 ? p[2 * c] : zp;
#if MCU_DOT_SIMD32
        a = __smlad(mcu_pack16(x0, x1), k->w01[i], a);
        a = __smlabt(x2, k->w12[i], a);
#else
        a += x0 * MCU_DW_LO(k->w01[i]) + x1 * MCU_DW_HI(k->w01[i]) + x2 * MCU_DW_HI(k->w12[i]);
#endif
    }
    return a;
}

/* stride 2, an output outside the interior: the edge form above where its window starts inside the input ("SAME"
 * padding of an even-sized input pads only the last row and column: VWW's), else the per-tap test, which took
 * about 4x the instructions. `edge` (a literal): the edge form is generated only where the layer has no top or
 * left padding (with it, the extra code cost a 9x7 layer padded all round 25 % in the interior's registers). */
MCU_DOT_INLINE int32_t mcu_dw3x3_s2_side(const int8_t* in, int32_t h, int32_t w, int32_t c, int32_t iy0, int32_t ix0,
                                         const mcu_dw3x3_w* k, int32_t zp, int32_t a, int32_t edge)
{
    if (edge && iy0 >= 0 && ix0 >= 0 && iy0 < h && ix0 < w)
        return mcu_dw3x3_s2_edge(in + (iy0 * w + ix0) * c, w * c, c, k, zp, h - iy0 < 3 ? h - iy0 : 3,
                                 w - ix0 < 3 ? w - ix0 : 3, a);
    return mcu_dw3x3_s2_border(in, h, w, c, iy0, ix0, k, zp, a);
}

/* stride 2, outputs whose windows are inside the input, two at a time: p points at the first one's top-left tap;
 * per kernel row the taps (x0, x1) go into one word for SMLAD and x2 (the second output's x0) into SMLABT */
MCU_DOT_INLINE void mcu_dw3x3_s2_two(const int8_t* p, int32_t row, int32_t c, const mcu_dw3x3_w* k, int32_t* a0,
                                     int32_t* a1)
{
    int32_t u = *a0, v = *a1;
    for (int32_t i = 0; i < 3; i++, p += row) {
        const int32_t x0 = p[0], x1 = p[c], x2 = p[2 * c], x3 = p[3 * c], x4 = p[4 * c];
#if MCU_DOT_SIMD32
        u = __smlad(mcu_pack16(x0, x1), k->w01[i], u);
        u = __smlabt(x2, k->w12[i], u);
        v = __smlad(mcu_pack16(x2, x3), k->w01[i], v);
        v = __smlabt(x4, k->w12[i], v);
#else
        const int32_t w0 = MCU_DW_LO(k->w01[i]), w1 = MCU_DW_HI(k->w01[i]), w2 = MCU_DW_HI(k->w12[i]);
        u += x0 * w0 + x1 * w1 + x2 * w2;
        v += x2 * w0 + x3 * w1 + x4 * w2;
#endif
    }
    *a0 = u;
    *a1 = v;
}

MCU_DOT_INLINE int32_t mcu_dw3x3_s2_one(const int8_t* p, int32_t row, int32_t c, const mcu_dw3x3_w* k, int32_t a)
{
    for (int32_t i = 0; i < 3; i++, p += row) {
        const int32_t x0 = p[0], x1 = p[c], x2 = p[2 * c];
#if MCU_DOT_SIMD32
        a = __smlad(mcu_pack16(x0, x1), k->w01[i], a);
        a = __smlabt(x2, k->w12[i], a);
#else
        a += x0 * MCU_DW_LO(k->w01[i]) + x1 * MCU_DW_HI(k->w01[i]) + x2 * MCU_DW_HI(k->w12[i]);
#endif
    }
    return a;
}

/* int4 weights: a channel's 9 values packed in 5 bytes (low nibble first) -> its 6 words of doubled weights, once
 * per channel (the loops below then run as for int8 weights) */
MCU_DOT_INLINE void mcu_dw3x3_unpack4(const uint8_t* p, mcu_dw3x3_w* k)
{
    int32_t v[9];
    for (int32_t i = 0; i < 9; i++) /* the nibble moved to the top of a word, shifted back with its sign, doubled */
        v[i] = ((int32_t)((uint32_t)p[i >> 1] << (i & 1 ? 24 : 28)) >> 28) * 2;
    for (int32_t r = 0; r < 3; r++) {
        k->w01[r] = (int32_t)(((uint32_t)v[3 * r] & 0xFFFFu) | ((uint32_t)v[3 * r + 1] << 16));
        k->w12[r] = (int32_t)(((uint32_t)v[3 * r + 1] & 0xFFFFu) | ((uint32_t)v[3 * r + 2] << 16));
    }
}

/*
 * in (1, h, w, c) -> out (1, oh, ow, c); zp: the input zero point. wk: 6 weight words per channel, the weights
 * doubled; bias2: (bias - zp * sum w) doubled; mult, cst, e, sign_fix: for mcu_requant_x2_s8 (per channel).
 * wk4: int4 weights instead of wk (0 for int8), 5 bytes per channel (mcu_dw3x3_unpack4).
 */
MCU_DOT_INLINE void mcu_depthwise_conv2d_3x3_s8(const int8_t* in, int8_t* out, int32_t h, int32_t w, int32_t c,
                                                int32_t stride, int32_t pt, int32_t pl, int32_t oh, int32_t ow,
                                                int32_t zp, const int32_t* wk, const int32_t* bias2,
                                                const int32_t* mult, const int32_t* cst, const int32_t* e,
                                                int32_t sign_fix, int32_t act_min, int32_t act_max, int16_t* ring,
                                                int32_t rw, int32_t by_cols, const uint8_t* wk4)
{
    for (int32_t i = 0; i < 3 * rw; i++)
        ring[i] = (int16_t)zp;
    for (int32_t ch = 0; ch < c; ch++) {
        mcu_dw3x3_w k;
        if (wk4)
            mcu_dw3x3_unpack4(wk4 + 5 * ch, &k);
        else
            k = (mcu_dw3x3_w){{wk[6 * ch], wk[6 * ch + 1], wk[6 * ch + 2]},
                              {wk[6 * ch + 3], wk[6 * ch + 4], wk[6 * ch + 5]}};
        const int32_t b = bias2[ch], m = mult[ch], cc = cst[ch], sh = e[ch];
        if (stride == 2) {
            const int8_t* src = in + ch;
            const int32_t span = w - 3 + pl; /* windows inside: ox in [ox_lo, ox_end) */
            const int32_t ox_lo = (pl + 1) / 2, ox_end = span < 0 ? 0 : span / 2 + 1;
            const int32_t ox_hi = ox_end < ox_lo ? ox_lo : (ox_end > ow ? ow : ox_end);
            const int32_t edge = pt == 0 && pl == 0; /* (a literal) mcu_dw3x3_s2_side's edge form */
            int8_t* d = out + ch;
            for (int32_t oy = 0; oy < oh; oy++) {
                const int32_t iy0 = 2 * oy - pt;
                const int32_t inside = iy0 >= 0 && iy0 + 2 < h;
                int32_t ox = 0;
                for (; ox < ow && (!inside || ox < ox_lo); ox++, d += c)
                    *d = (int8_t)mcu_requant_x2_s8(mcu_dw3x3_s2_side(src, h, w, c, iy0, 2 * ox - pl, &k, zp, b, edge),
                                                   m, cc, sh, sign_fix, act_min, act_max);
                if (inside) {
                    const int8_t* p = src + (iy0 * w + 2 * ox - pl) * c;
                    for (; ox + 2 <= ox_hi; ox += 2, p += 4 * c, d += 2 * c) {
                        int32_t a0 = b, a1 = b;
                        mcu_dw3x3_s2_two(p, w * c, c, &k, &a0, &a1);
                        const int32_t y0 = mcu_requant_x2_s8(a0, m, cc, sh, sign_fix, act_min, act_max);
                        const int32_t y1 = mcu_requant_x2_s8(a1, m, cc, sh, sign_fix, act_min, act_max);
                        d[0] = (int8_t)y0;
                        d[c] = (int8_t)y1;
                    }
                    for (; ox < ox_hi; ox++, p += 2 * c, d += c)
                        *d = (int8_t)mcu_requant_x2_s8(mcu_dw3x3_s2_one(p, w * c, c, &k, b), m, cc, sh, sign_fix,
                                                       act_min, act_max);
                    for (; ox < ow; ox++, d += c)
                        *d = (int8_t)mcu_requant_x2_s8(
                            mcu_dw3x3_s2_side(src, h, w, c, iy0, 2 * ox - pl, &k, zp, b, edge), m, cc, sh, sign_fix,
                            act_min, act_max);
                }
            }
            continue;
        }
        /* stride 1, four outputs per step: the weights read from memory where the step uses them (kept in
         * registers with the ring pointers and the requantization constants, they were spilled and reloaded around
         * the ring fill; over KWS's columns the registers still do better; int4 weights: the unpacked copy) */
        const mcu_dw3x3_w* kf = by_cols || wk4 ? &k : (const mcu_dw3x3_w*)(const void*)(wk + 6 * ch);
        /* (by_cols: the transposed image's) rows, columns, pads, row and column steps in bytes, in and out */
        const int32_t rh = by_cols ? w : h, rwid = by_cols ? h : w, rt = by_cols ? pl : pt, rl = by_cols ? pt : pl;
        const int32_t roh = by_cols ? ow : oh, row_ = by_cols ? oh : ow;
        const int32_t sy = by_cols ? c : w * c, sx = by_cols ? w * c : c;
        const int32_t osy = by_cols ? c : ow * c, osx = by_cols ? ow * c : c;
        /* the rows top, top + 1, top + 2 of the current output row, rotated as the window moves down */
        int16_t* r0 = ring;
        int16_t* r1 = ring + rw;
        int16_t* r2 = ring + 2 * rw;
        mcu_dw3x3_fill_row(r0 + rl, in, -rt, rh, rwid, sy, sx, ch, (int16_t)zp);
        mcu_dw3x3_fill_row(r1 + rl, in, 1 - rt, rh, rwid, sy, sx, ch, (int16_t)zp);
        mcu_dw3x3_fill_row(r2 + rl, in, 2 - rt, rh, rwid, sy, sx, ch, (int16_t)zp);
        for (int32_t oy = 0; oy < roh; oy++) {
            int8_t* dst = out + ch + oy * osy;
            if (oy > 0) { /* rows top, top + 1 are there; top + 2 replaces the oldest */
                int16_t* t = r0;
                r0 = r1;
                r1 = r2;
                r2 = t;
                mcu_dw3x3_fill_row(r2 + rl, in, oy - rt + 2, rh, rwid, sy, sx, ch, (int16_t)zp);
            }
            int32_t o = 0;
            if (row_ >= 8) { /* (measured: on narrow rows the pairs below do better) */
                MCU_DW3X3_NO_UNROLL /* (fully unrolled, a 12-wide row spilled its accumulators) */
                for (; o + 4 <= row_; o += 4) {
                    int32_t a[4] = {b, b, b, b};
                    mcu_dw3x3_four(r0, r1, r2, o, kf, a);
                    for (int32_t j = 0; j < 4; j++)
                        dst[j * osx] = (int8_t)mcu_requant_x2_s8(a[j], m, cc, sh, sign_fix, act_min, act_max);
                    dst += 4 * osx;
                }
            }
            for (; o + 2 <= row_; o += 2) {
                int32_t a0 = b, a1 = b;
                mcu_dw3x3_two(r0, r1, r2, o, &k, &a0, &a1);
                dst[0] = (int8_t)mcu_requant_x2_s8(a0, m, cc, sh, sign_fix, act_min, act_max);
                dst[osx] = (int8_t)mcu_requant_x2_s8(a1, m, cc, sh, sign_fix, act_min, act_max);
                dst += 2 * osx;
            }
            for (; o < row_; o++) {
                const int32_t a = mcu_dw3x3_one(r0, r1, r2, o, &k, b);
                *dst = (int8_t)mcu_requant_x2_s8(a, m, cc, sh, sign_fix, act_min, act_max);
                dst += osx;
            }
        }
    }
}

#endif /* MCU_DEPTHWISE_CONV2D_3X3_S8_H */
