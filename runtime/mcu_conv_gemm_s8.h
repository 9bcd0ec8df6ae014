/*
 * mcu_conv_gemm_s8.h - one int8 convolution kernel for every regular conv / pointwise conv / fully connected
 * layer whose input channels are a multiple of 4 (mcutool/codegen/gemm_kernels.py emits a small wrapper per
 * layer that passes its shapes and constants; this function is in the image once, whatever the layer count).
 *
 * For each pair of output pixels (im2col): the two receptive fields are widened once into a word buffer, with
 * the input offset added (SXTAB16) and the padding 0, in the lane order of SXTB16: per 4 taps the words
 * [x0 x2] [x1 x3] of pixel 0, then the same of pixel 1. Then, for each pair of output channels, the
 * accumulators start at the bias and every 4 taps cost one LDRD of input per pixel, one LDRD of two weight
 * words (int8, laid out as (O/2, K/4, 2 channels, 4 taps) by the code generator), 4 SXTB16 and 8 SMLAD:
 * 2 pixels x 2 channels, each widened weight used for both pixels, 16 MACs in ~15 instructions. The 4 outputs
 * are then requantized with that channel pair's constants (mcu_requantize_fast: one SMLAL-form, exact for
 * right shifts >= 1, the output zero point folded into `round`; without its sign correction under a RELU clamp).
 * A pixel pair on one row widens the columns its two fields share once. A last odd pixel runs 1 pixel x 2
 * channels.
 *
 * `mcu_conv_gemm_s8_w4`: the same for int4 weights (two channels' 4 taps in one word, unpacked in registers by
 * AND / SXTB16 into bytes of 16 w: MCU_GEMM_2X2_S4_ASM), which also takes input channels that are not a multiple
 * of 4 (each window gathered as bytes first). The int8 entry's code does not change with it.
 *
 * Bit-exact with TFLite's reference conv / fully connected (int8, per-channel or per-tensor multipliers).
 * MCU_GEMM selects it (default: on cores with the DSP extension; the code generator keeps TVM's kernels in the
 * #else branch for the others); with -DMCU_GEMM=1 on another core the SIMD instructions are emulated in C
 * (the host tests build it so, under ASan/UBSan).
 */
#ifndef MCU_CONV_GEMM_S8_H
#define MCU_CONV_GEMM_S8_H

#include <stdint.h>

#include "mcu_dot_s8.h"
#include "mcu_requant.h"

#ifndef MCU_GEMM
#define MCU_GEMM MCU_DOT_SIMD32
#endif

#if MCU_GEMM

/* An output channel's constants: its int32 bias, the fast requantization's Q31 multiplier, right shift - 1 and
 * rounding constant (mcu_requant.h's, with the output zero point folded in); 24 bytes, 8-byte aligned. */
typedef struct {
    int32_t bias, mult, shift_hi, unused;
    int64_t round;
} mcu_gemm_channel;

typedef struct {
    int16_t h, w, c;        /* input height, width, channels (c % 4 == 0) */
    int16_t oh, ow, o;      /* output height, width, channels (o % 2 == 0) */
    int8_t kh, kw, sh, sw;  /* kernel, stride */
    int8_t dh, dw, pt, pl;  /* dilation, top / left padding */
    int16_t x_offset;       /* minus the input zero point */
    int16_t act_min, act_max;
    int16_t quad;           /* 1: one output pixel, o % 4 == 0, weights as (o/4, kh*kw*c/4, 4, 4) */
    int16_t nosign;         /* 1: act_min >= the output zero point (a fused RELU): no sign correction (below) */
    const int32_t* weights; /* weights, 4 int8 per word: (o/2, kh*kw*c/4, 2, 4) */
    const mcu_gemm_channel* q; /* per output channel */
} mcu_conv_gemm_params;

#if MCU_DOT_SIMD32
#define MCU_GEMM_SXTB16(v) __sxtb16(v)
#define MCU_GEMM_SXTB16_ROR8(v) mcu_sxtb16_ror8(v)
#define MCU_GEMM_SXTAB16(a, v) __sxtab16((a), (v))
#define MCU_GEMM_SXTAB16_ROR8(a, v) mcu_sxtab16_ror8((a), (v))
#define MCU_GEMM_SMLAD(a, b, acc) __smlad((a), (b), (acc))
#else /* the same instructions in C, for testing the kernel on other cores */
static inline int32_t mcu_gemm_pack16(int32_t lo, int32_t hi)
{
    return (int32_t)(((uint32_t)lo & 0xFFFFu) | ((uint32_t)hi << 16));
}
static inline int32_t mcu_gemm_lane(int32_t v, int lane) { return (int16_t)(((uint32_t)v >> (16 * lane)) & 0xFFFFu); }
static inline int32_t mcu_gemm_byte(int32_t v, int i) { return (int8_t)(((uint32_t)v >> (8 * i)) & 0xFFu); }
#define MCU_GEMM_SXTB16(v) mcu_gemm_pack16(mcu_gemm_byte((v), 0), mcu_gemm_byte((v), 2))
#define MCU_GEMM_SXTB16_ROR8(v) mcu_gemm_pack16(mcu_gemm_byte((v), 1), mcu_gemm_byte((v), 3))
#define MCU_GEMM_SXTAB16(a, v) \
    mcu_gemm_pack16(mcu_gemm_lane((a), 0) + mcu_gemm_byte((v), 0), mcu_gemm_lane((a), 1) + mcu_gemm_byte((v), 2))
#define MCU_GEMM_SXTAB16_ROR8(a, v) \
    mcu_gemm_pack16(mcu_gemm_lane((a), 0) + mcu_gemm_byte((v), 1), mcu_gemm_lane((a), 1) + mcu_gemm_byte((v), 3))
#define MCU_GEMM_SMLAD(a, b, acc)                                                                            \
    ((int32_t)((uint32_t)(acc) + (uint32_t)(mcu_gemm_lane((a), 0) * mcu_gemm_lane((b), 0)                    \
                                            + mcu_gemm_lane((a), 1) * mcu_gemm_lane((b), 1))))
#endif

/* Widen `n4` groups of 4 int8 at `x` (+ offset) into word pairs [x0 x2] [x1 x3], `step` words apart (one STRD
 * per pair: `dst` is 8-byte aligned). Inlined: GCC -Os made it a call per kernel row. */
#if MCU_DOT_SIMD32
/* 8 taps: two LDR (the input need not be 8-byte aligned), four SXTAB16, two STRD post-indexed by `st` bytes */
#define MCU_GEMM_WIDEN2_ASM(st)                                                                              \
    __asm__ volatile("1:\n\t"                                                                                 \
                     "ldr %[v1], [%[x], #4]\n\t"                                                               \
                     "ldr %[v0], [%[x]], #8\n\t"                                                               \
                     "sxtab16 %[e0], %[off], %[v0]\n\t"                                                        \
                     "sxtab16 %[o0], %[off], %[v0], ror #8\n\t"                                                \
                     "sxtab16 %[e1], %[off], %[v1]\n\t"                                                        \
                     "sxtab16 %[o1], %[off], %[v1], ror #8\n\t"                                                \
                     "strd %[e0], %[o0], [%[d]], #" st "\n\t"                                                  \
                     "strd %[e1], %[o1], [%[d]], #" st "\n\t"                                                  \
                     "subs %[n], %[n], #1\n\t"                                                                 \
                     "bne 1b\n\t"                                                                              \
                     : [x] "+r"(x), [d] "+r"(dst), [n] "+r"(n2), [v0] "=&r"(v0), [v1] "=&r"(v1),              \
                       [e0] "=&r"(e0), [o0] "=&r"(o0), [e1] "=&r"(e1), [o1] "=&r"(o1)                          \
                     : [off] "r"(off)                                                                        \
                     : "cc", "memory")
#endif

MCU_DOT_INLINE void mcu_gemm_widen(int32_t* dst, const int8_t* x, int32_t n4, int32_t off, int32_t step)
{
#if MCU_DOT_SIMD32
    /* 5 instructions per 4 taps (GCC's loop of the C below took 8) */
    int32_t n2 = n4 >> 1;
    if (n2 > 0 && (step == 4 || step == 2)) { /* the pairs of groups here, an odd last one below */
        int32_t v0, v1, e0, o0, e1, o1;
        if (step == 4)
            MCU_GEMM_WIDEN2_ASM("16");
        else
            MCU_GEMM_WIDEN2_ASM("8");
        n4 &= 1;
    }
#endif
    for (; n4 > 0; --n4, x += 4, dst += step) {
        int32_t v;
        __builtin_memcpy(&v, x, 4);
        const uint64_t pair = (uint32_t)MCU_GEMM_SXTAB16(off, v)
                              | (uint64_t)(uint32_t)MCU_GEMM_SXTAB16_ROR8(off, v) << 32;
        __builtin_memcpy(__builtin_assume_aligned(dst, 8), &pair, 8);
    }
}

MCU_DOT_INLINE void mcu_gemm_zero(int32_t* dst, int32_t n4, int32_t step)
{
    for (; n4 > 0; --n4, dst += step) {
        dst[0] = 0;
        dst[1] = 0;
    }
}

/* The receptive field of output pixel `pix` into `dst` (2 words per 4 taps, `step` words apart). */
static inline void mcu_gemm_im2col(const mcu_conv_gemm_params* p, const int8_t* in, int32_t pix, int32_t* dst,
                                   int32_t step)
{
    const int32_t c4 = p->c >> 2, oy = pix / p->ow, ox = pix - oy * p->ow;
    const int32_t off = (int32_t)(((uint32_t)p->x_offset & 0xFFFFu) | ((uint32_t)p->x_offset << 16));
    const int32_t y0 = oy * p->sh - p->pt, x0 = ox * p->sw - p->pl;
    if (p->kh == 1 && p->kw == 1 && y0 >= 0 && x0 >= 0 && y0 < p->h && x0 < p->w) { /* 1x1 inside: c taps */
        mcu_gemm_widen(dst, in + (y0 * p->w + x0) * p->c, c4, off, step);
        return;
    }
    for (int32_t ky = 0; ky < p->kh; ky++) {
        const int32_t iy = y0 + ky * p->dh;
        if (iy < 0 || iy >= p->h) {
            mcu_gemm_zero(dst, p->kw * c4, step);
            dst += p->kw * c4 * step;
            continue;
        }
        const int8_t* row = in + iy * p->w * p->c;
        int32_t kx = 0;
        if (p->dw == 1 && x0 >= 0 && x0 + p->kw <= p->w) { /* the whole kernel row is one run */
            mcu_gemm_widen(dst, row + x0 * p->c, p->kw * c4, off, step);
            dst += p->kw * c4 * step;
            continue;
        }
        for (; kx < p->kw; kx++, dst += c4 * step) {
            const int32_t ix = x0 + kx * p->dw;
            if (ix < 0 || ix >= p->w)
                mcu_gemm_zero(dst, c4, step);
            else
                mcu_gemm_widen(dst, row + ix * p->c, c4, off, step);
        }
    }
}

/* Output pixels `pix` and `pix` + 1 into `buf` (interleaved, 4 words per 4 taps). When both lie on one output
 * row with stride and dilation 1 across the row and all their columns inside the input, each kernel row's input
 * run (kw + 1 pixels) is widened once: the kw - 1 columns the two fields share are stored into both (7 instructions
 * per 4 taps for both pixels instead of 10). Otherwise each field on its own. */
static inline void mcu_gemm_im2col2(const mcu_conv_gemm_params* p, const int8_t* in, int32_t pix, int32_t* buf)
{
#if MCU_DOT_SIMD32
    const int32_t oy = pix / p->ow, ox = pix - oy * p->ow, x0 = ox - p->pl;
    if (p->sw == 1 && p->dw == 1 && p->kw > 1 && ox + 1 < p->ow && x0 >= 0 && x0 + p->kw < p->w) {
        const int32_t c4 = p->c >> 2, n = p->kw * c4, y0 = oy * p->sh - p->pt;
        const int32_t off = (int32_t)(((uint32_t)p->x_offset & 0xFFFFu) | ((uint32_t)p->x_offset << 16));
        for (int32_t ky = 0; ky < p->kh; ky++, buf += 4 * n) {
            const int32_t iy = y0 + ky * p->dh;
            if (iy < 0 || iy >= p->h) {
                mcu_gemm_zero(buf, 2 * n, 2);
                continue;
            }
            const int8_t* x = in + (iy * p->w + x0) * p->c;
            int32_t* d0 = buf + 4 * c4;
            int32_t* d1 = buf + 2;
            int32_t m = n - c4, v, e, o;
            mcu_gemm_widen(buf, x, c4, off, 4); /* pixel 0's first column */
            x += p->c;
            __asm__ volatile("1:\n\t" /* the shared columns, into both fields */
                             "ldr %[v], [%[x]], #4\n\t"
                             "sxtab16 %[e], %[off], %[v]\n\t"
                             "sxtab16 %[o], %[off], %[v], ror #8\n\t"
                             "strd %[e], %[o], [%[d0]], #16\n\t"
                             "strd %[e], %[o], [%[d1]], #16\n\t"
                             "subs %[m], %[m], #1\n\t"
                             "bne 1b\n\t"
                             : [x] "+r"(x), [d0] "+r"(d0), [d1] "+r"(d1), [m] "+r"(m), [v] "=&r"(v), [e] "=&r"(e),
                               [o] "=&r"(o)
                             : [off] "r"(off)
                             : "cc", "memory");
            mcu_gemm_widen(d1, x, c4, off, 4); /* pixel 1's last column */
        }
        return;
    }
#endif
    mcu_gemm_im2col(p, in, pix, buf, 4);
    mcu_gemm_im2col(p, in, pix + 1, buf + 2, 4);
}

/* clamp to [lo, hi]; SSAT alone when that is all of int8 */
#define MCU_GEMM_OUT(dst, acc, m, r, s, full)                                                                \
    {                                                                                                        \
        int32_t y_ = mcu_requantize_fast((acc), (m), (r), (s));                                              \
        if (full) {                                                                                          \
            y_ = mcu_clamp_s8(y_, -128, 127);                                                                \
        } else {                                                                                             \
            y_ = y_ < lo ? lo : y_;                                                                          \
            y_ = y_ > hi ? hi : y_;                                                                          \
        }                                                                                                    \
        (dst) = (int8_t)y_;                                                                                  \
    }

/* mcu_requantize_fast(acc, mult, round, shift_hi) clamped to int8 by SSAT and stored at *dst (dst += 1), with
 * %[m] = mult and %[s] = shift_hi already loaded and the channel's round at byte offset `ro` of [q]. The
 * -2^31 * (acc < 0) of mcu_requant.h is a second SMLAL: (acc >> 31, logical) * (int32)0x80000000. */
#define MCU_GEMM_RQ_ASM(ro, acc, dst)                                                                        \
    "ldrd %[rl], %[rh], [%[q], #" ro "]\n\t"                                                                  \
    "smlal %[rl], %[rh], " acc ", %[m]\n\t"                                                                  \
    "lsr %[t], " acc ", #31\n\t"                                                                             \
    "smlal %[rl], %[rh], %[t], %[c]\n\t"                                                                     \
    "asr %[rh], %[rh], %[s]\n\t"                                                                             \
    "ssat %[rh], #8, %[rh]\n\t"                                                                              \
    "strb %[rh], [" dst "], #1\n\t"

/* The same without the -2^31 * (acc < 0) term, when act_min >= the output zero point: that term lowers the
 * result by at most 1 and only for acc < 0, where both forms give at most the zero point (see mcu_requant_x2_s8),
 * which the clamp raises to act_min. Five instructions per output instead of seven. */
#define MCU_GEMM_RQ0_ASM(ro, acc, dst)                                                                       \
    "ldrd %[rl], %[rh], [%[q], #" ro "]\n\t"                                                                  \
    "smlal %[rl], %[rh], " acc ", %[m]\n\t"                                                                  \
    "asr %[rh], %[rh], %[s]\n\t"                                                                             \
    "ssat %[rh], #8, %[rh]\n\t"                                                                              \
    "strb %[rh], [" dst "], #1\n\t"

/* a 2x2 block's outputs (channel pair at [q], pixels at [d0] and [d1]) and a 1x4 block's, by RQ */
#define MCU_GEMM_RQ_2X2(RQ)                                                                                  \
    "ldrd %[m], %[s], [%[q], #4]\n\t" RQ("16", "%[a0]", "%[d0]") RQ("16", "%[b0]", "%[d1]")                    \
    "ldrd %[m], %[s], [%[q], #28]\n\t" RQ("40", "%[a1]", "%[d0]") RQ("40", "%[b1]", "%[d1]")
#define MCU_GEMM_RQ_1X4(RQ)                                                                                  \
    "ldrd %[m], %[s], [%[q], #4]\n\t" RQ("16", "%[a0]", "%[d0]")                                              \
    "ldrd %[m], %[s], [%[q], #28]\n\t" RQ("40", "%[a1]", "%[d0]")                                             \
    "ldrd %[m], %[s], [%[q], #52]\n\t" RQ("64", "%[a2]", "%[d0]")                                             \
    "ldrd %[m], %[s], [%[q], #76]\n\t" RQ("88", "%[a3]", "%[d0]")

#define MCU_GEMM_RQ_2X2_OUT                                                                                  \
    [d0] "+r"(d0), [d1] "+r"(d1), [q] "+r"(q), [m] "=&r"(m), [s] "=&r"(s), [rl] "=&r"(rl), [rh] "=&r"(rh)
#define MCU_GEMM_RQ_2X2_IN [a0] "r"(a0), [a1] "r"(a1), [b0] "r"(b0), [b1] "r"(b1)
#define MCU_GEMM_RQ_1X4_OUT [d0] "+r"(d0), [q] "+r"(q), [m] "=&r"(m), [s] "=&r"(s), [rl] "=&r"(rl), [rh] "=&r"(rh)
#define MCU_GEMM_RQ_1X4_IN [a0] "r"(a0), [a1] "r"(a1), [a2] "r"(a2), [a3] "r"(a3)

/* A block's outputs by BODY (MCU_GEMM_RQ_2X2 or _1X4), with or without the sign correction as the compile-time
 * `nosign` says, then q advanced by `qstep` bytes (the block's channel records). */
#define MCU_GEMM_RQ_BLOCK(BODY, qstep, OUT, IN)                                                              \
    {                                                                                                        \
        int32_t m, s, rl, rh, t;                                                                             \
        if (nosign)                                                                                          \
            __asm__ volatile(BODY(MCU_GEMM_RQ0_ASM) "add %[q], %[q], #" qstep "\n\t"                           \
                             : OUT : IN : "cc", "memory");                                                   \
        else                                                                                                 \
            __asm__ volatile(BODY(MCU_GEMM_RQ_ASM) "add %[q], %[q], #" qstep "\n\t"                            \
                             : OUT, [t] "=&r"(t) : IN, [c] "r"(INT32_MIN) : "cc", "memory");                 \
    }

/* 4 taps of 2 pixels x 2 channels: three LDRD (both pixels' widened taps, the two channels' weight words), four
 * SXTB16, eight SMLAD. GCC split the LDRDs and spilled accumulators when this was C. */
#define MCU_GEMM_2X2_ASM                                                                                     \
    "ldrd %[x0e], %[x0o], [%[x]], #8\n\t"                                                                     \
    "ldrd %[x1e], %[x1o], [%[x]], #8\n\t"                                                                     \
    "ldrd %[w0], %[w1], [%[w]], #8\n\t"                                                                       \
    "sxtb16 %[t], %[w0]\n\t"                                                                                  \
    "smlad %[a0], %[x0e], %[t], %[a0]\n\t"                                                                    \
    "smlad %[b0], %[x1e], %[t], %[b0]\n\t"                                                                    \
    "sxtb16 %[w0], %[w0], ror #8\n\t"                                                                         \
    "smlad %[a0], %[x0o], %[w0], %[a0]\n\t"                                                                   \
    "smlad %[b0], %[x1o], %[w0], %[b0]\n\t"                                                                   \
    "sxtb16 %[t], %[w1]\n\t"                                                                                  \
    "smlad %[a1], %[x0e], %[t], %[a1]\n\t"                                                                    \
    "smlad %[b1], %[x1e], %[t], %[b1]\n\t"                                                                    \
    "sxtb16 %[w1], %[w1], ror #8\n\t"                                                                         \
    "smlad %[a1], %[x0o], %[w1], %[a1]\n\t"                                                                   \
    "smlad %[b1], %[x1o], %[w1], %[b1]\n\t"
#define MCU_GEMM_2X2_OUT                                                                                     \
    [a0] "+r"(a0), [a1] "+r"(a1), [b0] "+r"(b0), [b1] "+r"(b1), [x] "+r"(x), [w] "+r"(w), [x0e] "=&r"(x0e),     \
        [x0o] "=&r"(x0o), [x1e] "=&r"(x1e), [x1o] "=&r"(x1o), [w0] "=&r"(w0), [w1] "=&r"(w1), [t] "=&r"(t)

/* 4 taps of 1 pixel x 4 channels (a fully connected row): three LDRD, eight SXTB16, eight SMLAD */
#define MCU_GEMM_1X4_ASM                                                                                     \
    "ldrd %[xe], %[xo], [%[x]], #8\n\t"                                                                       \
    "ldrd %[w0], %[w1], [%[w]], #8\n\t"                                                                       \
    "ldrd %[w2], %[w3], [%[w]], #8\n\t"                                                                       \
    "sxtb16 %[t], %[w0]\n\t"                                                                                  \
    "smlad %[a0], %[xe], %[t], %[a0]\n\t"                                                                     \
    "sxtb16 %[w0], %[w0], ror #8\n\t"                                                                         \
    "smlad %[a0], %[xo], %[w0], %[a0]\n\t"                                                                    \
    "sxtb16 %[t], %[w1]\n\t"                                                                                  \
    "smlad %[a1], %[xe], %[t], %[a1]\n\t"                                                                     \
    "sxtb16 %[w1], %[w1], ror #8\n\t"                                                                         \
    "smlad %[a1], %[xo], %[w1], %[a1]\n\t"                                                                    \
    "sxtb16 %[t], %[w2]\n\t"                                                                                  \
    "smlad %[a2], %[xe], %[t], %[a2]\n\t"                                                                     \
    "sxtb16 %[w2], %[w2], ror #8\n\t"                                                                         \
    "smlad %[a2], %[xo], %[w2], %[a2]\n\t"                                                                    \
    "sxtb16 %[t], %[w3]\n\t"                                                                                  \
    "smlad %[a3], %[xe], %[t], %[a3]\n\t"                                                                     \
    "sxtb16 %[w3], %[w3], ror #8\n\t"                                                                         \
    "smlad %[a3], %[xo], %[w3], %[a3]\n\t"
#define MCU_GEMM_1X4_OUT                                                                                     \
    [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "+r"(x), [w] "+r"(w), [xe] "=&r"(xe),      \
        [xo] "=&r"(xo), [w0] "=&r"(w0), [w1] "=&r"(w1), [w2] "=&r"(w2), [w3] "=&r"(w3), [t] "=&r"(t)

/* int4 weights (mcu_conv_gemm_s8_w4): one word holds 4 taps of 2 channels, byte j = (ch0 tap j) << 4 | (ch1 tap j)
 * & 15. AND with 0xF0F0F0F0 (%[m4]) gives ch0's bytes as 16 w, AND of the word << 4 ch1's; SXTB16 of each then
 * gives SMLAD's pairs as for int8 weights, 16 times the weight: the accumulators (started at 16 bias) hold 16x the
 * int8 layer's, exact, and are shifted back (>> 4) before the requantization.
 * 2 pixels x 2 channels: the channel words are unpacked first, then each pixel's taps loaded in turn (so that
 * the mask has a register): LDR, two AND, four SXTB16, two LDRD, eight SMLAD (17 instructions, int8's 15). */
#define MCU_GEMM_2X2_S4_ASM                                                                                  \
    "ldr %[w0], [%[w]], #4\n\t"                                                                               \
    "and %[w1], %[w0], %[m4]\n\t"                                                                             \
    "and %[w0], %[m4], %[w0], lsl #4\n\t"                                                                     \
    "sxtb16 %[p0], %[w1]\n\t"                                                                                 \
    "sxtb16 %[w1], %[w1], ror #8\n\t"                                                                         \
    "sxtb16 %[p1], %[w0]\n\t"                                                                                 \
    "sxtb16 %[w0], %[w0], ror #8\n\t"                                                                         \
    "ldrd %[xe], %[xo], [%[x]], #8\n\t"                                                                       \
    "smlad %[a0], %[xe], %[p0], %[a0]\n\t"                                                                    \
    "smlad %[a0], %[xo], %[w1], %[a0]\n\t"                                                                    \
    "smlad %[a1], %[xe], %[p1], %[a1]\n\t"                                                                    \
    "smlad %[a1], %[xo], %[w0], %[a1]\n\t"                                                                    \
    "ldrd %[xe], %[xo], [%[x]], #8\n\t"                                                                       \
    "smlad %[b0], %[xe], %[p0], %[b0]\n\t"                                                                    \
    "smlad %[b0], %[xo], %[w1], %[b0]\n\t"                                                                    \
    "smlad %[b1], %[xe], %[p1], %[b1]\n\t"                                                                    \
    "smlad %[b1], %[xo], %[w0], %[b1]\n\t"
#define MCU_GEMM_2X2_S4_OUT                                                                                  \
    [a0] "+r"(a0), [a1] "+r"(a1), [b0] "+r"(b0), [b1] "+r"(b1), [x] "+r"(x), [w] "+r"(w), [xe] "=&r"(x0e),      \
        [xo] "=&r"(x0o), [p0] "=&r"(x1e), [p1] "=&r"(x1o), [w0] "=&r"(w0), [w1] "=&r"(w1)

/* int4, 1 pixel x 4 channels (two words: channels 0, 1 and 2, 3 as above): two LDRD, four AND, eight SXTB16,
 * eight SMLAD (int8's: three LDRD) */
#define MCU_GEMM_1X4_S4_ASM                                                                                  \
    "ldrd %[xe], %[xo], [%[x]], #8\n\t"                                                                       \
    "ldrd %[w0], %[w1], [%[w]], #8\n\t"                                                                       \
    "and %[w2], %[w0], %[m4]\n\t"                                                                             \
    "and %[w0], %[m4], %[w0], lsl #4\n\t"                                                                     \
    "sxtb16 %[t], %[w2]\n\t"                                                                                  \
    "smlad %[a0], %[xe], %[t], %[a0]\n\t"                                                                     \
    "sxtb16 %[w2], %[w2], ror #8\n\t"                                                                         \
    "smlad %[a0], %[xo], %[w2], %[a0]\n\t"                                                                    \
    "sxtb16 %[t], %[w0]\n\t"                                                                                  \
    "smlad %[a1], %[xe], %[t], %[a1]\n\t"                                                                     \
    "sxtb16 %[w0], %[w0], ror #8\n\t"                                                                         \
    "smlad %[a1], %[xo], %[w0], %[a1]\n\t"                                                                    \
    "and %[w2], %[w1], %[m4]\n\t"                                                                             \
    "and %[w1], %[m4], %[w1], lsl #4\n\t"                                                                     \
    "sxtb16 %[t], %[w2]\n\t"                                                                                  \
    "smlad %[a2], %[xe], %[t], %[a2]\n\t"                                                                     \
    "sxtb16 %[w2], %[w2], ror #8\n\t"                                                                         \
    "smlad %[a2], %[xo], %[w2], %[a2]\n\t"                                                                    \
    "sxtb16 %[t], %[w1]\n\t"                                                                                  \
    "smlad %[a3], %[xe], %[t], %[a3]\n\t"                                                                     \
    "sxtb16 %[w1], %[w1], ror #8\n\t"                                                                         \
    "smlad %[a3], %[xo], %[w1], %[a3]\n\t"
#define MCU_GEMM_1X4_S4_OUT                                                                                  \
    [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "+r"(x), [w] "+r"(w), [xe] "=&r"(xe),      \
        [xo] "=&r"(xo), [w0] "=&r"(w0), [w1] "=&r"(w1), [w2] "=&r"(w2), [t] "=&r"(t)

#define MCU_GEMM_M4 0xF0F0F0F0u /* the int4 unpacking mask */

/* int4: the accumulators back from 16x (exact: they are 16 times an int32 value) */
#define MCU_GEMM_UNSCALE4(s4, a, b, c, d)                                                                    \
    if (s4) {                                                                                                \
        (a) >>= 4;                                                                                           \
        (b) >>= 4;                                                                                           \
        (c) >>= 4;                                                                                           \
        (d) >>= 4;                                                                                           \
    }

/* the two int8-style weight words (ch0, ch1 as bytes of 16 w) of one int4 word, in C */
#define MCU_GEMM_UNPACK4(w0, w1, word)                                                                       \
    {                                                                                                        \
        const uint32_t u_ = (uint32_t)(word);                                                                \
        (w0) = (int32_t)(u_ & MCU_GEMM_M4);                                                                  \
        (w1) = (int32_t)((u_ << 4) & MCU_GEMM_M4);                                                           \
    }

/* two consecutive words from an 8-byte aligned address: one LDRD */
#define MCU_GEMM_LD2(lo, hi, ptr)                                                                            \
    {                                                                                                        \
        int64_t d_;                                                                                          \
        __builtin_memcpy(&d_, __builtin_assume_aligned((ptr), 8), 8);                                        \
        (lo) = (int32_t)d_;                                                                                  \
        (hi) = (int32_t)(d_ >> 32);                                                                          \
    }

/* 4 taps of 2 pixels (words x[0..3]) x 2 channels (words w[0..1]) */
#define MCU_GEMM_STEP2(x, w, s4)                                                                             \
    {                                                                                                        \
        int32_t x0e, x0o, x1e, x1o, w0, w1, t;                                                               \
        MCU_GEMM_LD2(x0e, x0o, (x))                                                                          \
        MCU_GEMM_LD2(x1e, x1o, (x) + 2)                                                                      \
        if (s4)                                                                                              \
            MCU_GEMM_UNPACK4(w0, w1, *(w))                                                                   \
        else                                                                                                 \
            MCU_GEMM_LD2(w0, w1, (w))                                                                        \
        t = MCU_GEMM_SXTB16(w0);                                                                             \
        a0 = MCU_GEMM_SMLAD(x0e, t, a0);                                                                     \
        b0 = MCU_GEMM_SMLAD(x1e, t, b0);                                                                     \
        t = MCU_GEMM_SXTB16_ROR8(w0);                                                                        \
        a0 = MCU_GEMM_SMLAD(x0o, t, a0);                                                                     \
        b0 = MCU_GEMM_SMLAD(x1o, t, b0);                                                                     \
        t = MCU_GEMM_SXTB16(w1);                                                                             \
        a1 = MCU_GEMM_SMLAD(x0e, t, a1);                                                                     \
        b1 = MCU_GEMM_SMLAD(x1e, t, b1);                                                                     \
        t = MCU_GEMM_SXTB16_ROR8(w1);                                                                        \
        a1 = MCU_GEMM_SMLAD(x0o, t, a1);                                                                     \
        b1 = MCU_GEMM_SMLAD(x1o, t, b1);                                                                     \
    }

/* 4 taps of 1 pixel (words x[0..1]) x 2 channels */
#define MCU_GEMM_STEP1(x, w, s4)                                                                             \
    {                                                                                                        \
        int32_t xe, xo, w0, w1;                                                                              \
        MCU_GEMM_LD2(xe, xo, (x))                                                                            \
        if (s4)                                                                                              \
            MCU_GEMM_UNPACK4(w0, w1, *(w))                                                                   \
        else                                                                                                 \
            MCU_GEMM_LD2(w0, w1, (w))                                                                        \
        a0 = MCU_GEMM_SMLAD(xe, MCU_GEMM_SXTB16(w0), a0);                                                    \
        a0 = MCU_GEMM_SMLAD(xo, MCU_GEMM_SXTB16_ROR8(w0), a0);                                               \
        a1 = MCU_GEMM_SMLAD(xe, MCU_GEMM_SXTB16(w1), a1);                                                    \
        a1 = MCU_GEMM_SMLAD(xo, MCU_GEMM_SXTB16_ROR8(w1), a1);                                               \
    }

/* 2 pixels x all output channels, 2 channels at a time; `buf` holds both pixels' fields interleaved.
 * The tap loop runs 8 taps per iteration (one group of 4 first when k4 is odd). */
#if MCU_DOT_SIMD32
/* The common case as one tight loop over channel pairs: int8 range, an even number of tap groups. Only the
 * pointers it needs stay live (q, w, d0, d1 and the ends), so fewer spills around the 14-register tap loop. */
MCU_DOT_INLINE void mcu_gemm_2px_fast(const mcu_conv_gemm_params* p, const int32_t* buf, int8_t* d0, int32_t k4,
                                      const int by16, const int nosign, const int s4)
{
    const mcu_gemm_channel* q = p->q;
    const int32_t* w = p->weights;
    int8_t* d1 = d0 + p->o;
    int8_t* const dend = d1;
    do {
        int32_t a0 = q[0].bias, a1 = q[1].bias, b0 = a0, b1 = a1;
        const int32_t* x = buf;
        const int32_t* wend = w + (s4 ? k4 : 2 * k4);
        {
            int32_t x0e, x0o, x1e, x1o, w0, w1, t;
            if (s4) /* (8 taps per branch: mcu_gemm_2px passes by16 = 0) */
                __asm__ volatile("1:\n\t" MCU_GEMM_2X2_S4_ASM MCU_GEMM_2X2_S4_ASM "cmp %[w], %[wend]\n\tbne 1b\n\t"
                                 : MCU_GEMM_2X2_S4_OUT : [wend] "r"(wend), [m4] "r"(MCU_GEMM_M4) : "cc", "memory");
            else if (by16) /* a compile-time constant: 16 taps per branch when k4 % 4 == 0 */
                __asm__ volatile("1:\n\t" MCU_GEMM_2X2_ASM MCU_GEMM_2X2_ASM MCU_GEMM_2X2_ASM MCU_GEMM_2X2_ASM
                                 "cmp %[w], %[wend]\n\tbne 1b\n\t"
                                 : MCU_GEMM_2X2_OUT : [wend] "r"(wend) : "cc", "memory");
            else
                __asm__ volatile("1:\n\t" MCU_GEMM_2X2_ASM MCU_GEMM_2X2_ASM "cmp %[w], %[wend]\n\tbne 1b\n\t"
                                 : MCU_GEMM_2X2_OUT : [wend] "r"(wend) : "cc", "memory");
            (void)t;
        }
        MCU_GEMM_UNSCALE4(s4, a0, a1, b0, b1)
        MCU_GEMM_RQ_BLOCK(MCU_GEMM_RQ_2X2, "48", MCU_GEMM_RQ_2X2_OUT, MCU_GEMM_RQ_2X2_IN)
    } while (d0 != dend);
}
#endif

MCU_DOT_INLINE void mcu_gemm_2px(const mcu_conv_gemm_params* p, const int32_t* buf, int8_t* out0, int32_t k4,
                                 int full, const int s4)
{
#if MCU_DOT_SIMD32
    if (full && !(k4 & 1)) { /* the constant arguments select one of four loops */
        if (s4) /* int4: 8 taps per branch only (16 would be 3 % fewer instructions for 1.1 KB more code) */
            mcu_gemm_2px_fast(p, buf, out0, k4, 0, p->nosign, 1);
        else if (p->nosign && !(k4 & 3))
            mcu_gemm_2px_fast(p, buf, out0, k4, 1, 1, s4);
        else if (p->nosign)
            mcu_gemm_2px_fast(p, buf, out0, k4, 0, 1, s4);
        else if (!(k4 & 3))
            mcu_gemm_2px_fast(p, buf, out0, k4, 1, 0, s4);
        else
            mcu_gemm_2px_fast(p, buf, out0, k4, 0, 0, s4);
        return;
    }
#endif
    const int32_t o = p->o, lo = p->act_min, hi = p->act_max;
    const int32_t* w = p->weights;
    const mcu_gemm_channel* q = p->q;
    int8_t* out1 = out0 + o;
    for (int32_t c = 0; c < o; c += 2, q += 2) {
        int32_t a0 = q[0].bias, a1 = q[1].bias, b0 = a0, b1 = a1;
        const int32_t* x = buf;
        const int32_t* wend = w + (s4 ? k4 : 2 * k4);
#if MCU_DOT_SIMD32
        /* the loop as written: 16.5 instructions / 16 MACs (17 when the tap groups are odd) */
        {
            int32_t x0e, x0o, x1e, x1o, w0, w1, t;
            if (s4 && (k4 & 1))
                __asm__ volatile("1:\n\t" MCU_GEMM_2X2_S4_ASM "cmp %[w], %[wend]\n\tbne 1b\n\t"
                                 : MCU_GEMM_2X2_S4_OUT : [wend] "r"(wend), [m4] "r"(MCU_GEMM_M4) : "cc", "memory");
            else if (s4)
                __asm__ volatile("1:\n\t" MCU_GEMM_2X2_S4_ASM MCU_GEMM_2X2_S4_ASM "cmp %[w], %[wend]\n\tbne 1b\n\t"
                                 : MCU_GEMM_2X2_S4_OUT : [wend] "r"(wend), [m4] "r"(MCU_GEMM_M4) : "cc", "memory");
            else if (k4 & 1)
                __asm__ volatile("1:\n\t" MCU_GEMM_2X2_ASM "cmp %[w], %[wend]\n\tbne 1b\n\t"
                                 : MCU_GEMM_2X2_OUT : [wend] "r"(wend) : "cc", "memory");
            else /* 8 taps per branch */
                __asm__ volatile("1:\n\t" MCU_GEMM_2X2_ASM MCU_GEMM_2X2_ASM "cmp %[w], %[wend]\n\tbne 1b\n\t"
                                 : MCU_GEMM_2X2_OUT : [wend] "r"(wend) : "cc", "memory");
            (void)t;
        }
#else
        while (w != wend) {
            MCU_GEMM_STEP2(x, w, s4)
            x += 4;
            w += s4 ? 1 : 2;
        }
#endif
        MCU_GEMM_UNSCALE4(s4, a0, a1, b0, b1)
#if MCU_DOT_SIMD32
        if (full) { /* the 4 outputs as mcu_requantize_fast + SSAT: 30 instructions (GCC's C took ~60) */
            int8_t* d0 = out0 + c;
            int8_t* d1 = out1 + c;
            int32_t m, s, rl, rh, t;
            __asm__ volatile(
                "ldrd %[m], %[s], [%[q], #4]\n\t"
                MCU_GEMM_RQ_ASM("16", "%[a0]", "%[d0]")
                MCU_GEMM_RQ_ASM("16", "%[b0]", "%[d1]")
                "ldrd %[m], %[s], [%[q], #28]\n\t"
                MCU_GEMM_RQ_ASM("40", "%[a1]", "%[d0]")
                MCU_GEMM_RQ_ASM("40", "%[b1]", "%[d1]")
                : [d0] "+r"(d0), [d1] "+r"(d1), [m] "=&r"(m), [s] "=&r"(s), [rl] "=&r"(rl), [rh] "=&r"(rh),
                  [t] "=&r"(t)
                : [q] "r"(q), [a0] "r"(a0), [a1] "r"(a1), [b0] "r"(b0), [b1] "r"(b1), [c] "r"(INT32_MIN)
                : "cc", "memory");
            continue;
        }
#endif
        MCU_GEMM_OUT(out0[c], a0, q[0].mult, q[0].round, q[0].shift_hi, full)
        MCU_GEMM_OUT(out1[c], b0, q[0].mult, q[0].round, q[0].shift_hi, full)
        MCU_GEMM_OUT(out0[c + 1], a1, q[1].mult, q[1].round, q[1].shift_hi, full)
        MCU_GEMM_OUT(out1[c + 1], b1, q[1].mult, q[1].round, q[1].shift_hi, full)
    }
}

/* 1 pixel x all output channels, 2 channels at a time; `buf` holds its field, 2 words per 4 taps */
MCU_DOT_INLINE void mcu_gemm_1px(const mcu_conv_gemm_params* p, const int32_t* buf, int8_t* out0, int32_t k4,
                                 int full, const int s4)
{
    const int32_t o = p->o, lo = p->act_min, hi = p->act_max;
    const int32_t* w = p->weights;
    const mcu_gemm_channel* q = p->q;
    for (int32_t c = 0; c < o; c += 2, q += 2) {
        int32_t a0 = q[0].bias, a1 = q[1].bias;
        const int32_t* x = buf;
        const int32_t* wend = w + (s4 ? k4 : 2 * k4);
#if MCU_DOT_SIMD32
        int32_t xe, xo, w0, w1, t;
        if (s4) /* int4: one word of weights per 4 taps, unpacked as in MCU_GEMM_2X2_S4_ASM */
            __asm__ volatile("1:\n\t"
                             "ldrd %[xe], %[xo], [%[x]], #8\n\t"
                             "ldr %[w0], [%[w]], #4\n\t"
                             "and %[w1], %[w0], %[m4]\n\t"
                             "and %[w0], %[m4], %[w0], lsl #4\n\t"
                             "sxtb16 %[t], %[w1]\n\t"
                             "smlad %[a0], %[xe], %[t], %[a0]\n\t"
                             "sxtb16 %[w1], %[w1], ror #8\n\t"
                             "smlad %[a0], %[xo], %[w1], %[a0]\n\t"
                             "sxtb16 %[t], %[w0]\n\t"
                             "smlad %[a1], %[xe], %[t], %[a1]\n\t"
                             "sxtb16 %[w0], %[w0], ror #8\n\t"
                             "smlad %[a1], %[xo], %[w0], %[a1]\n\t"
                             "cmp %[w], %[wend]\n\t"
                             "bne 1b\n\t"
                             : [a0] "+r"(a0), [a1] "+r"(a1), [x] "+r"(x), [w] "+r"(w), [xe] "=&r"(xe),
                               [xo] "=&r"(xo), [w0] "=&r"(w0), [w1] "=&r"(w1), [t] "=&r"(t)
                             : [wend] "r"(wend), [m4] "r"(MCU_GEMM_M4)
                             : "cc", "memory");
        else
        __asm__ volatile("1:\n\t"
                         "ldrd %[xe], %[xo], [%[x]], #8\n\t"
                         "ldrd %[w0], %[w1], [%[w]], #8\n\t"
                         "sxtb16 %[t], %[w0]\n\t"
                         "smlad %[a0], %[xe], %[t], %[a0]\n\t"
                         "sxtb16 %[w0], %[w0], ror #8\n\t"
                         "smlad %[a0], %[xo], %[w0], %[a0]\n\t"
                         "sxtb16 %[t], %[w1]\n\t"
                         "smlad %[a1], %[xe], %[t], %[a1]\n\t"
                         "sxtb16 %[w1], %[w1], ror #8\n\t"
                         "smlad %[a1], %[xo], %[w1], %[a1]\n\t"
                         "cmp %[w], %[wend]\n\t"
                         "bne 1b\n\t"
                         : [a0] "+r"(a0), [a1] "+r"(a1), [x] "+r"(x), [w] "+r"(w), [xe] "=&r"(xe), [xo] "=&r"(xo),
                           [w0] "=&r"(w0), [w1] "=&r"(w1), [t] "=&r"(t)
                         : [wend] "r"(wend)
                         : "cc", "memory");
#else
        while (w != wend) {
            MCU_GEMM_STEP1(x, w, s4)
            x += 2;
            w += s4 ? 1 : 2;
        }
#endif
        if (s4) {
            a0 >>= 4;
            a1 >>= 4;
        }
        MCU_GEMM_OUT(out0[c], a0, q[0].mult, q[0].round, q[0].shift_hi, full)
        MCU_GEMM_OUT(out0[c + 1], a1, q[1].mult, q[1].round, q[1].shift_hi, full)
    }
}

#if MCU_DOT_SIMD32
/* mcu_gemm_1px4 in int8 range with an even number of tap groups, as mcu_gemm_2px_fast: 16 taps per branch when
 * `by16` (k4 % 4 == 0), else 8; the 4 outputs requantized as there */
MCU_DOT_INLINE void mcu_gemm_1px4_fast(const mcu_conv_gemm_params* p, const int32_t* buf, int8_t* d0, int32_t k4,
                                       const int by16, const int nosign, const int s4)
{
    const mcu_gemm_channel* q = p->q;
    const int32_t* w = p->weights;
    int8_t* const dend = d0 + p->o;
    do {
        int32_t a0 = q[0].bias, a1 = q[1].bias, a2 = q[2].bias, a3 = q[3].bias;
        const int32_t* x = buf;
        const int32_t* wend = w + (s4 ? 2 * k4 : 4 * k4);
        {
            int32_t xe, xo, w0, w1, w2, w3, t;
            if (s4)
                __asm__ volatile("1:\n\t" MCU_GEMM_1X4_S4_ASM MCU_GEMM_1X4_S4_ASM "cmp %[w], %[wend]\n\tbne 1b\n\t"
                                 : MCU_GEMM_1X4_S4_OUT : [wend] "r"(wend), [m4] "r"(MCU_GEMM_M4) : "cc", "memory");
            else if (by16)
                __asm__ volatile("1:\n\t" MCU_GEMM_1X4_ASM MCU_GEMM_1X4_ASM MCU_GEMM_1X4_ASM MCU_GEMM_1X4_ASM
                                 "cmp %[w], %[wend]\n\tbne 1b\n\t"
                                 : MCU_GEMM_1X4_OUT : [wend] "r"(wend) : "cc", "memory");
            else
                __asm__ volatile("1:\n\t" MCU_GEMM_1X4_ASM MCU_GEMM_1X4_ASM "cmp %[w], %[wend]\n\tbne 1b\n\t"
                                 : MCU_GEMM_1X4_OUT : [wend] "r"(wend) : "cc", "memory");
            (void)w3;
        }
        MCU_GEMM_UNSCALE4(s4, a0, a1, a2, a3)
        MCU_GEMM_RQ_BLOCK(MCU_GEMM_RQ_1X4, "96", MCU_GEMM_RQ_1X4_OUT, MCU_GEMM_RQ_1X4_IN)
    } while (d0 != dend);
}
#endif

/* 1 pixel x all output channels, 4 at a time (a fully connected layer's row): weights (o/4, k4, 4, 4) */
MCU_DOT_INLINE void mcu_gemm_1px4(const mcu_conv_gemm_params* p, const int32_t* buf, int8_t* out0, int32_t k4,
                                  int full, const int s4)
{
#if MCU_DOT_SIMD32
    if (full && !(k4 & 1)) {
        if (s4) /* int4: 8 taps per branch only (the rows are short; less code) */
            mcu_gemm_1px4_fast(p, buf, out0, k4, 0, p->nosign, 1);
        else if (p->nosign && !(k4 & 3))
            mcu_gemm_1px4_fast(p, buf, out0, k4, 1, 1, 0);
        else if (p->nosign)
            mcu_gemm_1px4_fast(p, buf, out0, k4, 0, 1, 0);
        else if (!(k4 & 3))
            mcu_gemm_1px4_fast(p, buf, out0, k4, 1, 0, 0);
        else
            mcu_gemm_1px4_fast(p, buf, out0, k4, 0, 0, 0);
        return;
    }
#endif
    const int32_t o = p->o, lo = p->act_min, hi = p->act_max;
    const int32_t* w = p->weights;
    const mcu_gemm_channel* q = p->q;
    for (int32_t c = 0; c < o; c += 4, q += 4) {
        int32_t a0 = q[0].bias, a1 = q[1].bias, a2 = q[2].bias, a3 = q[3].bias;
        const int32_t* x = buf;
        const int32_t* wend = w + (s4 ? 2 * k4 : 4 * k4);
#if MCU_DOT_SIMD32
        int32_t xe, xo, w0, w1, w2, w3, t;
        if (s4 && (k4 & 1))
            __asm__ volatile("1:\n\t" MCU_GEMM_1X4_S4_ASM "cmp %[w], %[wend]\n\tbne 1b\n\t"
                             : MCU_GEMM_1X4_S4_OUT : [wend] "r"(wend), [m4] "r"(MCU_GEMM_M4) : "cc", "memory");
        else if (s4)
            __asm__ volatile("1:\n\t" MCU_GEMM_1X4_S4_ASM MCU_GEMM_1X4_S4_ASM "cmp %[w], %[wend]\n\tbne 1b\n\t"
                             : MCU_GEMM_1X4_S4_OUT : [wend] "r"(wend), [m4] "r"(MCU_GEMM_M4) : "cc", "memory");
        else if (k4 & 1)
            __asm__ volatile("1:\n\t" MCU_GEMM_1X4_ASM "cmp %[w], %[wend]\n\tbne 1b\n\t"
                             : MCU_GEMM_1X4_OUT : [wend] "r"(wend) : "cc", "memory");
        else /* 8 taps per branch */
            __asm__ volatile("1:\n\t" MCU_GEMM_1X4_ASM MCU_GEMM_1X4_ASM "cmp %[w], %[wend]\n\tbne 1b\n\t"
                             : MCU_GEMM_1X4_OUT : [wend] "r"(wend) : "cc", "memory");
        (void)w3;
#else
        while (w != wend) {
            const int32_t xe = x[0], xo = x[1];
            int32_t v[4] = {w[0], w[1], w[2], w[3]};
            if (s4) {
                MCU_GEMM_UNPACK4(v[0], v[1], w[0])
                MCU_GEMM_UNPACK4(v[2], v[3], w[1])
            }
            a0 = MCU_GEMM_SMLAD(xo, MCU_GEMM_SXTB16_ROR8(v[0]), MCU_GEMM_SMLAD(xe, MCU_GEMM_SXTB16(v[0]), a0));
            a1 = MCU_GEMM_SMLAD(xo, MCU_GEMM_SXTB16_ROR8(v[1]), MCU_GEMM_SMLAD(xe, MCU_GEMM_SXTB16(v[1]), a1));
            a2 = MCU_GEMM_SMLAD(xo, MCU_GEMM_SXTB16_ROR8(v[2]), MCU_GEMM_SMLAD(xe, MCU_GEMM_SXTB16(v[2]), a2));
            a3 = MCU_GEMM_SMLAD(xo, MCU_GEMM_SXTB16_ROR8(v[3]), MCU_GEMM_SMLAD(xe, MCU_GEMM_SXTB16(v[3]), a3));
            x += 2;
            w += s4 ? 2 : 4;
        }
#endif
        MCU_GEMM_UNSCALE4(s4, a0, a1, a2, a3)
        MCU_GEMM_OUT(out0[c], a0, q[0].mult, q[0].round, q[0].shift_hi, full)
        MCU_GEMM_OUT(out0[c + 1], a1, q[1].mult, q[1].round, q[1].shift_hi, full)
        MCU_GEMM_OUT(out0[c + 2], a2, q[2].mult, q[2].round, q[2].shift_hi, full)
        MCU_GEMM_OUT(out0[c + 3], a3, q[3].mult, q[3].round, q[3].shift_hi, full)
    }
}

/* n bytes of s to d (any alignment), a word at a time: a run's length is a run-time value here, where memcpy /
 * memset would be library calls (the empty asm keeps GCC from making the loops into them) */
#if defined(__GNUC__)
#define MCU_GEMM_NO_LIBCALL(ptr) __asm__("" : "+r"(ptr))
#else
#define MCU_GEMM_NO_LIBCALL(ptr) ((void)0)
#endif
MCU_DOT_INLINE void mcu_gemm_copy(int8_t* d, const int8_t* s, int32_t n)
{
    for (; n >= 4; n -= 4, d += 4, s += 4) {
        int32_t v;
        __builtin_memcpy(&v, s, 4);
        __builtin_memcpy(d, &v, 4);
        MCU_GEMM_NO_LIBCALL(d);
    }
    for (; n > 0; n--) {
        *d++ = *s++;
        MCU_GEMM_NO_LIBCALL(d);
    }
}

MCU_DOT_INLINE void mcu_gemm_fill(int8_t* d, int32_t v, int32_t n)
{
    for (; n > 0; n--) {
        *d++ = (int8_t)v;
        MCU_GEMM_NO_LIBCALL(d);
    }
}

/* int4 layers whose input channels are not a multiple of 4 (a first conv over 1 or 3 channels; dilation 1): the
 * window of pixel `pix` gathered as bytes into `col` (kh runs of kw * c bytes; inside the input one copy per
 * kernel row, at the border the columns outside the input the zero point; the tail up to 4 * k4 taps holds the
 * zero point already), then widened into its field of `buf` (`step` as mcu_gemm_im2col's) */
#if defined(__GNUC__) && !defined(__clang__)
/* out of line at -Os: its loops are short, and -O3's unrolled copies were larger and slower */
__attribute__((noinline, noclone, unused, optimize("Os")))
#endif
static void mcu_gemm_gather(const mcu_conv_gemm_params* p, const int8_t* in, int32_t pix, int32_t* dst, int32_t step,
                            int32_t k4, int8_t* col)
{
    const int32_t c = p->c, kw = p->kw, run = kw * c, oy = pix / p->ow, ox = pix - oy * p->ow;
    const int32_t y0 = oy * p->sh - p->pt, x0 = ox * p->sw - p->pl;
    const int32_t off = (int32_t)(((uint32_t)p->x_offset & 0xFFFFu) | ((uint32_t)p->x_offset << 16));
    int8_t* d = col;
    if (y0 >= 0 && x0 >= 0 && y0 + p->kh <= p->h && x0 + kw <= p->w) {
        const int8_t* s = in + (y0 * p->w + x0) * c;
        for (int32_t ky = 0; ky < p->kh; ky++, s += p->w * c, d += run)
            mcu_gemm_copy(d, s, run);
    } else {
        for (int32_t iy = y0; iy < y0 + p->kh; iy++, d += run) {
            int32_t a = 0, b = 0; /* the kernel columns inside the input: [a, b) */
            if (iy >= 0 && iy < p->h) {
                a = x0 < 0 ? -x0 : 0;
                b = x0 + kw > p->w ? p->w - x0 : kw;
                b = b < a ? a : b;
            }
            mcu_gemm_fill(d, -p->x_offset, a * c);
            mcu_gemm_copy(d + a * c, in + (iy * p->w + x0 + a) * c, (b - a) * c);
            mcu_gemm_fill(d + b * c, -p->x_offset, (kw - b) * c);
        }
    }
    mcu_gemm_widen(dst, col, k4, off, step);
}

/* Pixels `pix` and `pix` + 1 by mcu_gemm_gather into `buf` (interleaved); `col` holds two windows' bytes, 4 * k4 + 4
 * apart. When both windows are inside the input on one row, their kernel rows are copied in one loop of whole
 * words (the second window's `sw` pixels on; a row's last word may carry up to 3 bytes past it, which the next row
 * or, after the last row, the taps with zero weights take; read only where the input has them). */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((noinline, noclone, unused, optimize("Os"))) /* as mcu_gemm_gather */
#endif
static void mcu_gemm_gather2(const mcu_conv_gemm_params* p, const int8_t* in, int32_t pix, int32_t* buf, int32_t k4,
                             int8_t* col)
{
    const int32_t c = p->c, run = p->kw * c, oy = pix / p->ow, ox = pix - oy * p->ow, row = p->w * c;
    const int32_t y0 = oy * p->sh - p->pt, x0 = ox * p->sw - p->pl, n4 = (run + 3) >> 2, apart = 4 * k4 + 4;
    if (ox + 1 < p->ow && y0 >= 0 && x0 >= 0 && y0 + p->kh <= p->h && x0 + p->sw + p->kw <= p->w
        && (y0 + p->kh - 1) * row + (x0 + p->sw) * c + 4 * n4 <= p->h * row) {
        const int32_t off = (int32_t)(((uint32_t)p->x_offset & 0xFFFFu) | ((uint32_t)p->x_offset << 16));
        const int8_t* s = in + y0 * row + x0 * c;
        int8_t* d = col;
        for (int32_t ky = 0; ky < p->kh; ky++, s += row, d += run) {
            const int8_t* s1 = s + p->sw * c;
            for (int32_t j = 0; j < 4 * n4; j += 4) {
                int32_t v0, v1;
                __builtin_memcpy(&v0, s + j, 4);
                __builtin_memcpy(&v1, s1 + j, 4);
                __builtin_memcpy(d + j, &v0, 4);
                __builtin_memcpy(d + apart + j, &v1, 4);
            }
        }
        mcu_gemm_widen(buf, col, k4, off, 4);
        mcu_gemm_widen(buf + 2, col + apart, k4, off, 4);
        return;
    }
    mcu_gemm_gather(p, in, pix, buf, 4, k4, col);
    mcu_gemm_gather(p, in, pix + 1, buf + 2, 4, k4, col + apart);
}

MCU_DOT_INLINE void mcu_conv_gemm_body(const int8_t* in, int8_t* out, const mcu_conv_gemm_params* p, int32_t* buf,
                                       int full, const int s4)
{
    const int32_t k4 = p->kh * p->kw * (p->c >> 2), n = p->oh * p->ow;
    int32_t i = 0;
    if (p->quad) {
        mcu_gemm_im2col(p, in, 0, buf, 2);
        mcu_gemm_1px4(p, buf, out, k4, full, s4);
        return;
    }
    for (; i + 2 <= n; i += 2) {
        mcu_gemm_im2col2(p, in, i, buf);
        mcu_gemm_2px(p, buf, out + i * p->o, k4, full, s4);
    }
    if (i < n) {
        mcu_gemm_im2col(p, in, i, buf, 2);
        mcu_gemm_1px(p, buf, out + i * p->o, k4, full, s4);
    }
}

/* mcu_conv_gemm_body for int4 weights, which also takes input channels that are not a multiple of 4 (`gather`:
 * then buf holds the pair's fields, 4 * k4 words, and the two windows' gathered bytes after them, 2 * k4 + 2
 * words) */
MCU_DOT_INLINE void mcu_conv_gemm_body_w4(const int8_t* in, int8_t* out, const mcu_conv_gemm_params* p,
                                          int32_t* buf, int full)
{
    const int gather = p->c & 3; /* taps padded to groups of 8: an even k4 takes mcu_gemm_2px_fast */
    const int32_t k4 = gather ? ((p->kh * p->kw * p->c + 7) >> 3) << 1 : p->kh * p->kw * p->c >> 2;
    const int32_t n = p->oh * p->ow;
    int8_t* col = (int8_t*)(buf + 4 * k4);
    int32_t i = 0;
    for (int32_t j = 0; gather && j < 2; j++) /* the taps past the windows (zero weights): the zero point */
        mcu_gemm_fill(col + j * (4 * k4 + 4) + p->kh * p->kw * p->c, -p->x_offset, 4 * k4 - p->kh * p->kw * p->c);
    if (p->quad) {
        mcu_gemm_im2col(p, in, 0, buf, 2);
        mcu_gemm_1px4(p, buf, out, k4, full, 1);
        return;
    }
    for (; i + 2 <= n; i += 2) {
        if (gather)
            mcu_gemm_gather2(p, in, i, buf, k4, col);
        else
            mcu_gemm_im2col2(p, in, i, buf);
        mcu_gemm_2px(p, buf, out + i * p->o, k4, full, 1);
    }
    if (i < n) {
        if (gather)
            mcu_gemm_gather(p, in, i, buf, 2, k4, col);
        else
            mcu_gemm_im2col(p, in, i, buf, 2);
        mcu_gemm_1px(p, buf, out + i * p->o, k4, full, 1);
    }
}

/* The layer: `buf` holds kh * kw * c words (the two pixels' widened fields), 8-byte aligned. */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((noinline, noclone, unused)) /* once in the image: no per-layer clones */
#elif defined(__GNUC__)
__attribute__((noinline, unused))
#endif
MCU_KERNEL_OPT static void mcu_conv_gemm_s8(const int8_t* restrict in, int8_t* restrict out,
                                           const mcu_conv_gemm_params* p, int32_t* restrict buf)
{
    /* `full` stays a run-time flag (one test per output block): specializing the body on it doubled the code */
    mcu_conv_gemm_body(in, out, p, buf, p->act_min == -128 && p->act_max == 127, 0);
}

/* The same layer with int4 weights (packed as MCU_GEMM_2X2_S4_ASM says; the bias records hold 16 bias): a second
 * instance of the body, in the image only when some layer has int4 weights. */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((noinline, noclone, unused))
#elif defined(__GNUC__)
__attribute__((noinline, unused))
#endif
MCU_KERNEL_OPT static void mcu_conv_gemm_s8_w4(const int8_t* restrict in, int8_t* restrict out,
                                              const mcu_conv_gemm_params* p, int32_t* restrict buf)
{
    mcu_conv_gemm_body_w4(in, out, p, buf, p->act_min == -128 && p->act_max == 127);
}

#endif /* MCU_GEMM */

#endif /* MCU_CONV_GEMM_S8_H */
