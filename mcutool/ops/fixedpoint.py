"""TFLite's integer arithmetic, written once: gemmlowp's fixed-point primitives (`internal/common.h`:
SaturatingRoundingDoublingHighMul, RoundingDivideByPOT, MultiplyByQuantizedMultiplier, exp / reciprocal /
logistic in fixed point) and the Prepare helpers every op shares (QuantizeMultiplier, activation clamps,
Requantize), with TFLite's exact float32/double precision.

Integers are carried in int64 arrays holding int32 values; where TFLite's int32 arithmetic would wrap the
result is wrapped to int32 the same way. No float is used in an integer execution path; floats appear only
in the Prepare helpers, as in TFLite. Scales are used as float32 values, as TFLite holds them.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import math

import numpy as np

from mcutool.errors import UserError

INT32_MIN = -(1 << 31)


INT32_MAX = (1 << 31) - 1


_RANGES = {
    "int8": (-128, 127),
    "uint8": (0, 255),
    "int16": (-32768, 32767),
    "int32": (INT32_MIN, INT32_MAX),
}


NP_DTYPES = {
    "int8": np.int8, "uint8": np.uint8, "int16": np.int16, "int32": np.int32, "int64": np.int64,
    "float32": np.float32, "bool": np.bool_, "uint32": np.uint32,
}


QUANTIZED = ("int8", "uint8")

# Quantized activation dtypes, int16 included (TFLite's 16x8 scheme: int16 activations with zero point 0). Ops
# that TFLite Micro runs in int16 accept these; the others keep to QUANTIZED.
QUANTIZED_16 = ("int8", "uint8", "int16")


def dtype_range(dtype: str) -> tuple[int, int]:
    """The (min, max) integer range of a quantized dtype."""
    return _RANGES[dtype]


def i64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def wrap_int32(x) -> np.ndarray:
    """Two's-complement wrap of int64 values to the int32 range (what an int32 overflow does in practice)."""
    x = i64(x)
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def c_div(a, b) -> np.ndarray:
    """C integer division: truncates toward zero (numpy's // floors)."""
    a, b = i64(a), i64(b)
    q = np.abs(a) // np.abs(b)
    return np.where((a < 0) != (b < 0), -q, q)


def saturating_rounding_doubling_high_mul(a, b) -> np.ndarray:
    """gemmlowp::SaturatingRoundingDoublingHighMul for int32 (ARM VQRDMULH): round(a*b / 2^31), saturating."""
    a, b = i64(a), i64(b)
    overflow = (a == b) & (a == INT32_MIN)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    s = ab + nudge
    high = np.where(s >= 0, s >> 31, -((-s) >> 31))  # C division by 2^31 truncates toward zero
    return np.where(overflow, INT32_MAX, high)


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """gemmlowp::RoundingDivideByPOT: x / 2^exponent rounded to nearest, ties away from zero."""
    x, exponent = i64(x), i64(exponent)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(x, multiplier, shift) -> np.ndarray:
    """TFLite's MultiplyByQuantizedMultiplier (int32 x, double rounding; `internal/common.h`).

    shift > 0 is a left shift applied to x before the Q31 multiply (in int32, so it may wrap), shift < 0 a
    rounding right shift after it. `multiplier` and `shift` broadcast against x (per-channel along the last
    axis when given as vectors)."""
    x = wrap_int32(x)
    multiplier, shift = i64(multiplier), i64(shift)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    shifted = wrap_int32(x * (np.int64(1) << left))
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right)


def multiply_by_quantized_multiplier_int64(x, multiplier, shift) -> np.ndarray:
    """TFLite's MultiplyByQuantizedMultiplier for an int64 accumulator (`internal/common.cc`, the same in its
    single- and double-rounding builds; the 16x8 conv / transpose conv with int64 bias use it): the Q31
    multiplier is first rounded to 16 bits (0x7FFF when it would reach 2^15), then
    (x * reduced + 2^(total_shift - 1)) >> total_shift with total_shift = 15 - shift, truncated to int32.
    TFLite assumes |x| < 2^47 and -31 <= shift < 8."""
    x, multiplier, shift = i64(x), i64(multiplier), i64(shift)
    reduced = np.where(multiplier < 0x7FFF0000, (multiplier + (1 << 15)) >> 16, 0x7FFF)
    total_shift = 15 - shift
    return wrap_int32((x * reduced + (np.int64(1) << (total_shift - 1))) >> total_shift)


def multiply_by_quantized_multiplier_greater_than_one(x, multiplier, left_shift) -> np.ndarray:
    """TFLite's MultiplyByQuantizedMultiplierGreaterThanOne: SRDHM(x * 2^left_shift, multiplier)."""
    shifted = wrap_int32(i64(x) * (np.int64(1) << i64(left_shift)))
    return saturating_rounding_doubling_high_mul(shifted, multiplier)


def saturating_rounding_multiply_by_pot(x, exponent: int) -> np.ndarray:
    """gemmlowp::SaturatingRoundingMultiplyByPOT<exponent> for int32."""
    x = i64(x)
    if exponent == 0:
        return x
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    result = x * (1 << exponent)
    result = np.where(x > threshold, INT32_MAX, result)
    return np.where(x < -threshold, INT32_MIN, result)


def _fp_add(a, b) -> np.ndarray:
    """gemmlowp fixed-point + and - (plain int32 add; wraps on overflow)."""
    return wrap_int32(i64(a) + i64(b))


def rounding_half_sum(a, b) -> np.ndarray:
    """gemmlowp::RoundingHalfSum for int32: (a + b) / 2 rounded away from zero."""
    s = i64(a) + i64(b)
    return c_div(s + np.where(s >= 0, 1, -1), 2)


def exp_on_interval_between_negative_one_quarter_and_0_excl(a) -> np.ndarray:
    """gemmlowp: exp(a) for a in [-1/4, 0), a and result in Q0.31."""
    constant_term = 1895147668  # exp(-1/8)
    constant_1_over_3 = 715827883
    x = _fp_add(a, 1 << 28)  # a + 1/8
    x2 = saturating_rounding_doubling_high_mul(x, x)
    x3 = saturating_rounding_doubling_high_mul(x2, x)
    x4 = saturating_rounding_doubling_high_mul(x2, x2)
    x4_over_4 = saturating_rounding_multiply_by_pot(x4, -2)
    t = _fp_add(saturating_rounding_doubling_high_mul(_fp_add(x4_over_4, x3), constant_1_over_3), x2)
    x4_over_24_plus_x3_over_6_plus_x2_over_2 = saturating_rounding_multiply_by_pot(t, -1)
    return _fp_add(constant_term, saturating_rounding_doubling_high_mul(
        constant_term, _fp_add(x, x4_over_24_plus_x3_over_6_plus_x2_over_2)))


_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535),
               (3, 720401), (4, 242))


def exp_on_negative_values(a, integer_bits: int) -> np.ndarray:
    """gemmlowp::exp_on_negative_values: exp(a) for a <= 0 given in Q(integer_bits); result in Q0.31."""
    a = i64(a)
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    mask = one_quarter - 1
    a_mod_quarter_minus_one_quarter = _fp_add(a & mask, -one_quarter)
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_rounding_multiply_by_pot(a_mod_quarter_minus_one_quarter, integer_bits))  # Rescale<0>
    remainder = _fp_add(a_mod_quarter_minus_one_quarter, -a)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = 1 << (fractional_bits + exponent)
            result = np.where((remainder & bit) != 0,
                              saturating_rounding_doubling_high_mul(result, multiplier), result)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))  # -32.0
        result = np.where(a < clamp, 0, result)
    return np.where(a == 0, INT32_MAX, result)


def one_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    """gemmlowp: 1 / (1 + a) for a in (0, 1), Q0.31 in and out (Newton-Raphson, 3 iterations)."""
    half_denominator = rounding_half_sum(a, INT32_MAX)
    constant_48_over_17 = 1515870810  # Q2.29
    constant_neg_32_over_17 = -1010580540  # Q2.29
    x = _fp_add(constant_48_over_17, saturating_rounding_doubling_high_mul(half_denominator,
                                                                           constant_neg_32_over_17))
    one_q2 = 1 << 29
    for _ in range(3):
        half_denominator_times_x = saturating_rounding_doubling_high_mul(half_denominator, x)
        one_minus_half_denominator_times_x = _fp_add(one_q2, -half_denominator_times_x)
        x = _fp_add(x, saturating_rounding_multiply_by_pot(
            saturating_rounding_doubling_high_mul(x, one_minus_half_denominator_times_x), 2))  # Rescale<2>
    return saturating_rounding_multiply_by_pot(x, 1)  # Rescale<0>(ExactMulByPot<-1>(x))


def count_leading_zeros_u32(x) -> np.ndarray:
    """CountLeadingZeros of uint32 values (given as non-negative int64)."""
    x = i64(x)
    bitlen = np.zeros_like(x)
    for k in range(32):
        bitlen += (x >= (np.int64(1) << k))
    return 32 - bitlen


def get_reciprocal(x, x_integer_digits: int) -> tuple[np.ndarray, np.ndarray]:
    """TFLite's GetReciprocal (`internal/common.h`): 1/x as Q0.31 and the number of bits over unit."""
    x = i64(x)
    headroom_plus_one = count_leading_zeros_u32(x)
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted_sum_minus_one = ((x << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31)
    return one_over_one_plus_x_for_x_in_0_1(wrap_int32(shifted_sum_minus_one)), num_bits_over_unit


def logistic_fixed_point(a, integer_bits: int) -> np.ndarray:
    """gemmlowp::logistic: 1 / (1 + exp(-a)) for a in Q(integer_bits), result in Q0.31."""
    a = i64(a)
    positive = a > 0
    abs_input = np.where(positive, a, wrap_int32(-a))
    result_if_positive = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(wrap_int32(-abs_input),
                                                                                 integer_bits))
    result_if_negative = _fp_add(INT32_MAX, -result_if_positive)
    return np.where(a == 0, 1 << 30, np.where(positive, result_if_positive, result_if_negative))


def f32(x) -> np.float32:
    """A scale as TFLite holds it (`TfLiteQuantizationParams.scale` and the flatbuffer are float32)."""
    return np.float32(x)


def tflite_round(x):
    """TfLiteRound / std::round: round half away from zero (exact for float32 and for doubles < 2^52)."""
    v = np.asarray(x, dtype=np.float64)
    r = np.sign(v) * np.floor(np.abs(v) + 0.5)
    return r if r.ndim else float(r)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier (`internal/quantization_util.cc`): real = multiplier * 2^(shift - 31).

    frexp-based Q31 significand; a significand that rounds up to 2^31 is halved with shift + 1; shifts below
    -31 become (0, 0)."""
    real = float(real)
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = int(tflite_round(q * (1 << 31)))
    assert abs(q_fixed) <= (1 << 31)
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    return q_fixed, shift


def quantize_multipliers(reals) -> tuple[np.ndarray, np.ndarray]:
    """quantize_multiplier over an array of doubles (per-channel multipliers)."""
    pairs = [quantize_multiplier(r) for r in np.atleast_1d(np.asarray(reals, dtype=np.float64))]
    return (np.array([p[0] for p in pairs], dtype=np.int64), np.array([p[1] for p in pairs], dtype=np.int64))


# The largest right shift single_rounding_multipliers folds into the multiplier: beyond it TFLite's second rounding
# (off by at most 2^-(e+1) output LSB) is closer than the shortened multiplier (off by about 2^(e-23) LSB for
# outputs within +-256).
SINGLE_ROUNDING_MAX_SHIFT = 11


def single_rounding_multipliers(multiplier, shift):
    """(multiplier, shift) of MultiplyByQuantizedMultiplier that round once: a right shift e (1 <= e <=
    SINGLE_ROUNDING_MAX_SHIFT) folded into the multiplier, round(multiplier / 2^e) with shift 0, so that
    MultiplyByQuantizedMultiplier is one rounding high multiply, round(acc * real) (half away from zero), where
    TFLite's is SaturatingRoundingDoublingHighMul then RoundingDivideByPOT: the first rounding moves the second's
    threshold by up to 2^-(e+1) LSB (1 LSB off a float requantization on about 2^-e of the outputs). Scalars or
    per-channel vectors, as given; the multiplier keeps >= 20 significant bits."""
    m, s = np.asarray(multiplier, np.int64), np.asarray(shift, np.int64)
    e = -s
    fold = (e >= 1) & (e <= SINGLE_ROUNDING_MAX_SHIFT)
    e_safe = np.where(fold, e, 1)
    m = np.where(fold, (m + (np.int64(1) << (e_safe - 1))) >> e_safe, m)
    s = np.where(fold, 0, s)
    if np.ndim(multiplier) == 0:
        return int(m), int(s)
    return m, s


def quantize_multiplier_smaller_than_one_exp(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplierSmallerThanOneExp: as quantize_multiplier, requiring 0 < real < 1."""
    if not 0.0 < real < 1.0:
        raise UserError(f"a requantization multiplier {real!r} must lie in (0, 1) for this op (TFLite requires "
                        "it); check the tensors' scales")
    return quantize_multiplier(real)


def quantize_multiplier_greater_than_one(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplierGreaterThanOne: as quantize_multiplier, requiring real > 1."""
    if not real > 1.0:
        raise UserError(f"a requantization multiplier {real!r} must be > 1 for this op (TFLite requires it)")
    return quantize_multiplier(real)


def calculate_input_radius(input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31) -> int:
    """TFLite's CalculateInputRadius (`internal/quantization_util.cc`)."""
    max_input_rescaled = (1.0 * ((1 << input_integer_bits) - 1) * (1 << (total_signed_bits - input_integer_bits))
                          / (1 << input_left_shift))
    return int(math.floor(max_input_rescaled))


def activation_range(activation: str, scale, zero_point: int, dtype: str) -> tuple[int, int]:
    """TFLite's CalculateActivationRangeQuantized (`kernel_util.cc`): a fused activation as an output clamp.

    quantize(f) = zero_point + (int)round(f / scale), with f / scale in float32."""
    qmin, qmax = dtype_range(dtype)
    s = f32(scale)

    def quantize(f: float) -> int:
        return int(zero_point) + int(tflite_round(np.float32(f) / s))

    if activation == "none":
        return qmin, qmax
    if activation == "relu":
        return max(qmin, quantize(0.0)), qmax
    if activation == "relu6":
        return max(qmin, quantize(0.0)), min(qmax, quantize(6.0))
    if activation == "relu_n1_to_1":
        return max(qmin, quantize(-1.0)), min(qmax, quantize(1.0))
    raise UserError(f"unknown fused activation {activation!r}; mcutool supports none, relu, relu6, relu_n1_to_1")


def requantize_multiplier(input_scale, output_scale) -> tuple[int, int]:
    """TFLite's QUANTIZE Prepare for int8/uint8 -> int8/uint8 (`quantize.cc`), also MEAN's (`reduce.cc`):
    (double)input_scale / (double)output_scale."""
    return quantize_multiplier(float(f32(input_scale)) / float(f32(output_scale)))


def _libm_expf():
    """glibc's expf, which TFLite's lookup tables call (`std::exp(float)`); numpy's float32 exp may differ by an
    ulp. Falls back to numpy where libm cannot be loaded."""
    try:
        libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
        fn = libm.expf
        fn.restype = ctypes.c_float
        fn.argtypes = [ctypes.c_float]
        return lambda v: np.float32(fn(float(v)))
    except (OSError, AttributeError):  # pragma: no cover - non-glibc hosts
        return lambda v: np.exp(np.float32(v))


expf = _libm_expf()


def clamp(x, lo: int, hi: int) -> np.ndarray:
    return np.minimum(np.maximum(i64(x), lo), hi)


def cast_to(x, dtype: str) -> np.ndarray:
    return np.asarray(x).astype(NP_DTYPES[dtype])


def requantize_accumulator(acc, multiplier, shift, output_zero_point: int, act_min: int, act_max: int):
    """The common output stage of conv / depthwise / fully connected: MultiplyByQuantizedMultiplier, add the
    output zero point, clamp to the activation range (`reference/integer_ops/conv.h` and friends)."""
    out = multiply_by_quantized_multiplier(acc, multiplier, shift) + int(output_zero_point)
    return clamp(out, act_min, act_max)


def requantize(x, *, in_zp, multiplier, shift, out_zp, out_dtype) -> np.ndarray:
    """int8/uint8 -> int8/uint8 (`reference/requantize.h` Requantize, used by QUANTIZE; also how mcutool's
    CONCATENATION rescales inputs whose quantization differs from the output's)."""
    out = multiply_by_quantized_multiplier(i64(x) - int(in_zp), multiplier, shift) + int(out_zp)
    qmin, qmax = dtype_range(out_dtype)
    return clamp(out, qmin, qmax)


# ---- added for the elementwise / activation operators (ABS, RSQRT, TANH, HARD_SWISH, ELU, DIV, L2_NORMALIZATION)

def lut_populate(input_scale, input_zero_point: int, output_scale, output_zero_point: int, transform,
                 dtype: str = "int8") -> np.ndarray:
    """TFLite's float-computed 8-bit lookup table (TFLite Micro's `PopulateLookupTable` in elu.cc, TFLite's
    `LUTPopulate`): table[q - qmin] = clamp((int)(round(transform(s_in * (q - zp_in)) * (1 / s_out)) + zp_out)),
    every step in float32. `transform` maps a float32 to a float32."""
    qmin, qmax = dtype_range(dtype)
    in_s, out_s = f32(input_scale), f32(output_scale)
    inverse_scale = np.float32(1.0) / out_s
    table = np.empty(qmax - qmin + 1, dtype=np.int64)
    for val in range(qmin, qmax + 1):
        dequantized = np.float32(in_s * np.float32(val - input_zero_point))
        transformed = np.float32(transform(dequantized))
        rescaled = np.float32(tflite_round(np.float32(transformed * inverse_scale)))
        quantized = int(np.float32(rescaled + np.float32(output_zero_point)))
        table[val - qmin] = min(max(quantized, qmin), qmax)
    return table


def count_leading_sign_bits(x) -> np.ndarray:
    """TFLite's CountLeadingSignBits for int32 (`internal/common.h`)."""
    x = i64(x)
    pos = count_leading_zeros_u32(np.where(x >= 0, x, 0)) - 1
    neg = count_leading_zeros_u32(np.where(x < 0, 2 * (-x) - 1, 0))
    return np.where(x >= 0, pos, np.where(x == INT32_MIN, 0, neg))


def get_inv_sqrt_quantized_multiplier_exp(x, reverse_shift: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """TFLite's GetInvSqrtQuantizedMultiplierExp (`internal/common.h`): 1/sqrt(x) for int32 x >= 0 as a Q31
    multiplier and a shift (times reverse_shift; TFLite's kReverseShift is -1), Newton-Raphson in gemmlowp
    fixed point (F3), inputs 0 and 1 giving (INT32_MAX, 0)."""
    x = i64(x)
    shift = np.full(x.shape, 11, dtype=np.int64)
    big = x >= (1 << 29)
    while np.any(big):
        x = np.where(big, c_div(x, 4), x)
        shift = shift + big
        big = x >= (1 << 29)
    safe = np.maximum(x, 2)
    max_left_shift_bits = count_leading_zeros_u32(safe) - 1
    left_shift_bit_pairs = max_left_shift_bits // 2 - 1
    shift = shift - left_shift_bit_pairs
    safe = safe << (2 * left_shift_bit_pairs)
    fixedpoint_input = safe >> 1
    half_input = saturating_rounding_multiply_by_pot(fixedpoint_input, -1)
    half_three = (1 << 28) + (1 << 27)
    v = np.full(x.shape, 1 << 28, dtype=np.int64)  # F3::One()
    for _ in range(5):
        x3 = saturating_rounding_multiply_by_pot(
            saturating_rounding_doubling_high_mul(saturating_rounding_doubling_high_mul(v, v), v), 6)
        v = saturating_rounding_multiply_by_pot(
            wrap_int32(saturating_rounding_doubling_high_mul(half_three, v)
                       - saturating_rounding_doubling_high_mul(half_input, x3)), 3)
    v = saturating_rounding_doubling_high_mul(v, 1518500250)  # * sqrt(2) / 2
    neg = shift < 0
    v = np.where(neg, wrap_int32(v << np.where(neg, -shift, 0)), v)
    shift = np.where(neg, 0, shift)
    small = x <= 1
    return np.where(small, INT32_MAX, v), np.where(small, 0, shift * reverse_shift)


def one_minus_x_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    """gemmlowp: (1 - a) / (1 + a) for a in [0, 1), Q0.31 in and out (Newton-Raphson, 3 iterations)."""
    half_denominator = rounding_half_sum(a, INT32_MAX)
    x = _fp_add(1515870810, saturating_rounding_doubling_high_mul(half_denominator, -1010580540))  # Q2.29
    one_q2 = 1 << 29
    for _ in range(3):
        half_denominator_times_x = saturating_rounding_doubling_high_mul(half_denominator, x)
        one_minus = _fp_add(one_q2, -half_denominator_times_x)
        x = _fp_add(x, saturating_rounding_multiply_by_pot(saturating_rounding_doubling_high_mul(x, one_minus), 2))
    return saturating_rounding_multiply_by_pot(_fp_add(x, -one_q2), 2)  # Rescale<0>(x - F2::One())


def tanh_fixed_point(a, integer_bits: int) -> np.ndarray:
    """gemmlowp::tanh for a in Q(integer_bits) (int32 raw), result Q0.31: with n = -|a|,
    t = one_minus_x_over_one_plus_x(exp_on_negative_values(ExactMulByPot<1>(n))) -- the same raw value read with
    one more integer bit, i.e. exp(2n) -- and tanh(a) = t for a > 0, -t for a < 0, 0 for a = 0."""
    a = i64(a)
    negative = a < 0
    n = np.where(negative, a, wrap_int32(-a))
    t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, integer_bits + 1))
    return np.where(a == 0, 0, np.where(negative, wrap_int32(-t), t))


# int16 fixed point (gemmlowp's int16 FixedPoint, TFLite's HardSwish)

def saturating_rounding_doubling_high_mul_int16(a, b) -> np.ndarray:
    """gemmlowp::SaturatingRoundingDoublingHighMul for int16: (a*b + nudge) / 2^15, truncating, saturating."""
    a, b = i64(a), i64(b)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 14, 1 - (1 << 14))
    out = c_div(ab + nudge, 1 << 15)
    out = ((out + (1 << 15)) & 0xFFFF) - (1 << 15)  # static_cast<int16_t>
    return np.where((a == b) & (a == -32768), 32767, out)


def saturating_doubling_high_mul_int16(a, b) -> np.ndarray:
    """TFLite's SaturatingDoublingHighMul (`reference/hard_swish.h`): a*b / 2^15 truncating, saturating."""
    a, b = i64(a), i64(b)
    out = c_div(a * b, 1 << 15)
    out = ((out + (1 << 15)) & 0xFFFF) - (1 << 15)
    return np.where((a == b) & (a == -32768), 32767, out)


def saturating_left_shift_int16(x, amount: int) -> np.ndarray:
    """TFLite's SaturatingLeftShift (`reference/hard_swish.h`) for int16."""
    return np.clip(i64(x) * (1 << amount), -32768, 32767)


def down_scale_int32_to_int16_multiplier(multiplier: int) -> int:
    """TFLite's DownScaleInt32ToInt16Multiplier (`internal/common.h`)."""
    if multiplier >= INT32_MAX - (1 << 15):
        return 32767
    return (int(multiplier) + (1 << 15)) >> 16


# TFLite's sigmoid_table_uint16 (`internal/common.h`): sigmoid(i / 24) in 0.16 fixed point for i = 0..255, as TFLite
# tabulates it (its values are not one rounding rule of the real function, so the table is data). The int16 TANH
# (and LOGISTIC) kernels of TFLite Micro interpolate in it.


# TFLite's 16-bit sigmoid/tanh table (`internal/common.h` sigmoid_table_uint16, the same in CMSIS-NN's
# arm_nntables.c): sigmoid(i / 24) in 0.16 fixed point for i = 0..255, interpolated by the int16 LOGISTIC and
# TANH kernels (`reference/integer_ops/logistic.h`, `tanh.h`) and by the integer LSTM's gates. It is the data
# that defines that arithmetic (it differs from a rounded sigmoid in places), so it is written out here.
SIGMOID_TABLE_UINT16 = np.array([
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794, 41432, 42064, 42688,
    43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409,
    51865, 52311, 52745, 53169, 53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110,
    61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186,
    63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900,
    64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208,
    65221, 65234, 65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433, 65438, 65442, 65445, 65449,
    65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491,
    65493, 65495, 65497, 65498, 65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530,
    65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535,
], dtype=np.int64)


def _scaled_int16(x, input_multiplier: int, input_left_shift: int) -> np.ndarray:
    """The int16 LOGISTIC/TANH input scaling: a multiplier of 0 means the power-of-two case (3 << shift, no shift);
    otherwise (x * multiplier + round) >> shift."""
    if input_multiplier == 0:
        input_multiplier, input_left_shift = 3 << input_left_shift, 0
    rounding = (1 << (input_left_shift - 1)) if input_left_shift > 0 else 0
    return (i64(x) * input_multiplier + rounding) >> input_left_shift


def _interpolate(abs_x, fraction_bits: int, saturated: int) -> np.ndarray:
    table = SIGMOID_TABLE_UINT16
    uh = abs_x >> fraction_bits
    idx = np.minimum(uh, 254)
    ua, ub = table[idx], table[idx + 1]
    ut = abs_x & ((1 << fraction_bits) - 1)
    return np.where(uh >= 255, saturated, (ua << fraction_bits) + ut * (ub - ua))


def logistic_int16(x, input_multiplier: int = 0, input_left_shift: int = 0) -> np.ndarray:
    """reference_integer_ops::Logistic for int16 (`integer_ops/logistic.h`): the table interpolated with 9
    fraction bits; output Q0.15."""
    v = _scaled_int16(x, input_multiplier, input_left_shift)
    r = _interpolate(np.abs(v), 9, 0x7FFF << 10)
    r = np.where(v >= 0, r + (1 << 9), (1 << 25) - r + (1 << 9) - 1) & 0xFFFFFFFF
    return (r >> 10).astype(np.int64).astype(np.int16).astype(np.int64)


def tanh_int16(x, input_multiplier: int = 0, input_left_shift: int = 0) -> np.ndarray:
    """reference_integer_ops::Tanh for int16 (`integer_ops/tanh.h`): tanh(x) = 2 sigmoid(2x) - 1 through the same
    table with 8 fraction bits; output Q0.15."""
    v = _scaled_int16(x, input_multiplier, input_left_shift)
    r = _interpolate(np.abs(v), 8, 0xFFFF << 8)
    r = np.where(v >= 0, r - (1 << 23) + (1 << 7), -r + (1 << 23) + (1 << 7) - 1)
    return (r >> 8).astype(np.int16).astype(np.int64)


def gen_lut_int16(func, input_min: float, input_max: float) -> np.ndarray:
    """TFLite's gen_lut<float, int16_t, int16_t>(func, input_min, input_max, -1.0f, 1.0f) (`internal/common.h`):
    513 int16 entries, func sampled at 512 steps over [input_min, input_max] in Q0.15, each biased by half its
    midpoint interpolation error, plus func(input_max) for the last slope. Every step in float32, as the C++
    does; `func` takes and returns np.float32."""
    lo, hi = np.float32(input_min), np.float32(input_max)
    step = np.float32((hi - lo) / np.float32(512))
    half_step = np.float32(step / np.float32(2))
    scale = np.float32(32768)  # (int16 max - min + 1) / (output_max - output_min)

    def q(v):
        return np.float32(tflite_round(np.float32(v * scale)))

    lut = np.zeros(513, dtype=np.int64)
    for i in range(512):
        x = np.float32(lo + np.float32(np.float32(i) * step))
        val, val_mid = func(x), func(np.float32(x + half_step))
        val_next = func(np.float32(lo + np.float32(np.float32(i + 1) * step)))
        interp = tflite_round(np.float32(np.float32(np.float32(val_next * scale) + q(val)) / np.float32(2)))
        bias = tflite_round(np.float32(np.float32(np.float32(interp) - q(val_mid)) / np.float32(2)))
        lut[i] = min(max(float(q(val)) - bias, -32768.0), 32767.0)
    lut[512] = min(max(float(q(func(hi))), -32768.0), 32767.0)
    return lut


def lut_lookup_int16(value, lut) -> np.ndarray:
    """TFLite's int16 table lookup with interpolation (`internal/common.h` lut_lookup / generic_int16_table_lookup):
    index 256 + (v >> 7), base + ((slope * (v & 0x7f) + 64) >> 7), slope and result as int16."""
    v = i64(value)
    lut = i64(lut)
    index = 256 + (v >> 7)
    base = lut[index]
    slope = (lut[index + 1] - base).astype(np.int16).astype(np.int64)
    return (base + ((slope * (v & 0x7F) + 64) >> 7)).astype(np.int16).astype(np.int64)



def checked_log2(x) -> tuple[bool, int]:
    """TFLite's CheckedLog2(float x, int*) (`kernels/internal/quantization_util.h`): (whether x is a power of two
    within 1e-3 in log2, round(log2 x)), in float32 as the C++ computes it."""
    x_log2 = np.float32(np.log(np.float32(x)) * np.float32(np.float32(1.0) / np.log(np.float32(2.0))))
    rounded = np.float32(tflite_round(x_log2))
    return bool(abs(np.float32(x_log2 - rounded)) < np.float32(1e-3)), int(rounded)


def int16_sigmoid_tanh_input_params(input_scale, pot_shifts=(0,)) -> tuple[int, int]:
    """(input_multiplier, input_left_shift) of the int16 LOGISTIC (`micro/kernels/logistic_common.cc`, pot_shifts
    (0,)) and TANH (`micro/kernels/tanh.cc`, pot_shifts (0, 1)) Prepare: multiplier 0 when the input scale is
    2^(shift - 12) for a shift in pot_shifts (logistic_int16 / tanh_int16 then scale by 3 << shift); otherwise
    scale * 4096 * 3 doubled while <= 32767 / 2 (at most 31 times), truncated, with the number of doublings as the
    right shift."""
    pot, log2 = checked_log2(input_scale)
    left_shift = (15 - 3) + log2
    if pot and left_shift in pot_shifts:
        return 0, left_shift
    multiplier, left_shift = float(f32(input_scale)) * 4096.0 * 3.0, 0
    while multiplier <= 32767.0 / 2.0 and left_shift <= 30:
        left_shift += 1
        multiplier *= 2.0
    return int(multiplier), left_shift
