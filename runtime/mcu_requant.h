/*
 * mcu_requant.h - the output stage of the TVM-generated conv / depthwise / fully connected kernels
 * (mcutool/codegen/tvm_kernels.py, called through call_extern), bit-exact with TFLite:
 *
 *   acc -> MultiplyByQuantizedMultiplier(acc, multiplier, shift) + output zero point -> clamp [act_min, act_max]
 *
 * `mcu_requant_s8` is the literal TFLite sequence (mcu_requantize of mcu_fixedpoint.h: SaturatingRounding-
 * DoublingHighMul, then RoundingDivideByPOT); `mcu_requant_fast_s8` is the same function in one SMLAL and
 * one shift for right shifts >= 1 (derivation below). `multiplier` is a Q31 value in [2^30, 2^31) as
 * QuantizeMultiplier produces it (or 0). Portable C99, no floating point, no library calls.
 */
#ifndef MCU_REQUANT_H
#define MCU_REQUANT_H

#include <stddef.h>
#include <stdint.h>

#include "mcu_fixedpoint.h"

/* On the definitions of the generated kernel functions: the firmware is built with -Os, under which GCC's
 * register allocation spills the accumulators of the inlined micro-kernels (mcu_dot_s8.h) inside their
 * inner loops. The kernels get -O3 instead (measured in QEMU: KWS 7.20 M instructions with -O2, 5.54 M with
 * -O3). Define MCU_KERNEL_OPT empty to build them with the project's flags. */
#ifndef MCU_KERNEL_OPT
#if defined(__GNUC__) && !defined(__clang__)
#define MCU_KERNEL_OPT __attribute__((optimize("O3")))
#else
#define MCU_KERNEL_OPT
#endif
#endif

/* The generated kernels write large int8 constant arrays as string literals exactly as long as the array
 * (no terminating NUL; mcutool/codegen/carray.py). GCC >= 15 warns about that under -Wextra
 * (-Wunterminated-string-initialization) unless the array is marked `nonstring`. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 8
#define MCU_NONSTRING __attribute__((nonstring))
#else
#define MCU_NONSTRING
#endif

#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
#include <arm_acle.h>
#define MCU_HAVE_SSAT 1
#else
#define MCU_HAVE_SSAT 0
#endif

/* clamp to [lo, hi]; one SSAT when the range is all of int8 (the arguments are compile-time constants) */
static inline int32_t mcu_clamp_s8(int32_t y, int32_t lo, int32_t hi)
{
#if MCU_HAVE_SSAT
    if (lo == -128 && hi == 127)
        return __ssat(y, 8);
#endif
    y = y < lo ? lo : y;
    return y > hi ? hi : y;
}

/* Requantize, add the output zero point, clamp to [act_min, act_max] (the fused activation). */
static inline int32_t mcu_requant_s8(int32_t acc, int32_t multiplier, int32_t shift,
                                     int32_t out_zp, int32_t act_min, int32_t act_max)
{
    return mcu_clamp_s8(mcu_requantize(acc, multiplier, shift) + out_zp, act_min, act_max);
}

/* The output stage of the 16x8 conv / transpose conv (zero points 0): an int32 accumulator (wrapping, the
 * int32 bias added) through mcu_requantize when bias32 is given, else the int64 one (bias64 added when
 * given) through mcu_requantize_s64; then the clamp [act_min, act_max]. */
static inline int16_t mcu_requant_s16(int64_t acc, const int32_t *bias32, const int64_t *bias64, int32_t channel,
                                      int32_t multiplier, int32_t shift, int32_t act_min, int32_t act_max)
{
    int32_t y;
    if (bias32 != NULL) {
        y = mcu_requantize((int32_t)(uint32_t)((uint64_t)acc + (uint64_t)(int64_t)bias32[channel]), multiplier, shift);
    } else {
        y = mcu_requantize_s64(bias64 != NULL ? acc + bias64[channel] : acc, multiplier, shift);
    }
    return (int16_t)mcu_clamp_i32(y, act_min, act_max);
}

/*
 * The same result in one 64-bit multiply-add and one shift, for right shifts e = -shift >= 1 (multipliers
 * below 0.5: every conv layer of a normal network). With q = SRDHM(acc, m) = floor((acc*m + 2^30) / 2^31),
 * RoundingDivideByPOT(q, e) = floor((q + 2^(e-1) - [q < 0]) / 2^e), and floor(floor(a/b)/c) = floor(a/(bc)):
 *     result = floor((acc*m + 2^30 + 2^(30+e) - 2^31 [q < 0]) / 2^(31+e)).
 * [q < 0] may be replaced by [acc < 0] (m >= 0): they differ only where q == 0, and there both give 0.
 * 31 + e >= 32, so the result is the high word shifted right by e - 1: SMLAL, SUBS/SBC, ASR.
 * `round` = 2^30 + 2^(30+e) and `shift_hi` = e - 1 are precomputed per channel. Adding zp * 2^(31+e) to `round`
 * adds exactly zp to the result (the generated kernels and the ADD kernel fold the output zero point so, with
 * e <= 23 keeping the sum inside int64).
 */
static inline int32_t mcu_requantize_fast(int32_t acc, int32_t multiplier, int64_t round, int32_t shift_hi)
{
    const int64_t t = (int64_t)acc * multiplier + round - (acc < 0 ? ((int64_t)1 << 31) : 0);
    return (int32_t)(t >> 32) >> shift_hi;
}

/* `round` and `shift_hi` of a right shift e = -shift >= 1 */
static inline int64_t mcu_requant_round(int32_t shift) { return ((int64_t)1 << 30) + ((int64_t)1 << (30 - shift)); }

static inline int32_t mcu_requant_fast_s8(int32_t acc, int32_t multiplier, int64_t round, int32_t shift_hi,
                                          int32_t out_zp, int32_t act_min, int32_t act_max)
{
    return mcu_clamp_s8(mcu_requantize_fast(acc, multiplier, round, shift_hi) + out_zp, act_min, act_max);
}

/*
 * The same once more in one SMMLAR, for right shifts e = -shift >= 1 when the kernel accumulates acc2 = 2 * acc
 * (it doubles its weights and bias at compile time, so the doubling costs nothing) and |acc2| < 2^31:
 *   SaturatingRoundingDoublingHighMul(acc, m) = floor((acc * m + 2^30) / 2^31) for either sign (TFLite's nudge
 *   1 - 2^30 for a negative product, then truncation toward zero, gives the same floor), which is
 *   floor((acc2 * m + 2^31) / 2^32): SMMLAR's rounding. RoundingDivideByPOT(q, e) = floor((q + 2^(e-1) - [q < 0])
 *   / 2^e), where [q < 0] may be [acc < 0] (see above), and the output zero point adds exactly zp inside the
 *   floor as zp * 2^e. So with the per-channel constant c = 2^(e-1) + zp * 2^e:
 *       out = (SMMLAR(acc2, m, c) - [acc2 < 0]) >> e,   clamped
 * five instructions with SSAT and the store, against ten for mcu_requant_fast_s8 (two MOVs to keep its 64-bit
 * rounding constant, SMLAL, the sign correction in AND/SUBS/SBC, ASR). The generator checks at compile time that
 * |acc2| < 2^31 and |q| + |c| + 1 < 2^31 for every input (mcutool/codegen/fast_kernels.py).
 * `sign_fix` 0 (a literal) drops the [acc2 < 0] term when act_min >= zp (a fused RELU / RELU6): where it
 * matters q < 0, so both forms give at most zp, which the clamp raises to act_min.
 */
static inline int32_t mcu_requant_x2_s8(int32_t acc2, int32_t multiplier, int32_t c, int32_t e, int32_t sign_fix,
                                        int32_t act_min, int32_t act_max)
{
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
    int32_t q;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(q) : "r"(acc2), "r"(multiplier), "r"(c));
#else
    int32_t q = (int32_t)(((int64_t)acc2 * multiplier + ((int64_t)1 << 31)) >> 32) + c;
#endif
    if (sign_fix)
        q -= (int32_t)((uint32_t)acc2 >> 31);
    return mcu_clamp_s8(q >> e, act_min, act_max);
}

#endif /* MCU_REQUANT_H */
