/*
 * mcu_dot_s8.h - int8 dot-product micro-kernels called by TVM-tensorized kernels (mcutool/codegen/tvm_intrin.py), and
 * the int16 x int8 ones of the hand-written 16x8 conv kernels (mcu_dot_s16_s8, mcu_dot2_s16_s8, at the end).
 *
 * Cortex-M with the DSP extension (M4, M7, M33 with DSP: __ARM_FEATURE_SIMD32): four int8 products per
 * two SMLAD, operands widened with SXTB16 (bytes 0,2) and SXTB16 ROR #8 (bytes 1,3); the pairing is the same
 * for both operands, so no re-layout of weights is needed. The input offset (-zero point) rides along for
 * free in SXTAB16; (x - zp) in [-255, 255] and w in [-128, 127] keep every SMLAD exact.
 * Elsewhere (host, RISC-V, M0/M3): the plain loop. Both give the exact int32 sum (|sum| < 2^31 for any
 * layer with fewer than 2^15 taps per output).
 */
#ifndef MCU_DOT_S8_H
#define MCU_DOT_S8_H

#include <stdint.h>
/* memcpy/memset: compiler builtins; the call they may become is resolved by the libc or by firmware/common/mcu_string.c */

/* The firmware is built with -Os, under which GCC keeps these as out-of-line calls (accumulators through
 * memory, no constant propagation of n / w_stride): force inlining, they are small. */
#if defined(__GNUC__)
#define MCU_DOT_INLINE static inline __attribute__((always_inline))
#else
#define MCU_DOT_INLINE static inline
#endif

#if defined(__ARM_FEATURE_SIMD32) && __ARM_FEATURE_SIMD32
#include <arm_acle.h>
#define MCU_DOT_SIMD32 1
#else
#define MCU_DOT_SIMD32 0
#endif

#if MCU_DOT_SIMD32
/* 4 int8 from an address that is only byte aligned (LDR allows that on v7-M/v8-M mainline). */
MCU_DOT_INLINE int8x4_t mcu_ld_s8x4(const int8_t* p)
{
    int8x4_t v;
    __builtin_memcpy(&v, p, 4);
    return v;
}

/* SXTB16 ROR #8: bytes 1 and 3 sign-extended to two int16 (GCC has no intrinsic with the rotation). */
MCU_DOT_INLINE int16x2_t mcu_sxtb16_ror8(int8x4_t v)
{
    int16x2_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}
#endif

/* Both operands' halfword pairs, with `x_offset` added to the input: SXTAB16 costs what SXTB16 does. */
#if MCU_DOT_SIMD32
MCU_DOT_INLINE int16x2_t mcu_sxtab16_ror8(int16x2_t a, int8x4_t v)
{
    int16x2_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(v));
    return r;
}

MCU_DOT_INLINE int16x2_t mcu_dup16(int32_t v)
{
    return (int16x2_t)(((uint32_t)v & 0xFFFFu) | ((uint32_t)v << 16));
}
#endif

/* acc + sum_{i<n} (x[i] + x_offset) * w[i]; x_offset is minus the input zero point, in [-127, 128]. */
MCU_DOT_INLINE int32_t mcu_dot_s8(const int8_t* x, const int8_t* w, int32_t n, int32_t x_offset, int32_t acc)
{
#if MCU_DOT_SIMD32
    const int16x2_t off = mcu_dup16(x_offset);
    for (; n >= 4; n -= 4, x += 4, w += 4) {
        const int8x4_t xv = mcu_ld_s8x4(x), wv = mcu_ld_s8x4(w);
        acc = __smlad(__sxtab16(off, xv), __sxtb16(wv), acc);
        acc = __smlad(mcu_sxtab16_ror8(off, xv), mcu_sxtb16_ror8(wv), acc);
    }
#endif
    for (; n > 0; --n)
        acc += ((int32_t)*x++ + x_offset) * (int32_t)*w++;
    return acc;
}

/* Two output channels sharing one input vector:
 * acc[j] += sum_{i<n} (x[i] + x_offset) * w[j * w_stride + i], j = 0, 1. */
MCU_DOT_INLINE void mcu_dot2_s8(const int8_t* x, const int8_t* w, int32_t w_stride, int32_t n, int32_t x_offset,
                               int32_t* acc)
{
    int32_t a0 = acc[0], a1 = acc[1];
    const int8_t* w0 = w;
    const int8_t* w1 = w + w_stride;
#if MCU_DOT_SIMD32
    const int16x2_t off = mcu_dup16(x_offset);
    for (; n >= 4; n -= 4, x += 4, w0 += 4, w1 += 4) {
        const int8x4_t xv = mcu_ld_s8x4(x), v0 = mcu_ld_s8x4(w0), v1 = mcu_ld_s8x4(w1);
        const int16x2_t xe = __sxtab16(off, xv), xo = mcu_sxtab16_ror8(off, xv);
        a0 = __smlad(xe, __sxtb16(v0), a0);
        a0 = __smlad(xo, mcu_sxtb16_ror8(v0), a0);
        a1 = __smlad(xe, __sxtb16(v1), a1);
        a1 = __smlad(xo, mcu_sxtb16_ror8(v1), a1);
    }
#endif
    for (; n > 0; --n, ++x, ++w0, ++w1) {
        const int32_t xi = (int32_t)*x + x_offset;
        a0 += xi * (int32_t)*w0;
        a1 += xi * (int32_t)*w1;
    }
    acc[0] = a0;
    acc[1] = a1;
}

/* Four output channels sharing one input vector:
 * acc[j] += sum_{i<n} (x[i] + x_offset) * w[j * w_stride + i], j = 0..3. */
MCU_DOT_INLINE void mcu_dot4_s8(const int8_t* x, const int8_t* w, int32_t w_stride, int32_t n, int32_t x_offset,
                               int32_t* acc)
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    const int8_t* w0 = w;
#if MCU_DOT_SIMD32
    const int16x2_t off = mcu_dup16(x_offset);
    for (; n >= 4; n -= 4, x += 4, w0 += 4) {
        const int8x4_t xv = mcu_ld_s8x4(x);
        const int16x2_t xe = __sxtab16(off, xv), xo = mcu_sxtab16_ror8(off, xv);
        int8x4_t v = mcu_ld_s8x4(w0);
        a0 = __smlad(xe, __sxtb16(v), a0);
        a0 = __smlad(xo, mcu_sxtb16_ror8(v), a0);
        v = mcu_ld_s8x4(w0 + w_stride);
        a1 = __smlad(xe, __sxtb16(v), a1);
        a1 = __smlad(xo, mcu_sxtb16_ror8(v), a1);
        v = mcu_ld_s8x4(w0 + 2 * w_stride);
        a2 = __smlad(xe, __sxtb16(v), a2);
        a2 = __smlad(xo, mcu_sxtb16_ror8(v), a2);
        v = mcu_ld_s8x4(w0 + 3 * w_stride);
        a3 = __smlad(xe, __sxtb16(v), a3);
        a3 = __smlad(xo, mcu_sxtb16_ror8(v), a3);
    }
#endif
    for (; n > 0; --n, ++x, ++w0) {
        const int32_t xi = (int32_t)*x + x_offset;
        a0 += xi * (int32_t)w0[0];
        a1 += xi * (int32_t)w0[w_stride];
        a2 += xi * (int32_t)w0[2 * w_stride];
        a3 += xi * (int32_t)w0[3 * w_stride];
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/*
 * The same with weights stored as int16, pre-widened at compile time in SXTB16's lane order: each group of
 * four weights w0 w1 w2 w3 is stored as w0 w2 w1 w3, so one LDR gives the pair that matches SXTAB16(x) and
 * the next the pair that matches SXTAB16(x, ROR #8). Twice the weight bytes, four SXTB16 fewer per 16 MACs.
 * n must be a multiple of 4.
 */
MCU_DOT_INLINE int32_t mcu_ld_s16x2(const int16_t* p)
{
    int32_t v;
    __builtin_memcpy(&v, p, 4);
    return v;
}

MCU_DOT_INLINE int32_t mcu_dot_w16_row(const int8_t* x, const int16_t* w, int32_t n, int32_t x_offset,
                                      int32_t acc)
{
#if MCU_DOT_SIMD32
    const int16x2_t off = mcu_dup16(x_offset);
    for (; n >= 4; n -= 4, x += 4, w += 4) {
        const int8x4_t xv = mcu_ld_s8x4(x);
        acc = __smlad(__sxtab16(off, xv), mcu_ld_s16x2(w), acc);
        acc = __smlad(mcu_sxtab16_ror8(off, xv), mcu_ld_s16x2(w + 2), acc);
    }
#else
    for (; n >= 4; n -= 4, x += 4, w += 4)
        acc += ((int32_t)x[0] + x_offset) * w[0] + ((int32_t)x[1] + x_offset) * w[2]
             + ((int32_t)x[2] + x_offset) * w[1] + ((int32_t)x[3] + x_offset) * w[3];
#endif
    return acc;
}

/* acc + sum_{i<n} (x[i] + x_offset) * w[i], w in the int16 lane order above */
MCU_DOT_INLINE int32_t mcu_dot_s8_w16(const int8_t* x, const int16_t* w, int32_t n, int32_t x_offset, int32_t acc)
{
    return mcu_dot_w16_row(x, w, n, x_offset, acc);
}

/* acc[j] += sum_{i<n} (x[i] + x_offset) * w[j * w_stride + i], j < 2, w in the int16 lane order above */
MCU_DOT_INLINE void mcu_dot2_s8_w16(const int8_t* x, const int16_t* w, int32_t w_stride, int32_t n,
                                   int32_t x_offset, int32_t* acc)
{
#if MCU_DOT_SIMD32
    int32_t a0 = acc[0], a1 = acc[1];
    const int16_t* w0 = w;
    const int16_t* w1 = w + w_stride;
    const int16x2_t off = mcu_dup16(x_offset);
    for (; n >= 4; n -= 4, x += 4, w0 += 4, w1 += 4) {
        const int8x4_t xv = mcu_ld_s8x4(x);
        const int16x2_t xe = __sxtab16(off, xv), xo = mcu_sxtab16_ror8(off, xv);
        a0 = __smlad(xe, mcu_ld_s16x2(w0), a0);
        a0 = __smlad(xo, mcu_ld_s16x2(w0 + 2), a0);
        a1 = __smlad(xe, mcu_ld_s16x2(w1), a1);
        a1 = __smlad(xo, mcu_ld_s16x2(w1 + 2), a1);
    }
    acc[0] = a0;
    acc[1] = a1;
#else
    acc[0] = mcu_dot_w16_row(x, w, n, x_offset, acc[0]);
    acc[1] = mcu_dot_w16_row(x, w + w_stride, n, x_offset, acc[1]);
#endif
}

/* acc[j] += sum_{i<n} (x[i] + x_offset) * w[j * w_stride + i], j < 4, w in the int16 lane order above */
MCU_DOT_INLINE void mcu_dot4_s8_w16(const int8_t* x, const int16_t* w, int32_t w_stride, int32_t n,
                                   int32_t x_offset, int32_t* acc)
{
#if MCU_DOT_SIMD32
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    const int16x2_t off = mcu_dup16(x_offset);
    for (; n >= 4; n -= 4, x += 4, w += 4) {
        const int8x4_t xv = mcu_ld_s8x4(x);
        const int16x2_t xe = __sxtab16(off, xv), xo = mcu_sxtab16_ror8(off, xv);
        a0 = __smlad(xe, mcu_ld_s16x2(w), a0);
        a0 = __smlad(xo, mcu_ld_s16x2(w + 2), a0);
        a1 = __smlad(xe, mcu_ld_s16x2(w + w_stride), a1);
        a1 = __smlad(xo, mcu_ld_s16x2(w + w_stride + 2), a1);
        a2 = __smlad(xe, mcu_ld_s16x2(w + 2 * w_stride), a2);
        a2 = __smlad(xo, mcu_ld_s16x2(w + 2 * w_stride + 2), a2);
        a3 = __smlad(xe, mcu_ld_s16x2(w + 3 * w_stride), a3);
        a3 = __smlad(xo, mcu_ld_s16x2(w + 3 * w_stride + 2), a3);
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
#else /* each input loaded and offset once for the 4 channels (RV32: 3.5 instead of 5 instructions per MAC) */
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    for (; n >= 4; n -= 4, x += 4, w += 4) {
        for (int32_t t = 0; t < 4; t++) {
            const int32_t xi = (int32_t)x[t] + x_offset;
            const int32_t p = t == 1 ? 2 : t == 2 ? 1 : t; /* the lane order w0 w2 w1 w3 */
            a0 += xi * w[p];
            a1 += xi * w[w_stride + p];
            a2 += xi * w[2 * w_stride + p];
            a3 += xi * w[3 * w_stride + p];
        }
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
#endif
}

/*
 * One kernel row of a conv whose (kw, ic) taps are contiguous in memory (dilation 1 along x; used when the
 * input channels are not a multiple of 4, e.g. a first layer on a 1-channel spectrogram) that is cut by the
 * left or right padding: only taps lo <= i < hi of the row exist, `x` points at tap lo, `w` at tap 0 of the
 * first output channel's row; the row length is a multiple of 4.
 * acc[j] += sum_{lo<=i<hi} (x[i - lo] + x_offset) * w[j * w_stride + i], j < rows (1, 2 or 4).
 * Each group of 4 taps is gathered into a word with the missing taps set to the input zero point
 * (-x_offset, so they add 0) and goes through the ordinary micro-kernel.
 */
#define MCU_DOT_CLIP_GATHER(buf, g)                                                   \
    for (int32_t t = 0; t < 4; t++) {                                                 \
        const int32_t i = (g) + t;                                                    \
        (buf)[t] = (i >= lo && i < hi) ? x[i - lo] : (int8_t)(-x_offset);             \
    }

MCU_DOT_INLINE void mcu_dot_s8_clip(const int8_t* x, const int8_t* w, int32_t w_stride, int32_t rows, int32_t lo,
                                    int32_t hi, int32_t x_offset, int32_t* acc)
{
    for (int32_t g = lo & ~3; g < hi; g += 4) {
        int8_t buf[4];
        MCU_DOT_CLIP_GATHER(buf, g)
        if (rows == 4)
            mcu_dot4_s8(buf, w + g, w_stride, 4, x_offset, acc);
        else if (rows == 2)
            mcu_dot2_s8(buf, w + g, w_stride, 4, x_offset, acc);
        else
            acc[0] = mcu_dot_s8(buf, w + g, 4, x_offset, acc[0]);
    }
}

MCU_DOT_INLINE void mcu_dot_s8_w16_clip(const int8_t* x, const int16_t* w, int32_t w_stride, int32_t rows,
                                        int32_t lo, int32_t hi, int32_t x_offset, int32_t* acc)
{
    for (int32_t g = lo & ~3; g < hi; g += 4) {
        int8_t buf[4];
        MCU_DOT_CLIP_GATHER(buf, g)
        if (rows == 4)
            mcu_dot4_s8_w16(buf, w + g, w_stride, 4, x_offset, acc);
        else if (rows == 2)
            mcu_dot2_s8_w16(buf, w + g, w_stride, 4, x_offset, acc);
        else
            acc[0] = mcu_dot_s8_w16(buf, w + g, 4, x_offset, acc[0]);
    }
}

/*
 * Depthwise (depth multiplier 1), one kernel tap for 4 neighbouring channels:
 * acc[j] += (x[j] + x_offset) * w[j], j < 4. SXTAB16 widens channels 0,2 and 1,3 of the input word (adding the
 * offset), SMLABB/SMLATT multiply-accumulate each 16-bit lane into its own channel's accumulator.
 * `mcu_dw4_s8_w16`: the weights pre-widened to int16 in lane order (w0 w2 w1 w3), two LDRs and no SXTB16.
 */
MCU_DOT_INLINE void mcu_dw4_s8(const int8_t* x, const int8_t* w, int32_t x_offset, int32_t* acc)
{
#if MCU_DOT_SIMD32
    const int16x2_t off = mcu_dup16(x_offset);
    const int8x4_t xv = mcu_ld_s8x4(x), wv = mcu_ld_s8x4(w);
    const int16x2_t xe = __sxtab16(off, xv), xo = mcu_sxtab16_ror8(off, xv);
    const int16x2_t we = __sxtb16(wv), wo = mcu_sxtb16_ror8(wv);
    acc[0] = __smlabb(xe, we, acc[0]);
    acc[1] = __smlabb(xo, wo, acc[1]);
    acc[2] = __smlatt(xe, we, acc[2]);
    acc[3] = __smlatt(xo, wo, acc[3]);
#else
    for (int32_t j = 0; j < 4; j++)
        acc[j] += ((int32_t)x[j] + x_offset) * (int32_t)w[j];
#endif
}

MCU_DOT_INLINE void mcu_dw4_s8_w16(const int8_t* x, const int16_t* w, int32_t x_offset, int32_t* acc)
{
#if MCU_DOT_SIMD32
    const int16x2_t off = mcu_dup16(x_offset);
    const int8x4_t xv = mcu_ld_s8x4(x);
    const int16x2_t xe = __sxtab16(off, xv), xo = mcu_sxtab16_ror8(off, xv);
    const int32_t we = mcu_ld_s16x2(w), wo = mcu_ld_s16x2(w + 2);
    acc[0] = __smlabb(xe, we, acc[0]);
    acc[1] = __smlabb(xo, wo, acc[1]);
    acc[2] = __smlatt(xe, we, acc[2]);
    acc[3] = __smlatt(xo, wo, acc[3]);
#else
    acc[0] += ((int32_t)x[0] + x_offset) * w[0];
    acc[1] += ((int32_t)x[1] + x_offset) * w[2];
    acc[2] += ((int32_t)x[2] + x_offset) * w[1];
    acc[3] += ((int32_t)x[3] + x_offset) * w[3];
#endif
}

/*
 * Two input vectors x0[0:n] and x0[n:2n] (two output pixels of a 1x1 conv, or two rows of a batched fully
 * connected layer) against
 * four weight rows, as two passes of 2 pixels x 2 channels: each loaded weight word serves both pixels, each
 * widened input word two channels, and the 4 accumulators + 6 operands stay in registers (2 x 4 in one pass
 * spills on Cortex-M).
 * acc0[j] += sum_{i<n} (x0[i] + x_offset) * w[j * w_stride + i], acc1[j] likewise with x0[n + i], j < 4;
 * n % 4 == 0.
 * x_offset is a compile-time constant after inlining; 0 (offset folded into the bias) uses SXTB16.
 */
/* Unrolling the (constant-length) inner loop leaves only immediate offsets from two base registers, so the
 * 4 accumulators and 6 operands fit the register file; GCC does not do it by itself at -Os / -O2. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 8
#define MCU_DOT_UNROLL _Pragma("GCC unroll 16")
#else
#define MCU_DOT_UNROLL
#endif

/* one half (lanes 0,2 or 1,3) of a 4-byte step: widen both inputs, two weight pairs, four SMLAD */
#define MCU_DOT_X2_LO(v) (x_offset ? __sxtab16(off, (v)) : __sxtb16(v))
#define MCU_DOT_X2_HI(v) (x_offset ? mcu_sxtab16_ror8(off, (v)) : mcu_sxtb16_ror8(v))
#define MCU_DOT_X2_STEP(widen, k0_expr, k1_expr)                                                  \
    {                                                                                             \
        const int16x2_t ue = widen(u), ve = widen(v);                                             \
        const int32_t k0 = (k0_expr), k1 = (k1_expr);                                             \
        a0 = __smlad(ue, k0, a0);                                                                 \
        b0 = __smlad(ve, k0, b0);                                                                 \
        a1 = __smlad(ue, k1, a1);                                                                 \
        b1 = __smlad(ve, k1, b1);                                                                 \
    }

/* Without SIMD (RV32IMAC, M0/M3, host): 2 pixels x 4 channels in 8 scalar accumulators, so that each loaded
 * weight serves both pixels and each loaded input all 4 channels: 6 loads per 8 MACs instead of 2 per MAC
 * (RV32 KWS 1x1 convs: 0.17 -> see README). Tap t of a group of 4 reads weight t, except that taps 1 and 2
 * read positions `l1`, `l2` (1, 2 for int8 weights; 2, 1 for the int16 lane order). */
#define MCU_DOT4X2_TAP(t, p)                                                                      \
    {                                                                                             \
        const int32_t u = (int32_t)x0[i + (t)] + x_offset, v = (int32_t)x0[n + i + (t)] + x_offset; \
        int32_t k = w[i + (p)];                                                                   \
        a0 += u * k; b0 += v * k;                                                                 \
        k = w[w_stride + i + (p)];                                                                \
        a1 += u * k; b1 += v * k;                                                                 \
        k = w[2 * w_stride + i + (p)];                                                            \
        a2 += u * k; b2 += v * k;                                                                 \
        k = w[3 * w_stride + i + (p)];                                                            \
        a3 += u * k; b3 += v * k;                                                                 \
        __asm__ volatile("" ::: "memory"); /* keeps GCC from hoisting 16 loads and spilling */     \
    }
#define MCU_DOT4X2_PLAIN(l1, l2)                                                                  \
    int32_t a0 = acc0[0], a1 = acc0[1], a2 = acc0[2], a3 = acc0[3];                               \
    int32_t b0 = acc1[0], b1 = acc1[1], b2 = acc1[2], b3 = acc1[3];                               \
    for (int32_t i = 0; i + 4 <= n; i += 4) {                                                     \
        MCU_DOT4X2_TAP(0, 0) MCU_DOT4X2_TAP(1, l1) MCU_DOT4X2_TAP(2, l2) MCU_DOT4X2_TAP(3, 3)     \
    }                                                                                             \
    acc0[0] = a0; acc0[1] = a1; acc0[2] = a2; acc0[3] = a3;                                       \
    acc1[0] = b0; acc1[1] = b1; acc1[2] = b2; acc1[3] = b3;

MCU_DOT_INLINE void mcu_dot4x2_s8(const int8_t* x0, const int8_t* w, int32_t w_stride,
                                  int32_t n, int32_t x_offset, int32_t* acc0, int32_t* acc1)
{
#if MCU_DOT_SIMD32
    const int16x2_t off = mcu_dup16(x_offset);
    for (int32_t h = 0; h < 4; h += 2) {
        const int8_t* wa = w + h * w_stride;
        int32_t a0 = acc0[h], a1 = acc0[h + 1], b0 = acc1[h], b1 = acc1[h + 1];
        MCU_DOT_UNROLL
        for (int32_t i = 0; i + 4 <= n; i += 4) {
            const int8x4_t u = mcu_ld_s8x4(x0 + i), v = mcu_ld_s8x4(x0 + n + i);
            const int8x4_t kw0 = mcu_ld_s8x4(wa + i), kw1 = mcu_ld_s8x4(wa + w_stride + i);
            MCU_DOT_X2_STEP(MCU_DOT_X2_LO, __sxtb16(kw0), __sxtb16(kw1))
            MCU_DOT_X2_STEP(MCU_DOT_X2_HI, mcu_sxtb16_ror8(kw0), mcu_sxtb16_ror8(kw1))
        }
        acc0[h] = a0; acc0[h + 1] = a1; acc1[h] = b0; acc1[h + 1] = b1;
        __asm__ volatile("" ::: "memory"); /* reload the inputs in the second pass rather than keep 2n/4 words */
    }
#else
    MCU_DOT4X2_PLAIN(1, 2)
#endif
}

/* The same with int16 weights in the lane order above. */
MCU_DOT_INLINE void mcu_dot4x2_s8_w16(const int8_t* x0, const int16_t* w, int32_t w_stride,
                                      int32_t n, int32_t x_offset, int32_t* acc0, int32_t* acc1)
{
#if MCU_DOT_SIMD32
    const int16x2_t off = mcu_dup16(x_offset);
    for (int32_t h = 0; h < 4; h += 2) {
        const int16_t* wa = w + h * w_stride;
        int32_t a0 = acc0[h], a1 = acc0[h + 1], b0 = acc1[h], b1 = acc1[h + 1];
        MCU_DOT_UNROLL
        for (int32_t i = 0; i + 4 <= n; i += 4) {
            const int8x4_t u = mcu_ld_s8x4(x0 + i), v = mcu_ld_s8x4(x0 + n + i);
            MCU_DOT_X2_STEP(MCU_DOT_X2_LO, mcu_ld_s16x2(wa + i), mcu_ld_s16x2(wa + w_stride + i))
            MCU_DOT_X2_STEP(MCU_DOT_X2_HI, mcu_ld_s16x2(wa + i + 2), mcu_ld_s16x2(wa + w_stride + i + 2))
        }
        acc0[h] = a0; acc0[h + 1] = a1; acc1[h] = b0; acc1[h + 1] = b1;
        __asm__ volatile("" ::: "memory"); /* reload the inputs in the second pass rather than keep 2n/4 words */
    }
#else
    MCU_DOT4X2_PLAIN(2, 1)
#endif
}

/* The 16x8 conv's dot products: int16 inputs, int8 weights, exact. |x * w| <= 2^22, so runs of 256 products
 * are summed in int32 and the runs in int64. With DSP: input pairs (x0, x2), (x1, x3) packed (PKHBT/PKHTB)
 * from two word loads against SXTB16 of weight bytes 0,2 and 1,3: two SMLAD per four products.
 * mcu_dot2_s16_s8 adds x . w0 to *acc0 and x . w1 to *acc1 (two output channels share the input loads). */
#if MCU_DOT_SIMD32
MCU_DOT_INLINE void mcu_ld_s16x4_pairs(const int16_t* x, int16x2_t* x02, int16x2_t* x13)
{
    uint32_t x01, x23;
    __builtin_memcpy(&x01, x, 4);
    __builtin_memcpy(&x23, x + 2, 4);
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(*x02) : "r"(x01), "r"(x23));
    __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(*x13) : "r"(x23), "r"(x01));
}
#endif

MCU_DOT_INLINE void mcu_dot2_s16_s8(const int16_t* x, const int8_t* w0, const int8_t* w1, int32_t n,
                                    int64_t* acc0, int64_t* acc1)
{
    while (n > 0) {
        int32_t run0 = 0, run1 = 0, m = n < 256 ? n : 256;
        n -= m;
#if MCU_DOT_SIMD32
        for (; m >= 4; m -= 4, x += 4, w0 += 4, w1 += 4) {
            int16x2_t x02, x13;
            const int8x4_t v0 = mcu_ld_s8x4(w0), v1 = mcu_ld_s8x4(w1);
            mcu_ld_s16x4_pairs(x, &x02, &x13);
            run0 = __smlad(x02, __sxtb16(v0), run0);
            run0 = __smlad(x13, mcu_sxtb16_ror8(v0), run0);
            run1 = __smlad(x02, __sxtb16(v1), run1);
            run1 = __smlad(x13, mcu_sxtb16_ror8(v1), run1);
        }
#endif
        for (; m > 0; --m, ++x) {
            run0 += (int32_t)*x * (int32_t)*w0++;
            run1 += (int32_t)*x * (int32_t)*w1++;
        }
        *acc0 += run0;
        *acc1 += run1;
    }
}

MCU_DOT_INLINE int64_t mcu_dot_s16_s8(const int16_t* x, const int8_t* w, int32_t n)
{
    int64_t acc = 0;
    while (n > 0) {
        int32_t run = 0, m = n < 256 ? n : 256;
        n -= m;
#if MCU_DOT_SIMD32
        for (; m >= 4; m -= 4, x += 4, w += 4) {
            int16x2_t x02, x13;
            const int8x4_t v = mcu_ld_s8x4(w);
            mcu_ld_s16x4_pairs(x, &x02, &x13);
            run = __smlad(x02, __sxtb16(v), run);
            run = __smlad(x13, mcu_sxtb16_ror8(v), run);
        }
#endif
        for (; m > 0; --m)
            run += (int32_t)*x++ * (int32_t)*w++;
        acc += run;
    }
    return acc;
}

#endif /* MCU_DOT_S8_H */
