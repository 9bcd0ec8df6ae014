/*
 * mcu_fixedpoint.h - TFLite / gemmlowp integer fixed-point arithmetic, bit-exact.
 *
 * Everything here is static inline, C99, freestanding (<stdint.h> only) and free of floating point.
 * The names follow the functions they reproduce:
 *
 *   mcu_fp_srdhm               gemmlowp::SaturatingRoundingDoublingHighMul (int32)
 *   mcu_fp_rdbp                gemmlowp::RoundingDivideByPOT (int32, exponent 0..31)
 *   mcu_fp_sat_mul_pot         gemmlowp::SaturatingRoundingMultiplyByPOT<exponent > 0>
 *   mcu_requantize             tflite::MultiplyByQuantizedMultiplier (double rounding, TFLite's default)
 *   mcu_requantize_s64         tflite::MultiplyByQuantizedMultiplier for an int64 accumulator
 *   mcu_requantize_gt_one      tflite::MultiplyByQuantizedMultiplierGreaterThanOne
 *   mcu_fp_exp_on_negative_values_q5   gemmlowp::exp_on_negative_values, FixedPoint<int32, 5> -> Q0.31
 *   mcu_fp_one_over_one_plus_x_q0      gemmlowp::one_over_one_plus_x_for_x_in_0_1, Q0.31 -> Q0.31
 *   mcu_fp_get_reciprocal      tflite::GetReciprocal (reference softmax)
 *   mcu_fp_inv_sqrt            tflite::GetInvSqrtQuantizedMultiplierExp (L2 normalization)
 *
 * Conventions: a Qm.n value is an int32 whose real value is raw / 2^n (m + n = 31). Additions of
 * fixed-point values wrap as gemmlowp's int32 `+` does (they never overflow for the ranges used here);
 * they are done in uint32 so that C has no undefined behaviour. Right shifts of negative values are
 * arithmetic (what gcc, clang and every Cortex-M / RISC-V compiler do; C99 leaves it implementation-defined).
 */
#ifndef MCU_FIXEDPOINT_H
#define MCU_FIXEDPOINT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MCU_INT32_MIN ((int32_t)(-2147483647 - 1))
#define MCU_INT32_MAX ((int32_t)2147483647)

static inline int32_t mcu_clamp_i32(int32_t x, int32_t lo, int32_t hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

/* Wrapping int32 add / sub / shift-left (gemmlowp's raw int32 arithmetic), without C's signed-overflow UB. */
static inline int32_t mcu_fp_add(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }
static inline int32_t mcu_fp_sub(int32_t a, int32_t b) { return (int32_t)((uint32_t)a - (uint32_t)b); }
static inline int32_t mcu_fp_shl(int32_t a, int s) { return (int32_t)((uint32_t)a << s); }

/*
 * SaturatingRoundingDoublingHighMul: round(a * b / 2^31), ties away from zero, saturating only for
 * a == b == INT32_MIN. gemmlowp computes (ab + nudge) / 2^31 with truncating division and
 * nudge = ab >= 0 ? 2^30 : 1 - 2^30; for ab < 0 that equals floor((ab + 2^30) / 2^31), so both signs are
 * (ab + 2^30) >> 31 with an arithmetic shift.
 */
static inline int32_t mcu_fp_srdhm(int32_t a, int32_t b)
{
    if (a == MCU_INT32_MIN && b == MCU_INT32_MIN) {
        return MCU_INT32_MAX;
    }
    return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 30)) >> 31);
}

/* RoundingDivideByPOT: x / 2^exponent rounded to nearest, ties away from zero; 0 <= exponent <= 31. */
static inline int32_t mcu_fp_rdbp(int32_t x, int exponent)
{
    const int32_t mask = (int32_t)(((uint32_t)1 << exponent) - 1u);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* SaturatingRoundingMultiplyByPOT<exponent> for 0 < exponent < 31: x * 2^exponent, saturated. */
static inline int32_t mcu_fp_sat_mul_pot(int32_t x, int exponent)
{
    const int32_t threshold = (int32_t)(((uint32_t)1 << (31 - exponent)) - 1u);
    if (x > threshold) {
        return MCU_INT32_MAX;
    }
    if (x < -threshold) {
        return MCU_INT32_MIN;
    }
    return mcu_fp_shl(x, exponent);
}

/*
 * MultiplyByQuantizedMultiplier(acc, multiplier, shift) (TFLite, double rounding):
 *   left_shift = shift > 0 ? shift : 0, right_shift = shift > 0 ? 0 : -shift,
 *   RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(acc * 2^left_shift, multiplier), right_shift).
 * `multiplier` is the Q31 value QuantizeMultiplier produced; -31 <= shift <= 30.
 * acc * 2^left_shift wraps in int32 as TFLite's does.
 */
static inline int32_t mcu_requantize(int32_t acc, int32_t multiplier, int shift)
{
    const int left_shift = shift > 0 ? shift : 0;
    const int right_shift = shift > 0 ? 0 : -shift;
    return mcu_fp_rdbp(mcu_fp_srdhm(mcu_fp_shl(acc, left_shift), multiplier), right_shift);
}

/*
 * MultiplyByQuantizedMultiplier(int64 acc, multiplier, shift) (TFLite's `internal/common.cc`, the same in its
 * single- and double-rounding builds; the 16x8 conv / transpose conv use it): the Q31 multiplier rounded to
 * 16 bits (0x7FFF if that would reach 2^15), then (acc * reduced + 2^(14 - shift)) >> (15 - shift),
 * truncated to int32. TFLite assumes |acc| < 2^47 and -31 <= shift < 8.
 */
static inline int32_t mcu_requantize_s64(int64_t acc, int32_t multiplier, int shift)
{
    const int32_t reduced = multiplier < 0x7FFF0000 ? ((multiplier + (1 << 15)) >> 16) : 0x7FFF;
    const int total_shift = 15 - shift;
    return (int32_t)((acc * reduced + ((int64_t)1 << (total_shift - 1))) >> total_shift);
}

/* MultiplyByQuantizedMultiplierGreaterThanOne: SRDHM(x * 2^left_shift, multiplier), left_shift >= 0. */
static inline int32_t mcu_requantize_gt_one(int32_t x, int32_t multiplier, int left_shift)
{
    return mcu_fp_srdhm(mcu_fp_shl(x, left_shift), multiplier);
}

/* gemmlowp RoundingHalfSum(a, b) for int32: (a + b + sign) / 2 in int64, truncating. */
static inline int32_t mcu_fp_rounding_half_sum(int32_t a, int32_t b)
{
    const int64_t sum = (int64_t)a + (int64_t)b;
    const int64_t sign = sum >= 0 ? 1 : -1;
    return (int32_t)((sum + sign) / 2);
}

/* exp(a) for a in [-1/4, 0), a and result in Q0.31 (gemmlowp's 4th-order Taylor expansion around -1/8). */
static inline int32_t mcu_fp_exp_on_interval_neg_quarter_to_0(int32_t a)
{
    const int32_t constant_term = 1895147668;     /* exp(-1/8) */
    const int32_t constant_1_over_3 = 715827883;  /* 1/3 */
    const int32_t x = mcu_fp_add(a, (int32_t)1 << 28);  /* a + 1/8 */
    const int32_t x2 = mcu_fp_srdhm(x, x);
    const int32_t x3 = mcu_fp_srdhm(x2, x);
    const int32_t x4 = mcu_fp_srdhm(x2, x2);
    const int32_t x4_over_4 = mcu_fp_rdbp(x4, 2);
    const int32_t poly = mcu_fp_rdbp(
        mcu_fp_add(mcu_fp_srdhm(mcu_fp_add(x4_over_4, x3), constant_1_over_3), x2), 1);
    return mcu_fp_add(constant_term, mcu_fp_srdhm(constant_term, mcu_fp_add(x, poly)));
}

/*
 * gemmlowp exp_on_negative_values for an input FixedPoint<int32, 5> (Q5.26, a <= 0); result Q0.31.
 * (kIntegerBits = 5, so the barrel shifter uses exponents -2..4 and there is no clamp at -32.)
 */
static inline int32_t mcu_fp_exp_on_negative_values_q5(int32_t a)
{
    enum { kFractionalBits = 26 };
    const int32_t one_quarter = (int32_t)1 << (kFractionalBits - 2);
    const int32_t mask = one_quarter - 1;
    const int32_t a_mod_quarter_minus_one_quarter = mcu_fp_sub(a & mask, one_quarter);
    /* Rescale<0>: from 5 integer bits to 0 = saturating multiply by 2^5. */
    int32_t result = mcu_fp_exp_on_interval_neg_quarter_to_0(mcu_fp_sat_mul_pot(a_mod_quarter_minus_one_quarter, 5));
    const int32_t remainder = mcu_fp_sub(a_mod_quarter_minus_one_quarter, a);

    if (remainder & ((int32_t)1 << (kFractionalBits - 2))) { result = mcu_fp_srdhm(result, 1672461947); } /* exp(-1/4) */
    if (remainder & ((int32_t)1 << (kFractionalBits - 1))) { result = mcu_fp_srdhm(result, 1302514674); } /* exp(-1/2) */
    if (remainder & ((int32_t)1 << (kFractionalBits + 0))) { result = mcu_fp_srdhm(result, 790015084); }  /* exp(-1) */
    if (remainder & ((int32_t)1 << (kFractionalBits + 1))) { result = mcu_fp_srdhm(result, 290630308); }  /* exp(-2) */
    if (remainder & ((int32_t)1 << (kFractionalBits + 2))) { result = mcu_fp_srdhm(result, 39332535); }   /* exp(-4) */
    if (remainder & ((int32_t)1 << (kFractionalBits + 3))) { result = mcu_fp_srdhm(result, 720401); }     /* exp(-8) */
    if (remainder & ((int32_t)1 << (kFractionalBits + 4))) { result = mcu_fp_srdhm(result, 242); }        /* exp(-16) */

    if (a == 0) {
        result = MCU_INT32_MAX; /* ResultF::One() */
    }
    return result;
}

/* gemmlowp one_over_one_plus_x_for_x_in_0_1: 1 / (1 + a) for a in [0, 1), a and result Q0.31. */
static inline int32_t mcu_fp_one_over_one_plus_x_q0(int32_t a)
{
    const int32_t half_denominator = mcu_fp_rounding_half_sum(a, MCU_INT32_MAX); /* Q0.31 */
    const int32_t constant_48_over_17 = 1515870810;                               /* Q2.29 */
    const int32_t constant_neg_32_over_17 = -1010580540;                          /* Q2.29 */
    const int32_t one_q2 = (int32_t)1 << 29;
    int32_t x = mcu_fp_add(constant_48_over_17, mcu_fp_srdhm(half_denominator, constant_neg_32_over_17));
    int i;
    for (i = 0; i < 3; i++) {
        const int32_t half_denominator_times_x = mcu_fp_srdhm(half_denominator, x);        /* Q2.29 */
        const int32_t one_minus = mcu_fp_sub(one_q2, half_denominator_times_x);           /* Q2.29 */
        /* x * one_minus is Q4.27; Rescale<2> = saturating multiply by 2^2 */
        x = mcu_fp_add(x, mcu_fp_sat_mul_pot(mcu_fp_srdhm(x, one_minus), 2));
    }
    /* ExactMulByPot<-1> (Q2.29 -> Q1.30, same raw), then Rescale<0> = saturating multiply by 2 */
    return mcu_fp_sat_mul_pot(x, 1);
}

/* Count leading zeros of a uint32 (32 for 0). */
static inline int mcu_clz_u32(uint32_t x)
{
#if defined(__GNUC__)
    return x ? __builtin_clz(x) : 32;
#else
    int n = 0;
    if (x == 0) {
        return 32;
    }
    while (!(x & 0x80000000u)) {
        x <<= 1;
        n++;
    }
    return n;
#endif
}

/*
 * tflite::GetReciprocal(x, x_integer_digits, &num_bits_over_unit): 1/x in Q0.31 (with x > 0 in
 * Q<x_integer_digits>), scaled so that the result lies in [1/2, 1); *num_bits_over_unit is the power of two
 * left over.
 */
static inline int32_t mcu_fp_get_reciprocal(int32_t x, int x_integer_digits, int *num_bits_over_unit)
{
    const int headroom_plus_one = mcu_clz_u32((uint32_t)x);
    const int32_t shifted_sum_minus_one =
        (int32_t)(((uint32_t)x << headroom_plus_one) - ((uint32_t)1 << 31));
    *num_bits_over_unit = x_integer_digits - headroom_plus_one;
    return mcu_fp_one_over_one_plus_x_q0(shifted_sum_minus_one);
}

/*
 * tflite::GetInvSqrtQuantizedMultiplierExp(input, kReverseShift = -1, ...): 1/sqrt(input) for input >= 0 as a
 * Q31 multiplier and a shift to pass to mcu_requantize (a left shift when positive); inputs 0 and 1 give
 * (INT32_MAX, 0). Newton-Raphson in gemmlowp fixed point with 3 integer bits, 5 iterations. (L2_NORMALIZATION)
 */
static inline void mcu_fp_inv_sqrt(int32_t input, int32_t *multiplier, int *shift)
{
    int32_t x, half_input;
    int s = 11, pairs, i;
    if (input <= 1) {
        *multiplier = MCU_INT32_MAX;
        *shift = 0;
        return;
    }
    while (input >= ((int32_t)1 << 29)) {
        input /= 4;
        s++;
    }
    pairs = (mcu_clz_u32((uint32_t)input) - 1) / 2 - 1;
    s -= pairs;
    input = mcu_fp_shl(input, 2 * pairs);
    half_input = mcu_fp_rdbp(input >> 1, 1);           /* SaturatingRoundingMultiplyByPOT<-1>, Q3.28 */
    x = (int32_t)1 << 28;                                /* F3::One() */
    for (i = 0; i < 5; i++) {
        const int32_t x3 = mcu_fp_sat_mul_pot(mcu_fp_srdhm(mcu_fp_srdhm(x, x), x), 6);      /* Rescale<3>(x^3) */
        const int32_t half_three_x = mcu_fp_srdhm((1 << 28) + (1 << 27), x);                /* 1.5 x, Q6 */
        x = mcu_fp_sat_mul_pot(mcu_fp_sub(half_three_x, mcu_fp_srdhm(half_input, x3)), 3);  /* Rescale<3> */
    }
    x = mcu_fp_srdhm(x, 1518500250);                     /* * sqrt(2) / 2 */
    if (s < 0) {
        x = mcu_fp_shl(x, -s);
        s = 0;
    }
    *multiplier = x;
    *shift = -s;
}

#ifdef __cplusplus
}
#endif

#endif /* MCU_FIXEDPOINT_H */
