"""The numpy golden model: integer-only int8/uint8 inference with TFLite Micro's arithmetic, bit for bit.

Every generated C kernel is compared against this module, and this module is compared against tflite-runtime
2.14's reference kernels (`OpResolverType.BUILTIN_REF`), which agree bit for bit with TFLite Micro
(DESIGN.md §6). Each op follows one TFLite kernel; the file it follows is named in the op's docstring
(paths below `tensorflow/lite/kernels/`).

Layout of this module:
  1. integer primitives (gemmlowp / `internal/common.h`): SaturatingRoundingDoublingHighMul,
     RoundingDivideByPOT, MultiplyByQuantizedMultiplier, the gemmlowp fixed-point exp / reciprocal / logistic;
  2. "prepare" helpers: what TFLite computes once from the float scales (multipliers and shifts, activation
     clamps, lookup tables), with TFLite's exact float32/double precision;
  3. one function per op on numpy arrays and prepared integers (`conv2d_int8`, `add_int8`, ...), plus plain
     float32 versions for calibrating float models;
  4. `run(graph, inputs)`, which executes a `Graph` op by op.

Integers are carried in int64 arrays holding int32 values; where TFLite's int32 arithmetic would wrap
(`x * (1 << shift)`, additions of fixed-point values) the result is wrapped to int32 the same way.
No float is used in an integer execution path; floats appear only in the prepare helpers, as in TFLite.
Scales are used as float32 values, as TFLite holds them (an IR scale that is not a float32 is rounded first).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import math
from dataclasses import dataclass

import numpy as np

from mcutool.errors import UserError
from mcutool.ir import Graph, Op, Tensor

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1

_RANGES = {
    "int8": (-128, 127),
    "uint8": (0, 255),
    "int16": (-32768, 32767),
    "int32": (INT32_MIN, INT32_MAX),
}
_NP_DTYPES = {
    "int8": np.int8, "uint8": np.uint8, "int16": np.int16, "int32": np.int32, "int64": np.int64,
    "float32": np.float32, "bool": np.bool_, "uint32": np.uint32,
}
_QUANTIZED = ("int8", "uint8")


def dtype_range(dtype: str) -> tuple[int, int]:
    """The (min, max) integer range of a quantized dtype."""
    return _RANGES[dtype]


# =====================================================================================================
# 1. Integer primitives
# =====================================================================================================

def _i64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def wrap_int32(x) -> np.ndarray:
    """Two's-complement wrap of int64 values to the int32 range (what an int32 overflow does in practice)."""
    x = _i64(x)
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def c_div(a, b) -> np.ndarray:
    """C integer division: truncates toward zero (numpy's // floors)."""
    a, b = _i64(a), _i64(b)
    q = np.abs(a) // np.abs(b)
    return np.where((a < 0) != (b < 0), -q, q)


def saturating_rounding_doubling_high_mul(a, b) -> np.ndarray:
    """gemmlowp::SaturatingRoundingDoublingHighMul for int32 (ARM VQRDMULH): round(a*b / 2^31), saturating."""
    a, b = _i64(a), _i64(b)
    overflow = (a == b) & (a == INT32_MIN)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    s = ab + nudge
    high = np.where(s >= 0, s >> 31, -((-s) >> 31))  # C division by 2^31 truncates toward zero
    return np.where(overflow, INT32_MAX, high)


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """gemmlowp::RoundingDivideByPOT: x / 2^exponent rounded to nearest, ties away from zero."""
    x, exponent = _i64(x), _i64(exponent)
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
    multiplier, shift = _i64(multiplier), _i64(shift)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    shifted = wrap_int32(x * (np.int64(1) << left))
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right)


def multiply_by_quantized_multiplier_greater_than_one(x, multiplier, left_shift) -> np.ndarray:
    """TFLite's MultiplyByQuantizedMultiplierGreaterThanOne: SRDHM(x * 2^left_shift, multiplier)."""
    shifted = wrap_int32(_i64(x) * (np.int64(1) << _i64(left_shift)))
    return saturating_rounding_doubling_high_mul(shifted, multiplier)


def saturating_rounding_multiply_by_pot(x, exponent: int) -> np.ndarray:
    """gemmlowp::SaturatingRoundingMultiplyByPOT<exponent> for int32."""
    x = _i64(x)
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
    return wrap_int32(_i64(a) + _i64(b))


def rounding_half_sum(a, b) -> np.ndarray:
    """gemmlowp::RoundingHalfSum for int32: (a + b) / 2 rounded away from zero."""
    s = _i64(a) + _i64(b)
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
    a = _i64(a)
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
    x = _i64(x)
    bitlen = np.zeros_like(x)
    for k in range(32):
        bitlen += (x >= (np.int64(1) << k))
    return 32 - bitlen


def get_reciprocal(x, x_integer_digits: int) -> tuple[np.ndarray, np.ndarray]:
    """TFLite's GetReciprocal (`internal/common.h`): 1/x as Q0.31 and the number of bits over unit."""
    x = _i64(x)
    headroom_plus_one = count_leading_zeros_u32(x)
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted_sum_minus_one = ((x << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31)
    return one_over_one_plus_x_for_x_in_0_1(wrap_int32(shifted_sum_minus_one)), num_bits_over_unit


def logistic_fixed_point(a, integer_bits: int) -> np.ndarray:
    """gemmlowp::logistic: 1 / (1 + exp(-a)) for a in Q(integer_bits), result in Q0.31."""
    a = _i64(a)
    positive = a > 0
    abs_input = np.where(positive, a, wrap_int32(-a))
    result_if_positive = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(wrap_int32(-abs_input),
                                                                                 integer_bits))
    result_if_negative = _fp_add(INT32_MAX, -result_if_positive)
    return np.where(a == 0, 1 << 30, np.where(positive, result_if_positive, result_if_negative))


# =====================================================================================================
# 2. Prepare-time helpers (floats, exactly as TFLite computes them)
# =====================================================================================================

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


def conv_output_multipliers(input_scale, weight_scales, output_scale) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel requantization of conv / depthwise conv / per-channel fully connected.

    TFLite's PopulateConvolutionQuantizationParams (`kernel_util.cc`):
    effective = (double)input_scale * (double)filter_scale[c] / (double)output_scale, from float32 scales."""
    w = np.atleast_1d(np.asarray(weight_scales, dtype=np.float32)).astype(np.float64)
    effective = float(f32(input_scale)) * w / float(f32(output_scale))
    return quantize_multipliers(effective)


def legacy_conv_output_multiplier(input_scale, weight_scale, output_scale) -> tuple[int, int]:
    """Per-tensor requantization of FULLY_CONNECTED (and of uint8 CONV_2D / DEPTHWISE_CONV_2D).

    TFLite's GetQuantizedConvolutionMultipler (`kernel_util.cc`) in 2.14:
    input_product_scale = (double)(input_scale * filter_scale) -- the product in float32 (verified against
    tflite-runtime 2.14: the double product differs in the last multiplier bit and in outputs) --, then
    multiplier = input_product_scale / (double)output_scale."""
    product = float(np.float32(f32(input_scale) * f32(weight_scale)))
    return quantize_multiplier(product / float(f32(output_scale)))


def weighted_op_multipliers(kind: str, x: Tensor, w: Tensor, out: Tensor):
    """The requantization (multiplier, shift) of conv2d / depthwise_conv2d / fully_connected -- ints, or
    int64 vectors with one entry per output channel -- computed the way tflite-runtime 2.14 does for that
    layer (each rule verified against it):
      * per-channel weights (any of the three kinds): conv_output_multipliers, in double;
      * conv2d / depthwise_conv2d with int8 input: conv_output_multipliers, also for per-tensor weights;
      * fully_connected with per-tensor weights, and uint8 conv2d / depthwise_conv2d (per-tensor):
        legacy_conv_output_multiplier (float32 scale product)."""
    x_scale, w_scales, o_scale = x.quant.scale[0], w.quant.scale, out.quant.scale[0]
    legacy = w_scales.size == 1 and (kind == "fully_connected" or x.dtype == "uint8")
    if legacy:
        return legacy_conv_output_multiplier(x_scale, w_scales[0], o_scale)
    mult, shift = conv_output_multipliers(x_scale, w_scales, o_scale)
    if mult.size == 1:
        return int(mult[0]), int(shift[0])
    return mult, shift


@dataclass
class AddParams:
    """Integer parameters of a quantized ADD (`add.cc` Prepare, 8-bit path)."""
    left_shift: int
    input1_multiplier: int
    input1_shift: int
    input2_multiplier: int
    input2_shift: int
    output_multiplier: int
    output_shift: int


def add_params(scale1, scale2, output_scale, left_shift: int = 20) -> AddParams:
    """TFLite's ADD Prepare for int8/uint8: inputs rescaled to 2*max(s1, s2) after a left shift of 20."""
    s1, s2, so = f32(scale1), f32(scale2), f32(output_scale)
    twice_max_input_scale = 2.0 * float(max(s1, s2))
    real_input1_multiplier = float(s1) / twice_max_input_scale
    real_input2_multiplier = float(s2) / twice_max_input_scale
    real_output_multiplier = twice_max_input_scale / ((1 << left_shift) * float(so))
    m1, sh1 = quantize_multiplier_smaller_than_one_exp(real_input1_multiplier)
    m2, sh2 = quantize_multiplier_smaller_than_one_exp(real_input2_multiplier)
    mo, sho = quantize_multiplier_smaller_than_one_exp(real_output_multiplier)
    return AddParams(left_shift, m1, sh1, m2, sh2, mo, sho)


def mul_output_multiplier(scale1, scale2, output_scale) -> tuple[int, int]:
    """TFLite's MUL Prepare (`mul.cc`): real = s1 * s2 / s_out evaluated in float32, then widened to double
    (verified against tflite-runtime 2.14: a double evaluation changes the multiplier's last bit and outputs)."""
    real = np.float32(np.float32(f32(scale1) * f32(scale2)) / f32(output_scale))
    return quantize_multiplier(float(real))


def requantize_multiplier(input_scale, output_scale) -> tuple[int, int]:
    """TFLite's QUANTIZE Prepare for int8/uint8 -> int8/uint8 (`quantize.cc`), also MEAN's (`reduce.cc`):
    (double)input_scale / (double)output_scale."""
    return quantize_multiplier(float(f32(input_scale)) / float(f32(output_scale)))


@dataclass
class SoftmaxParams:
    input_multiplier: int
    input_left_shift: int
    diff_min: int


SOFTMAX_SCALED_DIFF_INTEGER_BITS = 5
SOFTMAX_ACCUMULATION_INTEGER_BITS = 12


def softmax_params(beta: float, input_scale) -> SoftmaxParams:
    """TFLite's SoftmaxPrepare<kReference> for int8/uint8 (`activations.cc`): PreprocessSoftmaxScaling with
    kScaledDiffIntegerBits = 5 and diff_min = -CalculateInputRadius(5, input_left_shift)."""
    bits = SOFTMAX_SCALED_DIFF_INTEGER_BITS
    max_real_multiplier = float((1 << 31) - 1)
    real = min(float(f32(beta)) * float(f32(input_scale)) * (1 << (31 - bits)), max_real_multiplier)
    multiplier, left_shift = quantize_multiplier_greater_than_one(real)
    diff_min = -calculate_input_radius(bits, left_shift)
    return SoftmaxParams(multiplier, left_shift, diff_min)


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


_expf = _libm_expf()


def logistic_lut(input_scale, input_zero_point: int, output_scale, output_zero_point: int,
                 dtype: str = "int8") -> np.ndarray:
    """TFLite's LUTPopulate<int8/uint8> for LOGISTIC (`internal/common.h`, used by `activations.cc`
    SigmoidPrepare): a 256-entry table indexed by the input value (table[q - qmin]), float32 arithmetic."""
    qmin, qmax = dtype_range(dtype)
    in_s, out_s = f32(input_scale), f32(output_scale)
    inverse_scale = np.float32(1.0) / out_s
    table = np.empty(qmax - qmin + 1, dtype=np.int64)
    for val in range(qmin, qmax + 1):
        dequantized = in_s * np.float32(val - input_zero_point)
        transformed = np.float32(1.0) / (np.float32(1.0) + _expf(-dequantized))
        rescaled = np.float32(tflite_round(np.float32(transformed * inverse_scale)))
        quantized = int(np.float32(rescaled + np.float32(output_zero_point)))
        table[val - qmin] = min(max(quantized, qmin), qmax)
    return table


@dataclass
class LogisticParams:
    input_multiplier: int
    input_left_shift: int
    input_range_radius: int


def logistic_params(input_scale) -> LogisticParams:
    """Fixed-point LOGISTIC parameters as TFLite Micro's LogisticPrepare computes them
    (`micro/kernels/logistic_common.cc`): input in Q4.27, frexp-based multiplier without the 2^31 fix-up."""
    input_integer_bits = 4
    real = float(f32(input_scale)) * float(1 << (31 - input_integer_bits))
    q, left_shift = math.frexp(real)
    multiplier = int(wrap_int32(int(tflite_round(q * (1 << 31)))))
    radius = calculate_input_radius(input_integer_bits, left_shift, 31)
    return LogisticParams(multiplier, left_shift, radius)


def fold_mean_divisor(multiplier: int, shift: int, num_elements: int) -> tuple[int, int]:
    """Fold 1/num_elements into a (multiplier, shift) pair as reference_ops::QuantizedMeanOrSum
    (`internal/reference/reduce.h`) does: s = min(floor(log2 n), 32, 31 + shift),
    multiplier = (int64(multiplier) << s) / n (C division), shift -= s."""
    n = int(num_elements)
    s = min(n.bit_length() - 1, 32, 31 + int(shift))
    m = int(multiplier) << s
    folded = m // n if m >= 0 else -((-m) // n)
    return folded, int(shift) - s


def mean_multiplier(input_scale, output_scale, num_elements: int) -> tuple[int, int]:
    """MEAN's complete requantization: reduce.cc's (double)s_in / (double)s_out with 1/num_elements folded in."""
    return fold_mean_divisor(*requantize_multiplier(input_scale, output_scale), num_elements)


# =====================================================================================================
# 3. Ops
# =====================================================================================================

def _clamp(x, lo: int, hi: int) -> np.ndarray:
    return np.minimum(np.maximum(_i64(x), lo), hi)


def _cast(x, dtype: str) -> np.ndarray:
    return np.asarray(x).astype(_NP_DTYPES[dtype])


def _padded(x: np.ndarray, out_hw, stride, dilation, kernel, pads, fill) -> np.ndarray:
    """x (N, H, W, C) embedded in a canvas covering every input position the windows touch; positions outside
    the input hold `fill`. Windows then start at canvas[oy * sy + ky * dy, ox * sx + kx * dx]."""
    n, h, w, c = x.shape
    span_h = (kernel[0] - 1) * dilation[0] + 1
    span_w = (kernel[1] - 1) * dilation[1] + 1
    top, need_h = -pads[0], (out_hw[0] - 1) * stride[0] + span_h
    left, need_w = -pads[1], (out_hw[1] - 1) * stride[1] + span_w
    canvas = np.full((n, need_h, need_w, c), fill, dtype=x.dtype)
    y0, y1 = max(0, top), min(h, top + need_h)
    x0, x1 = max(0, left), min(w, left + need_w)
    if y1 > y0 and x1 > x0:
        canvas[:, y0 - top:y1 - top, x0 - left:x1 - left, :] = x[:, y0:y1, x0:x1, :]
    return canvas


def _taps(canvas: np.ndarray, out_hw, stride, dilation, kernel):
    """Yield (ky, kx, view) where view[n, oy, ox, c] = canvas[n, oy*sy + ky*dy, ox*sx + kx*dx, c]."""
    oh, ow = out_hw
    sy, sx = stride
    for ky in range(kernel[0]):
        for kx in range(kernel[1]):
            y0, x0 = ky * dilation[0], kx * dilation[1]
            yield ky, kx, canvas[:, y0:y0 + (oh - 1) * sy + 1:sy, x0:x0 + (ow - 1) * sx + 1:sx, :]


def _im2col(canvas: np.ndarray, out_hw, stride, dilation, kernel) -> np.ndarray:
    """(N, OH, OW, KH, KW, C) patches of the canvas."""
    views = [v for _, _, v in _taps(canvas, out_hw, stride, dilation, kernel)]
    stacked = np.stack(views, axis=3)  # (N, OH, OW, KH*KW, C)
    n, oh, ow, _, c = stacked.shape
    return stacked.reshape(n, oh, ow, kernel[0], kernel[1], c)


def requantize_accumulator(acc, multiplier, shift, output_zero_point: int, act_min: int, act_max: int):
    """The common output stage of conv / depthwise / fully connected: MultiplyByQuantizedMultiplier, add the
    output zero point, clamp to the activation range (`reference/integer_ops/conv.h` and friends)."""
    out = multiply_by_quantized_multiplier(acc, multiplier, shift) + int(output_zero_point)
    return _clamp(out, act_min, act_max)


def conv2d_accumulate(x, x_zp, w, w_zp, stride, dilation, pads, out_hw) -> np.ndarray:
    """int32 accumulators of a conv: acc[n, oy, ox, oc] = sum (x - x_zp) * (w - w_zp), padding contributing 0.

    x (N, H, W, Cin) integers; w (Cout, KH, KW, Cin); w_zp scalar or per output channel."""
    w64 = _i64(w)
    cout, kh, kw, cin = w64.shape
    wz = _i64(w_zp).reshape(-1, 1, 1, 1) if np.ndim(w_zp) else _i64(w_zp)
    x0 = _i64(x) - int(x_zp)
    canvas = _padded(x0, out_hw, stride, dilation, (kh, kw), pads, 0)
    cols = _im2col(canvas, out_hw, stride, dilation, (kh, kw))  # (N, OH, OW, KH, KW, Cin)
    n, oh, ow = cols.shape[:3]
    wmat = (w64 - wz).reshape(cout, kh * kw * cin).T
    acc = cols.reshape(n * oh * ow, kh * kw * cin) @ wmat
    return wrap_int32(acc.reshape(n, oh, ow, cout))


def conv2d_int8(x, w, bias, *, x_zp, w_zp, stride, dilation, pads, out_hw, multiplier, shift, out_zp,
                act_min, act_max) -> np.ndarray:
    """CONV_2D, quantized (`reference/integer_ops/conv.h` ConvPerChannel; uint8: `reference/conv.h`).

    multiplier/shift per output channel (or scalar). With multiplier None the raw int32 accumulator (plus
    bias) is returned (ONNX ConvInteger)."""
    acc = conv2d_accumulate(x, x_zp, w, w_zp, stride, dilation, pads, out_hw)
    if bias is not None:
        acc = wrap_int32(acc + _i64(bias))
    if multiplier is None:
        return acc
    return requantize_accumulator(acc, multiplier, shift, out_zp, act_min, act_max)


def depthwise_conv2d_accumulate(x, x_zp, w, w_zp, stride, dilation, pads, out_hw, depth_multiplier) -> np.ndarray:
    """int32 accumulators of a depthwise conv; output channel c*dm + m reads input channel c.

    w (1, KH, KW, Cin * dm); w_zp scalar or per output channel."""
    w64 = _i64(w)
    _, kh, kw, cout = w64.shape
    wz = _i64(w_zp)
    x0 = _i64(x) - int(x_zp)
    if depth_multiplier != 1:
        x0 = np.repeat(x0, depth_multiplier, axis=-1)
    canvas = _padded(x0, out_hw, stride, dilation, (kh, kw), pads, 0)
    n = x0.shape[0]
    acc = np.zeros((n, out_hw[0], out_hw[1], cout), dtype=np.int64)
    wsub = w64[0] - wz
    for ky, kx, view in _taps(canvas, out_hw, stride, dilation, (kh, kw)):
        acc += view * wsub[ky, kx]
    return wrap_int32(acc)


def depthwise_conv2d_int8(x, w, bias, *, x_zp, w_zp, stride, dilation, pads, out_hw, depth_multiplier,
                          multiplier, shift, out_zp, act_min, act_max) -> np.ndarray:
    """DEPTHWISE_CONV_2D, quantized (`reference/integer_ops/depthwise_conv.h` DepthwiseConvPerChannel;
    uint8: `reference/depthwiseconv_uint8.h`)."""
    acc = depthwise_conv2d_accumulate(x, x_zp, w, w_zp, stride, dilation, pads, out_hw, depth_multiplier)
    if bias is not None:
        acc = wrap_int32(acc + _i64(bias))
    if multiplier is None:
        return acc
    return requantize_accumulator(acc, multiplier, shift, out_zp, act_min, act_max)


def fully_connected_accumulate(x, x_zp, w, w_zp) -> np.ndarray:
    """int32 accumulators of a fully connected layer: x flattened to (-1, in_c); w (out_c, in_c)."""
    w64 = _i64(w)
    in_c = w64.shape[1]
    wz = _i64(w_zp).reshape(-1, 1) if np.ndim(w_zp) else _i64(w_zp)
    x0 = _i64(x).reshape(-1, in_c) - int(x_zp)
    return wrap_int32(x0 @ (w64 - wz).T)


def fully_connected_int8(x, w, bias, *, x_zp, w_zp, multiplier, shift, out_zp, act_min, act_max) -> np.ndarray:
    """FULLY_CONNECTED, quantized (`reference/integer_ops/fully_connected.h` FullyConnected and
    FullyConnectedPerChannel; uint8: `reference/fully_connected.h`). Returns (batches, out_c)."""
    acc = fully_connected_accumulate(x, x_zp, w, w_zp)
    if bias is not None:
        acc = wrap_int32(acc + _i64(bias))
    if multiplier is None:
        return acc
    return requantize_accumulator(acc, multiplier, shift, out_zp, act_min, act_max)


def avg_pool2d_int8(x, *, filter, stride, pads, out_hw, act_min, act_max, count_include_pad=False,
                    zero_point=0) -> np.ndarray:
    """AVERAGE_POOL_2D, quantized (`reference/integer_ops/pooling.h` AveragePool): the sum of the raw values
    over the valid part of the window, divided by the count with rounding half away from zero
    ((acc +- count/2) / count in C). With count_include_pad, padded positions count and hold the zero point."""
    x64 = _i64(x)
    one = (1, 1)
    if count_include_pad:
        # positions within the explicitly padded input count and hold the zero point; positions beyond it
        # (a window running past the bottom/right pads) do not count
        counted = _padded_area_mask(x64.shape, out_hw, stride, filter, pads)
        canvas = _padded(x64, out_hw, stride, one, filter, pads, int(zero_point)) * counted
    else:
        canvas = _padded(x64, out_hw, stride, one, filter, pads, 0)
        counted = _padded(np.ones_like(x64[..., :1]), out_hw, stride, one, filter, pads, 0)
    acc = 0
    count = 0
    for _, _, view in _taps(canvas, out_hw, stride, one, filter):
        acc = acc + view
    for _, _, view in _taps(counted, out_hw, stride, one, filter):
        count = count + view
    count = np.broadcast_to(count, acc.shape)
    if np.any(count == 0):
        raise UserError("average pool: a window lies entirely in the padding (TFLite refuses this); check pads")
    half = count // 2
    avg = np.where(acc > 0, c_div(acc + half, count), c_div(acc - half, count))
    return _clamp(avg, act_min, act_max)


def _padded_area_mask(x_shape, out_hw, stride, filter, pads) -> np.ndarray:
    """Canvas mask of the positions inside input + explicit pads (count_include_pad counts exactly these)."""
    _, h, w, _ = x_shape
    area = np.ones((1, h + pads[0] + pads[2], w + pads[1] + pads[3], 1), dtype=np.int64)
    # the area's origin is the top-left pad, so it sits at canvas (0, 0): embed it with no further padding
    return _padded(area, out_hw, stride, (1, 1), filter, (0, 0, 0, 0), 0)


def max_pool2d_int8(x, *, filter, stride, pads, out_hw, act_min, act_max) -> np.ndarray:
    """MAX_POOL_2D, quantized (`reference/integer_ops/pooling.h` MaxPool): max over the valid window,
    clamped to the activation range."""
    x64 = _i64(x)
    lowest = np.iinfo(np.int64).min
    canvas = _padded(x64, out_hw, stride, (1, 1), filter, pads, lowest)
    out = None
    for _, _, view in _taps(canvas, out_hw, stride, (1, 1), filter):
        out = view.copy() if out is None else np.maximum(out, view)
    return _clamp(out, act_min, act_max)


def add_int8(a, b, *, a_zp, b_zp, out_zp, params: AddParams, act_min, act_max) -> np.ndarray:
    """ADD, quantized, with numpy broadcasting (`reference/integer_ops/add.h` AddFunc, as used by Add and
    BroadcastAdd6DSlow; uint8: `reference/add.h`)."""
    shifted1 = (_i64(a) - int(a_zp)) * (1 << params.left_shift)
    shifted2 = (_i64(b) - int(b_zp)) * (1 << params.left_shift)
    scaled1 = multiply_by_quantized_multiplier(shifted1, params.input1_multiplier, params.input1_shift)
    scaled2 = multiply_by_quantized_multiplier(shifted2, params.input2_multiplier, params.input2_shift)
    raw_sum = wrap_int32(scaled1 + scaled2)
    raw_out = multiply_by_quantized_multiplier(raw_sum, params.output_multiplier, params.output_shift) + int(out_zp)
    return _clamp(raw_out, act_min, act_max)


def mul_int8(a, b, *, a_zp, b_zp, out_zp, multiplier, shift, act_min, act_max) -> np.ndarray:
    """MUL, quantized, with numpy broadcasting (`reference/integer_ops/mul.h` MulElementwise /
    BroadcastMul6DSlow)."""
    prod = (_i64(a) - int(a_zp)) * (_i64(b) - int(b_zp))
    out = multiply_by_quantized_multiplier(prod, multiplier, shift) + int(out_zp)
    return _clamp(out, act_min, act_max)


def softmax_int8(x, params: SoftmaxParams, out_dtype: str = "int8") -> np.ndarray:
    """SOFTMAX over the last axis, quantized (`reference/softmax.h` Softmax<InputT, OutputT>, the gemmlowp
    fixed-point method TFLite's reference kernel and TFLite Micro use). Output scale 1/256, zero point qmin.

    Past 256 classes, a row whose exponentials sum to more than 256 makes TFLite's final RoundingDivideByPOT
    shift by 32 or more: undefined behaviour in C (tflite-runtime then returns garbage, TFLite Micro aborts on
    an assert). Here that division is carried out exactly in 64 bits (the intended rounding), and generated
    code must do the same."""
    x64 = _i64(x)
    qmin, qmax = dtype_range(out_dtype)
    max_in_row = x64.max(axis=-1, keepdims=True)
    input_diff = x64 - max_in_row
    valid = input_diff >= params.diff_min
    rescaled = multiply_by_quantized_multiplier_greater_than_one(input_diff, params.input_multiplier,
                                                                 params.input_left_shift)
    exp_q0 = exp_on_negative_values(rescaled, SOFTMAX_SCALED_DIFF_INTEGER_BITS)
    exp_q12 = rounding_divide_by_pot(exp_q0, SOFTMAX_ACCUMULATION_INTEGER_BITS)  # Rescale<12>
    sum_of_exps = wrap_int32(np.where(valid, exp_q12, 0).sum(axis=-1, keepdims=True))
    shifted_scale, num_bits_over_unit = get_reciprocal(sum_of_exps, SOFTMAX_ACCUMULATION_INTEGER_BITS)
    bits = 8 * np.dtype(_NP_DTYPES[out_dtype]).itemsize
    unsat = rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted_scale, exp_q0),
                                   num_bits_over_unit + 31 - bits)
    out = _clamp(unsat + qmin, qmin, qmax)
    return np.where(valid, out, qmin)


def logistic_int8_lut(x, table: np.ndarray, dtype: str = "int8") -> np.ndarray:
    """LOGISTIC through a lookup table (`activations.cc` SigmoidEval with a LUTPopulate table)."""
    return table[_i64(x) - dtype_range(dtype)[0]]


def logistic_int8_fixed_point(x, input_zero_point: int, params: LogisticParams) -> np.ndarray:
    """LOGISTIC, int8, fixed point (`reference/integer_ops/logistic.h` Logistic, used by TFLite Micro)."""
    inp = _i64(x) - int(input_zero_point)
    in_q4 = multiply_by_quantized_multiplier(inp, params.input_multiplier, params.input_left_shift)
    out_q0 = logistic_fixed_point(in_q4, 4)
    out = rounding_divide_by_pot(out_q0, 31 - 8) - 128
    out = _clamp(out, -128, 127)
    out = np.where(inp <= -params.input_range_radius, -128, out)
    return np.where(inp >= params.input_range_radius, 127, out)


def mean_int8(x, *, axes, keep_dims, in_zp, multiplier, shift, out_zp, out_dtype="int8") -> np.ndarray:
    """MEAN, quantized (`reference/reduce.h` QuantizedMeanOrSum with compute_sum=false, which TFLite 2.14's
    reference MEAN uses for every int8/uint8 case): integer sum, then one MultiplyByQuantizedMultiplier whose
    multiplier has 1/num_elements folded in. `multiplier`/`shift` are reduce.cc's (s_in / s_out)."""
    x64 = _i64(x)
    axes = tuple(sorted({a % x64.ndim for a in axes}))
    n = int(np.prod([x64.shape[a] for a in axes], dtype=np.int64))
    total = x64.sum(axis=axes, keepdims=keep_dims)
    m, s = fold_mean_divisor(multiplier, shift, n)
    shifted_sum = wrap_int32(total - int(in_zp) * n)
    out = multiply_by_quantized_multiplier(shifted_sum, m, s) + int(out_zp)
    qmin, qmax = dtype_range(out_dtype)
    return _clamp(out, qmin, qmax)


def requantize(x, *, in_zp, multiplier, shift, out_zp, out_dtype) -> np.ndarray:
    """int8/uint8 -> int8/uint8 (`reference/requantize.h` Requantize, used by QUANTIZE; also how mcutool's
    CONCATENATION rescales inputs whose quantization differs from the output's)."""
    out = multiply_by_quantized_multiplier(_i64(x) - int(in_zp), multiplier, shift) + int(out_zp)
    qmin, qmax = dtype_range(out_dtype)
    return _clamp(out, qmin, qmax)


def quantize_float(x, *, scale, zero_point, out_dtype) -> np.ndarray:
    """float32 -> int8/uint8 (`reference/quantize.h` AffineQuantize): round(x / (float)scale) + zp, clamped;
    the division in float32, rounding half away from zero."""
    q = np.asarray(x, dtype=np.float32) / f32(scale)
    r = tflite_round(q)
    qmin, qmax = dtype_range(out_dtype)
    r = np.clip(r, INT32_MIN, INT32_MAX)  # out-of-range float -> int casts are undefined in C; saturate
    return _clamp(r.astype(np.int64) + int(zero_point), qmin, qmax)


def dequantize(x, *, scale, zero_point) -> np.ndarray:
    """int8/uint8 -> float32 (`reference/dequantize.h`): (float)((double)scale * (q - zp))."""
    return (float(f32(scale)) * (_i64(x) - int(zero_point)).astype(np.float64)).astype(np.float32)


def pad(x, pads, value) -> np.ndarray:
    """PAD (`reference/pad.h`): constant padding; quantized tensors pad with the output zero point."""
    return np.pad(np.asarray(x), [tuple(int(v) for v in p) for p in pads], mode="constant", constant_values=value)


def transpose(x, perm) -> np.ndarray:
    """TRANSPOSE (`reference/transpose.h`)."""
    return np.ascontiguousarray(np.transpose(np.asarray(x), perm))


# ---------------------------------------------------------------- float32 versions (for calibration)


# ---- binary (1-bit) layers (DESIGN.md §8; the packing convention is documented in mcutool/ir.py) ----------------

def pack_bits(bits: np.ndarray) -> np.ndarray:
    """bool (..., C) -> uint32 (..., ceil(C/32)): channel c is bit c % 32 of word c // 32, unused bits 0."""
    bits = np.asarray(bits, dtype=bool)
    c = bits.shape[-1]
    words = (c + 31) // 32
    padded = np.zeros(bits.shape[:-1] + (words * 32,), dtype=np.uint64)
    padded[..., :c] = bits
    weights = (np.uint64(1) << np.arange(32, dtype=np.uint64))
    return (padded.reshape(bits.shape[:-1] + (words, 32)) * weights).sum(axis=-1).astype(np.uint32)


def unpack_bits(words: np.ndarray, channels: int) -> np.ndarray:
    """uint32 (..., W) -> bool (..., channels), the inverse of pack_bits."""
    w = np.asarray(words, dtype=np.uint64)[..., None] >> np.arange(32, dtype=np.uint64)
    return ((w & np.uint64(1)) == 1).reshape(w.shape[:-2] + (-1,))[..., :channels]


def binary_sign_bits(x, zero_point: int) -> np.ndarray:
    """The bits of sign(real x): 1 (= -1) where q < zero point; Sign(0) = +1 (Larq's convention)."""
    return _i64(x) < int(zero_point)


def sign_int8(x, *, in_zp: int, out_scale, out_zp: int, out_dtype: str = "int8") -> np.ndarray:
    """Sign on int8 values (the int8 form of a binary network, `--binarize off`): +1 or -1 quantized to the
    output's scale and zero point (round half away from zero, clamped), chosen by binary_sign_bits."""
    lo, hi = dtype_range(out_dtype)
    pos, neg = (int(np.clip(tflite_round(v / float(out_scale)) + int(out_zp), lo, hi)) for v in (1.0, -1.0))
    return np.where(binary_sign_bits(x, in_zp), neg, pos)


def binary_conv2d_dot(x_bits, w_bits, stride, dilation, pads, out_hw) -> np.ndarray:
    """dot[n, oy, ox, oc] = sum over the valid taps and input channels of x * w with x, w in {-1, +1}
    (bit 1 = -1). Padded positions contribute nothing -- what a zero-padded float conv computes -- so the
    count of valid taps enters as sum(C - 2 * popcount(x XOR w)) in the kernels."""
    xpm = 1 - 2 * np.asarray(x_bits, dtype=np.int64)
    wpm = 1 - 2 * np.asarray(w_bits, dtype=np.int64)
    return conv2d_accumulate(xpm, 0, wpm, 0, stride, dilation, pads, out_hw)


def threshold_bits(acc, thresholds, flip) -> np.ndarray:
    """BatchNorm + Sign folded (DESIGN.md §8): bit = (acc < threshold[c]) XOR flip[c]."""
    return (_i64(acc) < _i64(thresholds)) ^ np.asarray(flip, dtype=bool)


def sign_thresholds(scale, offset) -> tuple[np.ndarray, np.ndarray]:
    """Per channel, the (threshold, flip) that make threshold_bits(dot, ...) the bits of sign(scale * dot +
    offset) for every integer dot, Sign(0) = +1 (bit 0).

    scale > 0: y >= 0 <=> dot >= -offset/scale, so bit 1 <=> dot < ceil(-offset/scale).
    scale < 0 (a negative BatchNorm gamma): y >= 0 <=> dot <= floor(-offset/scale), so bit 1 <=>
    dot > floor(..) <=> not (dot < floor(..) + 1): threshold floor(..) + 1, flipped.
    scale = 0: the sign of offset for every dot (threshold at the int32 extreme)."""
    scale = np.asarray(scale, dtype=np.float64)
    offset = np.asarray(offset, dtype=np.float64)
    thr = np.zeros(scale.shape, dtype=np.int64)
    flip = scale < 0
    safe = np.where(scale == 0, 1.0, scale)
    t = -offset / safe
    thr = np.where(scale > 0, np.ceil(t), np.floor(t) + 1)
    thr = np.where(scale == 0, np.where(offset < 0, INT32_MAX, INT32_MIN), thr)
    return np.clip(thr, INT32_MIN, INT32_MAX).astype(np.int64), flip


def binary_max_pool2d_bits(x_bits, *, filter, stride, pads, out_hw) -> np.ndarray:
    """Max of {-1, +1} values = -1 only if every one is -1: AND of the bits over the valid window positions."""
    canvas = _padded(np.asarray(x_bits, dtype=bool), out_hw, stride, (1, 1), filter, pads, True)
    out = None
    for _, _, view in _taps(canvas, out_hw, stride, (1, 1), filter):
        out = view.copy() if out is None else out & view
    return out


def _float_activation(y, activation: str):
    if activation == "none":
        return y
    if activation == "relu":
        return np.maximum(y, np.float32(0))
    if activation == "relu6":
        return np.clip(y, np.float32(0), np.float32(6))
    if activation == "relu_n1_to_1":
        return np.clip(y, np.float32(-1), np.float32(1))
    raise UserError(f"unknown fused activation {activation!r}")


def conv2d_float(x, w, bias, *, stride, dilation, pads, out_hw, activation="none") -> np.ndarray:
    w = np.asarray(w, dtype=np.float32)
    cout, kh, kw, _ = w.shape
    canvas = _padded(np.asarray(x, dtype=np.float32), out_hw, stride, dilation, (kh, kw), pads, 0.0)
    cols = _im2col(canvas, out_hw, stride, dilation, (kh, kw))
    n, oh, ow = cols.shape[:3]
    y = (cols.reshape(n * oh * ow, -1) @ w.reshape(cout, -1).T).reshape(n, oh, ow, cout)
    if bias is not None:
        y = y + np.asarray(bias, dtype=np.float32)
    return _float_activation(y.astype(np.float32), activation)


def depthwise_conv2d_float(x, w, bias, *, stride, dilation, pads, out_hw, depth_multiplier,
                           activation="none") -> np.ndarray:
    w = np.asarray(w, dtype=np.float32)
    _, kh, kw, cout = w.shape
    x = np.asarray(x, dtype=np.float32)
    if depth_multiplier != 1:
        x = np.repeat(x, depth_multiplier, axis=-1)
    canvas = _padded(x, out_hw, stride, dilation, (kh, kw), pads, 0.0)
    y = np.zeros((x.shape[0], out_hw[0], out_hw[1], cout), dtype=np.float32)
    for ky, kx, view in _taps(canvas, out_hw, stride, dilation, (kh, kw)):
        y += view * w[0, ky, kx]
    if bias is not None:
        y = y + np.asarray(bias, dtype=np.float32)
    return _float_activation(y, activation)


def fully_connected_float(x, w, bias, *, activation="none") -> np.ndarray:
    w = np.asarray(w, dtype=np.float32)
    y = np.asarray(x, dtype=np.float32).reshape(-1, w.shape[1]) @ w.T
    if bias is not None:
        y = y + np.asarray(bias, dtype=np.float32)
    return _float_activation(y.astype(np.float32), activation)


def avg_pool2d_float(x, *, filter, stride, pads, out_hw, activation="none", count_include_pad=False):
    x = np.asarray(x, dtype=np.float32)
    canvas = _padded(x, out_hw, stride, (1, 1), filter, pads, 0.0)
    if count_include_pad:
        counted = _padded_area_mask(x.shape, out_hw, stride, filter, pads)
    else:
        counted = _padded(np.ones_like(x[..., :1], dtype=np.int64), out_hw, stride, (1, 1), filter, pads, 0)
    acc = sum(v for _, _, v in _taps(canvas, out_hw, stride, (1, 1), filter))
    count = sum(v for _, _, v in _taps(counted, out_hw, stride, (1, 1), filter))
    return _float_activation((acc / count).astype(np.float32), activation)


def max_pool2d_float(x, *, filter, stride, pads, out_hw, activation="none"):
    x = np.asarray(x, dtype=np.float32)
    canvas = _padded(x, out_hw, stride, (1, 1), filter, pads, -np.inf)
    out = None
    for _, _, view in _taps(canvas, out_hw, stride, (1, 1), filter):
        out = view.copy() if out is None else np.maximum(out, view)
    return _float_activation(out, activation)


def softmax_float(x, beta: float = 1.0) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    e = np.exp((x - x.max(axis=-1, keepdims=True)) * np.float32(beta))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def logistic_float(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return (np.float32(1) / (np.float32(1) + np.exp(-x))).astype(np.float32)


# =====================================================================================================
# 4. Graph execution
# =====================================================================================================

def _where(op: Op) -> str:
    return f"op {op.name!r} ({op.kind})"


def _unsupported(op: Op, detail: str) -> UserError:
    return UserError(f"{_where(op)}: {detail}. The numpy reference (mcutool/reference.py) supports int8/uint8 "
                     "tensors with TFLite quantization and all-float32 ops; quantize the model, or change this "
                     "layer to a supported form.")


def _qparams(op: Op, t: Tensor, role: str) -> tuple[np.float32, int]:
    """(scale, zero_point) of a per-tensor quantized tensor."""
    if t.quant is None:
        raise _unsupported(op, f"{role} tensor {t.name!r} ({t.dtype}) has no quantization parameters")
    if t.quant.per_channel:
        raise _unsupported(op, f"{role} tensor {t.name!r} is quantized per channel, which this op does not allow")
    return f32(t.quant.scale[0]), int(t.quant.zero_point[0])


def _same_quant(a: Tensor, b: Tensor) -> bool:
    if a.quant is None or b.quant is None:
        return a.quant is None and b.quant is None
    return (a.quant.scale.size == b.quant.scale.size
            and np.array_equal(a.quant.scale.astype(np.float32), b.quant.scale.astype(np.float32))
            and np.array_equal(a.quant.zero_point, b.quant.zero_point))


def _kind_of(graph: Graph, op: Op) -> str:
    """'float' when the op's data tensors are all float32, 'quant' when they are int8/uint8, else unsupported."""
    data = [graph.tensor(n) for n in op.inputs[:1] + op.outputs if n]
    if op.kind in ("add", "mul", "concat"):
        data = [graph.tensor(n) for n in op.inputs + op.outputs if n]
    dtypes = {t.dtype for t in data}
    if dtypes == {"float32"}:
        return "float"
    if dtypes <= set(_QUANTIZED) and len(dtypes) == 1:
        return "quant"
    raise _unsupported(op, f"tensor dtypes {sorted(dtypes)} are not a supported combination")


def _out_hw(out: Tensor) -> tuple[int, int]:
    return out.shape[1], out.shape[2]


def _check_window(op: Op, x: Tensor, out: Tensor, kernel, stride, dilation, pads) -> None:
    """The output size the explicit pads imply must be the output tensor's."""
    for i, (size, k, s, d, before, after) in enumerate(zip(x.shape[1:3], kernel, stride, dilation,
                                                           pads[:2], pads[2:])):
        span = (k - 1) * d + 1
        expected = (size + before + after - span) // s + 1
        if expected != out.shape[1 + i]:
            raise UserError(f"{_where(op)}: input {x.shape}, kernel {tuple(kernel)}, stride {tuple(stride)}, "
                            f"dilation {tuple(dilation)} and pads {tuple(pads)} give an output of "
                            f"{expected} along axis {1 + i}, but the output tensor {out.name!r} has shape "
                            f"{out.shape}")


def _weight_zero_point(op: Op, w: Tensor, channel_axis: int):
    """The weights' zero point: an int, or a vector along the output channels (whose axis is checked)."""
    q = w.quant
    if q.per_channel or q.zero_point.size > 1:
        axis = channel_axis if q.axis is None else q.axis % len(w.shape)
        if axis != channel_axis or q.scale.size not in (1, w.shape[channel_axis]):
            raise _unsupported(op, f"weights {w.name!r} are quantized per channel along axis {q.axis} with "
                                   f"{q.scale.size} scales; {op.kind} needs one scale per output channel "
                                   f"(axis {channel_axis}, {w.shape[channel_axis]} channels)")
    zp = q.zero_point
    return int(zp[0]) if zp.size == 1 else _i64(zp)


def _conv_like(graph: Graph, op: Op, args, depthwise: bool):
    x_t, w_t = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    out_t = graph.tensor(op.outputs[0])
    a = op.attrs
    kernel = w_t.shape[1:3]
    _check_window(op, x_t, out_t, kernel, a.stride, a.dilation, a.pads)
    x, w = args[0], args[1]
    bias = args[2] if len(args) > 2 else None
    geometry = dict(stride=tuple(a.stride), dilation=tuple(a.dilation), pads=tuple(a.pads), out_hw=_out_hw(out_t))
    if depthwise:
        dm = a.depth_multiplier
        if dm * x_t.shape[3] != w_t.shape[3]:
            raise UserError(f"{_where(op)}: {x_t.shape[3]} input channels x depth multiplier {dm} != "
                            f"{w_t.shape[3]} weight channels")
        geometry["depth_multiplier"] = dm
    if x_t.dtype == "float32" or out_t.dtype == "float32":
        if not (x_t.dtype == w_t.dtype == out_t.dtype == "float32"):
            raise _unsupported(op, f"input {x_t.dtype}, weights {w_t.dtype}, output {out_t.dtype} (hybrid "
                                   "float/integer layers are not supported)")
        fn = depthwise_conv2d_float if depthwise else conv2d_float
        return [fn(x, w, bias, activation=a.activation, **geometry)]
    return [_quantized_conv_like(graph, op, x_t, w_t, out_t, x, w, bias, geometry, depthwise)]


def _quantized_conv_like(graph, op, x_t, w_t, out_t, x, w, bias, geometry, depthwise):
    if x_t.dtype not in _QUANTIZED or w_t.dtype not in _QUANTIZED:
        raise _unsupported(op, f"input {x_t.dtype} with weights {w_t.dtype}")
    _, x_zp = _qparams(op, x_t, "input")
    if w_t.quant is None:
        raise _unsupported(op, f"weights {w_t.name!r} have no quantization parameters")
    w_zp = _weight_zero_point(op, w_t, 3 if depthwise else 0)
    if out_t.dtype == "int32" and out_t.quant is None:
        mult = shift = None
        out_zp, lo, hi = 0, INT32_MIN, INT32_MAX
        if op.attrs.activation != "none":
            raise _unsupported(op, "a raw int32 accumulator output cannot carry a fused activation")
    elif out_t.dtype in _QUANTIZED:
        o_s, out_zp = _qparams(op, out_t, "output")
        lo, hi = activation_range(op.attrs.activation, o_s, out_zp, out_t.dtype)
        mult, shift = weighted_op_multipliers(op.kind, x_t, w_t, out_t)
    else:
        raise _unsupported(op, f"output dtype {out_t.dtype} (expected int8/uint8, or int32 without quantization)")
    common = dict(x_zp=x_zp, w_zp=w_zp, multiplier=mult, shift=shift, out_zp=out_zp, act_min=lo, act_max=hi)
    if depthwise:
        return depthwise_conv2d_int8(x, w, bias, **geometry, **common)
    return conv2d_int8(x, w, bias, **geometry, **common)


def _exec_conv2d(graph, op, args):
    return _conv_like(graph, op, args, depthwise=False)


def _exec_depthwise_conv2d(graph, op, args):
    return _conv_like(graph, op, args, depthwise=True)


def _exec_fully_connected(graph, op, args):
    x_t, w_t = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    out_t = graph.tensor(op.outputs[0])
    x, w = args[0], args[1]
    bias = args[2] if len(args) > 2 else None
    if x_t.size % w_t.shape[1]:
        raise UserError(f"{_where(op)}: input of {x_t.size} elements cannot be flattened to rows of "
                        f"{w_t.shape[1]} (the weights' input size)")
    if x_t.dtype == "float32" or out_t.dtype == "float32":
        if not (x_t.dtype == w_t.dtype == out_t.dtype == "float32"):
            raise _unsupported(op, f"input {x_t.dtype}, weights {w_t.dtype}, output {out_t.dtype} (hybrid "
                                   "float/integer layers are not supported)")
        return [fully_connected_float(x, w, bias, activation=op.attrs.activation)]
    if x_t.dtype not in _QUANTIZED or w_t.dtype not in _QUANTIZED or w_t.quant is None:
        raise _unsupported(op, f"input {x_t.dtype} with weights {w_t.dtype}")
    _, x_zp = _qparams(op, x_t, "input")
    w_zp = _weight_zero_point(op, w_t, 0)
    if out_t.dtype == "int32" and out_t.quant is None:
        if op.attrs.activation != "none":
            raise _unsupported(op, "a raw int32 accumulator output cannot carry a fused activation")
        return [fully_connected_int8(x, w, bias, x_zp=x_zp, w_zp=w_zp, multiplier=None, shift=None, out_zp=0,
                                     act_min=INT32_MIN, act_max=INT32_MAX)]
    if out_t.dtype not in _QUANTIZED:
        raise _unsupported(op, f"output dtype {out_t.dtype}")
    o_s, out_zp = _qparams(op, out_t, "output")
    lo, hi = activation_range(op.attrs.activation, o_s, out_zp, out_t.dtype)
    mult, shift = weighted_op_multipliers(op.kind, x_t, w_t, out_t)
    return [fully_connected_int8(x, w, bias, x_zp=x_zp, w_zp=w_zp, multiplier=mult, shift=shift,
                                 out_zp=out_zp, act_min=lo, act_max=hi)]


def _pool(graph, op, args, is_max: bool):
    x_t, out_t = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    a = op.attrs
    _check_window(op, x_t, out_t, a.filter, a.stride, (1, 1), a.pads)
    geometry = dict(filter=tuple(a.filter), stride=tuple(a.stride), pads=tuple(a.pads), out_hw=_out_hw(out_t))
    if _kind_of(graph, op) == "float":
        if is_max:
            return [max_pool2d_float(args[0], activation=a.activation, **geometry)]
        return [avg_pool2d_float(args[0], activation=a.activation, count_include_pad=a.count_include_pad,
                                 **geometry)]
    if not _same_quant(x_t, out_t):
        raise _unsupported(op, "input and output quantization differ (TFLite's pools require them equal); "
                               "insert a quantize op after the pool")
    s, zp = _qparams(op, out_t, "output")
    lo, hi = activation_range(a.activation, s, zp, out_t.dtype)
    if is_max:
        return [max_pool2d_int8(args[0], act_min=lo, act_max=hi, **geometry)]
    return [avg_pool2d_int8(args[0], act_min=lo, act_max=hi, count_include_pad=a.count_include_pad,
                            zero_point=zp, **geometry)]


def _exec_avg_pool2d(graph, op, args):
    return _pool(graph, op, args, is_max=False)


def _exec_max_pool2d(graph, op, args):
    return _pool(graph, op, args, is_max=True)


def _binary(graph, op, args, is_add: bool):
    a_t, b_t = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    out_t = graph.tensor(op.outputs[0])
    if _kind_of(graph, op) == "float":
        a, b = np.asarray(args[0], np.float32), np.asarray(args[1], np.float32)
        return [_float_activation((a + b) if is_add else (a * b), op.attrs.activation)]
    s1, z1 = _qparams(op, a_t, "first input")
    s2, z2 = _qparams(op, b_t, "second input")
    so, zo = _qparams(op, out_t, "output")
    lo, hi = activation_range(op.attrs.activation, so, zo, out_t.dtype)
    if is_add:
        return [add_int8(args[0], args[1], a_zp=z1, b_zp=z2, out_zp=zo, params=add_params(s1, s2, so),
                         act_min=lo, act_max=hi)]
    m, sh = mul_output_multiplier(s1, s2, so)
    return [mul_int8(args[0], args[1], a_zp=z1, b_zp=z2, out_zp=zo, multiplier=m, shift=sh, act_min=lo, act_max=hi)]


def _exec_add(graph, op, args):
    return _binary(graph, op, args, is_add=True)


def _exec_mul(graph, op, args):
    return _binary(graph, op, args, is_add=False)


def _require_same_quant(graph, op):
    x_t, out_t = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if x_t.dtype != out_t.dtype:
        raise _unsupported(op, f"input dtype {x_t.dtype} differs from output dtype {out_t.dtype}")
    if x_t.dtype in _QUANTIZED and not _same_quant(x_t, out_t):
        raise _unsupported(op, "input and output quantization differ (this op moves values without rescaling "
                               "them, as TFLite's does); insert a quantize op")


def _exec_reshape(graph, op, args):
    _require_same_quant(graph, op)
    return [np.asarray(args[0]).reshape(graph.tensor(op.outputs[0]).shape)]


def _exec_transpose(graph, op, args):
    _require_same_quant(graph, op)
    return [transpose(args[0], tuple(op.attrs.perm))]


def _exec_pad(graph, op, args):
    _require_same_quant(graph, op)
    out_t = graph.tensor(op.outputs[0])
    value = 0 if out_t.dtype == "float32" else _qparams(op, out_t, "output")[1]
    pads = op.attrs.pads
    if len(pads) != len(graph.tensor(op.inputs[0]).shape):
        raise UserError(f"{_where(op)}: {len(pads)} (before, after) pairs for a rank-"
                        f"{len(graph.tensor(op.inputs[0]).shape)} input")
    return [pad(args[0], pads, value)]


def _exec_softmax(graph, op, args):
    x_t, out_t = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if _kind_of(graph, op) == "float":
        return [softmax_float(args[0], op.attrs.beta)]
    s, _ = _qparams(op, x_t, "input")
    so, zo = _qparams(op, out_t, "output")
    qmin = dtype_range(out_t.dtype)[0]
    if zo != qmin or abs(float(so) - 1.0 / 256) > 0.001 / 256:
        raise _unsupported(op, f"a quantized softmax output must have scale 1/256 and zero point {qmin} "
                               f"(TFLite's requirement); it has scale {float(so)} and zero point {zo}")
    return [softmax_int8(args[0], softmax_params(op.attrs.beta, s), out_t.dtype)]


def _exec_logistic(graph, op, args):
    x_t, out_t = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if _kind_of(graph, op) == "float":
        return [logistic_float(args[0])]
    s, z = _qparams(op, x_t, "input")
    so, zo = _qparams(op, out_t, "output")
    qmin = dtype_range(out_t.dtype)[0]
    if zo != qmin or float(so) != 1.0 / 256:
        raise _unsupported(op, f"a quantized logistic output must have scale 1/256 and zero point {qmin} "
                               f"(TFLite's requirement); it has scale {float(so)} and zero point {zo}")
    return [logistic_int8_lut(args[0], logistic_lut(s, z, so, zo, x_t.dtype), x_t.dtype)]


def _exec_mean(graph, op, args):
    x_t, out_t = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    axes = tuple(op.attrs.axes)
    if _kind_of(graph, op) == "float":
        return [np.mean(np.asarray(args[0], np.float32), axis=axes, keepdims=op.attrs.keep_dims).astype(np.float32)]
    s, z = _qparams(op, x_t, "input")
    so, zo = _qparams(op, out_t, "output")
    m, sh = requantize_multiplier(s, so)
    return [mean_int8(args[0], axes=axes, keep_dims=op.attrs.keep_dims, in_zp=z, multiplier=m, shift=sh,
                      out_zp=zo, out_dtype=out_t.dtype)]


def _exec_concat(graph, op, args):
    out_t = graph.tensor(op.outputs[0])
    axis = op.attrs.axis
    if _kind_of(graph, op) == "float":
        return [_float_activation(np.concatenate([np.asarray(a, np.float32) for a in args], axis=axis),
                                  op.attrs.activation)]
    so, zo = _qparams(op, out_t, "output")
    lo, hi = activation_range(op.attrs.activation, so, zo, out_t.dtype)
    parts = []
    for name, value in zip(op.inputs, args):
        t = graph.tensor(name)
        if _same_quant(t, out_t):
            parts.append(_i64(value))
        else:
            s, z = _qparams(op, t, "input")
            m, sh = requantize_multiplier(s, so)
            parts.append(requantize(value, in_zp=z, multiplier=m, shift=sh, out_zp=zo, out_dtype=out_t.dtype))
    return [_clamp(np.concatenate(parts, axis=axis), lo, hi)]


def _exec_quantize(graph, op, args):
    x_t, out_t = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if out_t.dtype not in _QUANTIZED:
        raise _unsupported(op, f"quantize to {out_t.dtype}")
    so, zo = _qparams(op, out_t, "output")
    if x_t.dtype == "float32":
        return [quantize_float(args[0], scale=so, zero_point=zo, out_dtype=out_t.dtype)]
    if x_t.dtype in _QUANTIZED:
        s, z = _qparams(op, x_t, "input")
        m, sh = requantize_multiplier(s, so)
        return [requantize(args[0], in_zp=z, multiplier=m, shift=sh, out_zp=zo, out_dtype=out_t.dtype)]
    raise _unsupported(op, f"quantize from {x_t.dtype}")


def _exec_dequantize(graph, op, args):
    x_t, out_t = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if x_t.dtype not in _QUANTIZED or out_t.dtype != "float32":
        raise _unsupported(op, f"dequantize {x_t.dtype} -> {out_t.dtype}")
    s, z = _qparams(op, x_t, "input")
    return [dequantize(args[0], scale=s, zero_point=z)]



def _exec_sign(graph, op, args):
    """Sign. Float: ONNX's Sign (sign(0) = 0), what the imported model means. int8 (the activation of a binary
    network, DESIGN.md §8): +-1 with Sign(0) = +1 (Larq's convention), as the binary layers compute it."""
    x_t, out_t = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if _kind_of(graph, op) == "float":
        return [np.sign(np.asarray(args[0], np.float32)).astype(np.float32)]
    _, z = _qparams(op, x_t, "input")
    so, zo = _qparams(op, out_t, "output")
    return [sign_int8(args[0], in_zp=z, out_scale=so, out_zp=zo, out_dtype=out_t.dtype)]


def _exec_binary_pack(graph, op, args):
    x_t = graph.tensor(op.inputs[0])
    _, z = _qparams(op, x_t, "input")
    return [pack_bits(binary_sign_bits(args[0], z))]


def _binary_geometry(graph, op):
    """Conv geometry; a 2-D output (a binary fully connected layer) is a 1x1 image."""
    out_t = graph.tensor(op.outputs[0])
    a = op.attrs
    out_hw = _out_hw(out_t) if len(out_t.shape) == 4 else (1, 1)
    return dict(stride=a.stride, dilation=a.dilation, pads=a.pads, out_hw=out_hw)


def _image(x: np.ndarray) -> np.ndarray:
    """A 2-D (N, C) value as an (N, 1, 1, C) image."""
    x = np.asarray(x)
    return x.reshape(x.shape[0], 1, 1, x.shape[-1]) if x.ndim == 2 else x


def _exec_binary_pack_conv2d(graph, op, args):
    x_t = graph.tensor(op.inputs[0])
    _, zx = _qparams(op, x_t, "input")
    x, w, bias, thr = args
    acc = conv2d_accumulate(x, zx, w, 0, **_binary_geometry(graph, op))
    acc = wrap_int32(acc + _i64(bias))
    return [pack_bits(threshold_bits(acc, thr, np.zeros(thr.shape, bool)))]


def _exec_binary_conv2d(graph, op, args):
    a = op.attrs
    out_t, w_t = graph.tensor(op.outputs[0]), graph.tensor(op.inputs[1])
    x_bits = unpack_bits(_image(args[0]), a.in_channels)
    w_bits = unpack_bits(args[1], a.in_channels)
    dot = binary_conv2d_dot(x_bits, w_bits, **_binary_geometry(graph, op))
    if out_t.dtype == "uint32":
        flip = unpack_bits(args[3], a.out_channels)
        return [pack_bits(threshold_bits(dot, args[2], flip))]
    so, zo = _qparams(op, out_t, "output")
    mult, shift = conv_output_multipliers(1.0, w_t.quant.scale, so)
    lo, hi = activation_range(a.activation, so, zo, out_t.dtype)
    acc = wrap_int32(dot + _i64(args[2]))
    return [requantize_accumulator(acc, mult, shift, zo, lo, hi)]


def _exec_binary_max_pool2d(graph, op, args):
    a = op.attrs
    x_bits = unpack_bits(args[0], a.channels)
    out = binary_max_pool2d_bits(x_bits, filter=a.filter, stride=a.stride, pads=a.pads,
                                 out_hw=_out_hw(graph.tensor(op.outputs[0])))
    return [pack_bits(out)]


def _exec_lut(graph, op, args):  # a fused elementwise op (schedule/fuse.py): the table holds its values
    return [np.asarray(op.attrs.table, np.int8)[np.asarray(args[0]).astype(np.int16) + 128]]


_EXEC = {
    "conv2d": _exec_conv2d,
    "depthwise_conv2d": _exec_depthwise_conv2d,
    "fully_connected": _exec_fully_connected,
    "avg_pool2d": _exec_avg_pool2d,
    "max_pool2d": _exec_max_pool2d,
    "add": _exec_add,
    "mul": _exec_mul,
    "reshape": _exec_reshape,
    "softmax": _exec_softmax,
    "logistic": _exec_logistic,
    "lut": _exec_lut,
    "pad": _exec_pad,
    "transpose": _exec_transpose,
    "mean": _exec_mean,
    "concat": _exec_concat,
    "quantize": _exec_quantize,
    "dequantize": _exec_dequantize,
    "sign": _exec_sign,
    "binary_pack": _exec_binary_pack,
    "binary_pack_conv2d": _exec_binary_pack_conv2d,
    "binary_conv2d": _exec_binary_conv2d,
    "binary_max_pool2d": _exec_binary_max_pool2d,
}


def _check_input(t: Tensor, value) -> np.ndarray:
    arr = np.asarray(value)
    want = np.dtype(_NP_DTYPES[t.dtype])
    if arr.dtype != want:
        raise UserError(f"graph input {t.name!r} must be {t.dtype} of shape {t.shape}; got {arr.dtype}")
    if tuple(arr.shape) != t.shape:
        raise UserError(f"graph input {t.name!r} must have shape {t.shape}; got {tuple(arr.shape)}")
    return arr


def run_op(graph: Graph, op: Op, args: list) -> list[np.ndarray]:
    """Execute one op on numpy values (in the order of op.inputs; None for an absent optional input);
    returns its outputs with the output tensors' dtypes and shapes."""
    fn = _EXEC.get(op.kind)
    if fn is None:
        raise _unsupported(op, "this op kind is not implemented")
    outs = fn(graph, op, list(args))
    result = []
    for name, value in zip(op.outputs, outs):
        t = graph.tensor(name)
        value = np.asarray(value)
        if value.size != t.size:
            raise UserError(f"{_where(op)}: computed {value.size} values for output {name!r} of shape {t.shape}")
        result.append(_cast(value.reshape(t.shape), t.dtype))
    return result


def run(graph: Graph, inputs: dict[str, np.ndarray], keep: bool = False) -> dict[str, np.ndarray]:
    """Execute graph.ops in order on numpy arrays.

    `inputs` maps every graph input name to an array of exactly the declared dtype and shape. Returns the
    graph outputs by name, or, with keep=True, the value of every tensor (constants included)."""
    values: dict[str, np.ndarray] = {}
    for name, t in graph.tensors.items():
        if t.is_const:
            values[name] = np.asarray(t.data)
    missing = [n for n in graph.inputs if n not in inputs]
    if missing:
        raise UserError(f"graph {graph.name!r}: no value given for input(s) {missing}")
    for name in graph.inputs:
        values[name] = _check_input(graph.tensor(name), inputs[name])
    for op in graph.ops:
        args = []
        for n in op.inputs:
            if not n:
                args.append(None)
            elif n not in values:
                raise UserError(f"{_where(op)} reads tensor {n!r} before any op produces it")
            else:
                args.append(values[n])
        for name, value in zip(op.outputs, run_op(graph, op, args)):
            values[name] = value
    if keep:
        return values
    return {n: values[n] for n in graph.outputs}
