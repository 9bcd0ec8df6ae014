"""SOFTMAX: `reference/softmax.h` (int8 -> int8, gemmlowp fixed point) with SoftmaxPrepare<kReference>'s
parameters; int16 -> int16 as TFLite Micro runs it (SoftmaxInt16 with the exp and 1/(1+x) tables of
`micro/kernels/softmax_common.cc`); float32 for calibration. Kernels: runtime/mcu_softmax_s8.c, mcu_softmax_s16.c.
"""
from __future__ import annotations

import functools

import numpy as np

from mcutool.errors import UserError
from mcutool.ir import Graph, Op, SoftmaxAttrs
from mcutool.ops import register
from mcutool.ops.common import kind_of, qparams, unsupported
from mcutool.ops.fixedpoint import (NP_DTYPES, calculate_input_radius, clamp, count_leading_zeros_u32, dtype_range,
                                    exp_on_negative_values, expf, f32, gen_lut_int16, get_reciprocal, i64,
                                    lut_lookup_int16, multiply_by_quantized_multiplier,
                                    multiply_by_quantized_multiplier_greater_than_one, quantize_multiplier,
                                    quantize_multiplier_greater_than_one, rounding_divide_by_pot,
                                    saturating_rounding_doubling_high_mul, wrap_int32)
from mcutool.ops.kernel import CRef, CTYPES, INT8_MIN, KernelParams, int8_qparams, int_qparams, kernel_error
from dataclasses import dataclass


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
    if not real > 1.0:
        raise UserError(f"a SOFTMAX input scale of {float(f32(input_scale)):.3g} (beta {beta}) is below 2^-26: "
                        "TFLite's Prepare (QuantizeMultiplierGreaterThanOne) aborts on it, as TFLite Micro does. The "
                        "logits before the softmax hardly vary (an untrained or collapsed network?); calibrate or "
                        "train the model so that they spread.")
    multiplier, left_shift = quantize_multiplier_greater_than_one(real)
    diff_min = -calculate_input_radius(bits, left_shift)
    return SoftmaxParams(multiplier, left_shift, diff_min)


def softmax_int8(x, params: SoftmaxParams, out_dtype: str = "int8") -> np.ndarray:
    """SOFTMAX over the last axis, quantized (`reference/softmax.h` Softmax<InputT, OutputT>, the gemmlowp
    fixed-point method TFLite's reference kernel and TFLite Micro use). Output scale 1/256, zero point qmin.

    Past 256 classes, a row whose exponentials sum to more than 256 makes TFLite's final RoundingDivideByPOT
    shift by 32 or more: undefined behaviour in C (tflite-runtime then returns garbage, TFLite Micro aborts on
    an assert). Here that division is carried out exactly in 64 bits (the intended rounding), and generated
    code must do the same."""
    x64 = i64(x)
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
    bits = 8 * np.dtype(NP_DTYPES[out_dtype]).itemsize
    unsat = rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted_scale, exp_q0),
                                   num_bits_over_unit + 31 - bits)
    out = clamp(unsat + qmin, qmin, qmax)
    return np.where(valid, out, qmin)


@functools.lru_cache(maxsize=None)
def softmax_exp_lut() -> np.ndarray:
    """SOFTMAX int16's exp table: exp over [-10, 0] (softmax_common.cc SoftmaxPrepare)."""
    return _frozen(gen_lut_int16(expf, -10.0, 0.0))


@functools.lru_cache(maxsize=None)
def softmax_reciprocal_lut() -> np.ndarray:
    """SOFTMAX int16's 1 / (1 + x) table over [0, 1], in float32 (softmax_common.cc SoftmaxPrepare)."""
    return _frozen(gen_lut_int16(lambda x: np.float32(np.float32(1) / np.float32(np.float32(1) + x)), 0.0, 1.0))


def _frozen(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def softmax_int16_multiplier(beta: float, input_scale) -> tuple[int, int]:
    """CalculateSoftmaxParams for int16: QuantizeMultiplier((double)s_in * (double)beta / (10.0 / 65535.0)), which
    maps an input difference of [-65535, 0] steps to [-10, 0]."""
    return quantize_multiplier(float(f32(input_scale)) * float(f32(beta)) / (10.0 / 65535.0))


def softmax_int16(x, multiplier: int, shift: int, exp_lut, reciprocal_lut) -> np.ndarray:
    """SOFTMAX int16 -> int16 over the last axis (`reference/softmax.h` SoftmaxInt16): exp of the scaled
    difference to the row maximum from exp_lut (Q0.15), their sum's reciprocal from reciprocal_lut after
    normalizing it by its leading zeros, the product rounded back to Q0.15 and clamped to [0, 32767]."""
    x64 = i64(x)
    diff = x64 - x64.max(axis=-1, keepdims=True)
    scaled = multiply_by_quantized_multiplier(diff, multiplier, shift)
    exps = lut_lookup_int16(clamp(scaled + 32767, -32768, 32767), exp_lut)
    sums = exps.sum(axis=-1, keepdims=True)  # < 2^31 for any row TFLite Micro accepts
    headroom_plus_one = count_leading_zeros_u32(sums)
    shifted = ((sums << (headroom_plus_one - 1)) + (1 << 13)) >> 14
    reciprocal = lut_lookup_int16(clamp(shifted - ((1 << 15) + (1 << 16)), -32768, 32767), reciprocal_lut)
    right_shift = 31 - headroom_plus_one
    out = (exps * reciprocal + (np.int64(1) << (right_shift - 1))) >> right_shift
    return clamp(out, 0, 32767)


def softmax_float(x, beta: float = 1.0) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    e = np.exp((x - x.max(axis=-1, keepdims=True)) * np.float32(beta))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def _reference_softmax(graph, op, args):
    x_t, out_t = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if x_t.dtype == "int16":
        return [softmax_int16(args[0], *_int16_prepare(op, x_t, out_t, unsupported), softmax_exp_lut(),
                              softmax_reciprocal_lut())]
    if kind_of(graph, op) == "float":
        return [softmax_float(args[0], op.attrs.beta)]
    s, _ = qparams(op, x_t, "input")
    so, zo = qparams(op, out_t, "output")
    qmin = dtype_range(out_t.dtype)[0]
    if zo != qmin or abs(float(so) - 1.0 / 256) > 0.001 / 256:
        raise unsupported(op, f"a quantized softmax output must have scale 1/256 and zero point {qmin} "
                          f"(TFLite's requirement); it has scale {float(so)} and zero point {zo}")
    return [softmax_int8(args[0], softmax_params(op.attrs.beta, s), out_t.dtype)]


def _int16_prepare(op: Op, x_t, out_t, error) -> tuple[int, int]:
    """SoftmaxPrepare's checks and input multiplier for int16 -> int16 (zero points 0, output scale 1/32768)."""
    if out_t.dtype != "int16":
        raise error(op, f"an int16 input with a {out_t.dtype} output (TFLite Micro's int16 softmax writes int16)")
    s, _ = int_qparams(op, x_t, "input", ("int16",))
    so, _ = int_qparams(op, out_t, "output", ("int16",))
    if abs(float(so) - 1.0 / 32768) > 0.001 / 32768:
        raise error(op, f"an int16 softmax output needs scale 1/32768 and zero point 0 (TFLite Micro's requirement); "
                    f"it has scale {float(so)}")
    return softmax_int16_multiplier(op.attrs.beta, s)


# ---- the runtime/ kernel's parameters (TFLite's Prepare, at compile time)

def kernel_params(graph: Graph, op: Op) -> KernelParams:
    """SOFTMAX: reference_ops::Softmax (int8 -> int8) with SoftmaxPrepare<kReference>'s parameters; int16 ->
    int16: SoftmaxInt16 with its two tables as companion arrays."""
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if x.dtype == "int16":
        return _int16_kernel_params(op, x, y)
    xq, yq = int8_qparams(op, x, "input"), int8_qparams(op, y, "output")
    if yq[1] != INT8_MIN or abs(float(yq[0]) - 1.0 / 256) > 0.001 / 256:
        raise kernel_error(op, f"an int8 softmax output needs scale 1/256 and zero point -128 (TFLite's requirement); "
                           f"it has scale {float(yq[0])} and zero point {yq[1]}")
    if x.shape != y.shape or len(x.shape) < 1:
        raise kernel_error(op, f"input shape {x.shape} and output shape {y.shape} differ")
    p = softmax_params(op.attrs.beta, xq[0])
    depth = int(x.shape[-1])
    fields = {
        "outer": x.size // depth, "depth": depth,
        "input_beta_multiplier": p.input_multiplier, "input_beta_left_shift": p.input_left_shift,
        "diff_min": p.diff_min,
    }
    return KernelParams("mcu_softmax_s8", "mcu_softmax_params", fields)


def _int16_kernel_params(op: Op, x, y) -> KernelParams:
    multiplier, shift = _int16_prepare(op, x, y, kernel_error)
    if x.shape != y.shape or len(x.shape) < 1:
        raise kernel_error(op, f"input shape {x.shape} and output shape {y.shape} differ")
    depth = int(x.shape[-1])
    fields = {"outer": x.size // depth, "depth": depth, "input_multiplier": multiplier, "input_shift": shift,
              "exp_lut": CRef("exp_lut"), "reciprocal_lut": CRef("reciprocal_lut")}
    arrays = {"exp_lut": ("int16_t", [int(v) for v in softmax_exp_lut()]),
              "reciprocal_lut": ("int16_t", [int(v) for v in softmax_reciprocal_lut()])}
    return KernelParams("mcu_softmax_s16", "mcu_softmax_s16_params", fields, arrays, in_ctype=CTYPES["int16"],
                        out_ctype=CTYPES["int16"])


def _vjp_softmax(graph, op, args, outs, grads):
    """Float softmax(beta x): dx = beta y (g - sum(g y)) along the last axis."""
    y, g = outs[0], grads[0]
    return [np.float32(op.attrs.beta) * y * (g - np.sum(g * y, axis=-1, keepdims=True))]


register("softmax", SoftmaxAttrs, _reference_softmax, kernel_params, dtypes=("int8", "int16"), vjp=_vjp_softmax)
