/*
 * mcu_dot_s8.h - int8 dot-product micro-kernels called by TVM-tensorized kernels (mcutool/codegen/tvm_intrin.py).
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

#if defined(__ARM_FEATURE_SIMD32) && __ARM_FEATURE_SIMD32
#include <arm_acle.h>
#define MCU_DOT_SIMD32 1
#else
#define MCU_DOT_SIMD32 0
#endif

#if MCU_DOT_SIMD32
/* 4 int8 from an address that is only byte aligned (LDR allows that on v7-M/v8-M mainline). */
static inline int8x4_t mcu_ld_s8x4(const int8_t* p)
{
    int8x4_t v;
    __builtin_memcpy(&v, p, 4);
    return v;
}

/* SXTB16 ROR #8: bytes 1 and 3 sign-extended to two int16 (GCC has no intrinsic with the rotation). */
static inline int16x2_t mcu_sxtb16_ror8(int8x4_t v)
{
    int16x2_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}
#endif

/* Both operands' halfword pairs, with `x_offset` added to the input: SXTAB16 costs what SXTB16 does. */
#if MCU_DOT_SIMD32
static inline int16x2_t mcu_sxtab16_ror8(int16x2_t a, int8x4_t v)
{
    int16x2_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(v));
    return r;
}

static inline int16x2_t mcu_dup16(int32_t v)
{
    return (int16x2_t)(((uint32_t)v & 0xFFFFu) | ((uint32_t)v << 16));
}
#endif

/* acc + sum_{i<n} (x[i] + x_offset) * w[i]; x_offset is minus the input zero point, in [-127, 128]. */
static inline int32_t mcu_dot_s8(const int8_t* x, const int8_t* w, int32_t n, int32_t x_offset, int32_t acc)
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
static inline void mcu_dot2_s8(const int8_t* x, const int8_t* w, int32_t w_stride, int32_t n, int32_t x_offset,
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
static inline void mcu_dot4_s8(const int8_t* x, const int8_t* w, int32_t w_stride, int32_t n, int32_t x_offset,
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
static inline int32_t mcu_ld_s16x2(const int16_t* p)
{
    int32_t v;
    __builtin_memcpy(&v, p, 4);
    return v;
}

static inline int32_t mcu_dot_w16_row(const int8_t* x, const int16_t* w, int32_t n, int32_t x_offset,
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
static inline int32_t mcu_dot_s8_w16(const int8_t* x, const int16_t* w, int32_t n, int32_t x_offset, int32_t acc)
{
    return mcu_dot_w16_row(x, w, n, x_offset, acc);
}

/* acc[j] += sum_{i<n} (x[i] + x_offset) * w[j * w_stride + i], j < 2, w in the int16 lane order above */
static inline void mcu_dot2_s8_w16(const int8_t* x, const int16_t* w, int32_t w_stride, int32_t n,
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
static inline void mcu_dot4_s8_w16(const int8_t* x, const int16_t* w, int32_t w_stride, int32_t n,
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
#else
    for (int32_t j = 0; j < 4; j++)
        acc[j] = mcu_dot_w16_row(x, w + j * w_stride, n, x_offset, acc[j]);
#endif
}

#endif /* MCU_DOT_S8_H */
