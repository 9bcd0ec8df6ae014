"""SOFTMAX: `reference/softmax.h` (int8 -> int8, gemmlowp fixed point) with SoftmaxPrepare<kReference>'s
parameters; float32 for calibration. Kernel: runtime/mcu_softmax_s8.c.
"""
from __future__ import annotations

import numpy as np

from mcutool.ir import Graph, Op, SoftmaxAttrs
from mcutool.ops import register
from mcutool.ops.common import kind_of, qparams, unsupported
from mcutool.ops.fixedpoint import (NP_DTYPES, calculate_input_radius, clamp, dtype_range, exp_on_negative_values, f32,
                                    get_reciprocal, i64, multiply_by_quantized_multiplier_greater_than_one,
                                    quantize_multiplier_greater_than_one, rounding_divide_by_pot,
                                    saturating_rounding_doubling_high_mul, wrap_int32)
from mcutool.ops.kernel import INT8_MIN, KernelParams, int8_qparams, kernel_error
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


def softmax_float(x, beta: float = 1.0) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    e = np.exp((x - x.max(axis=-1, keepdims=True)) * np.float32(beta))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def _reference_softmax(graph, op, args):
    x_t, out_t = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if kind_of(graph, op) == "float":
        return [softmax_float(args[0], op.attrs.beta)]
    s, _ = qparams(op, x_t, "input")
    so, zo = qparams(op, out_t, "output")
    qmin = dtype_range(out_t.dtype)[0]
    if zo != qmin or abs(float(so) - 1.0 / 256) > 0.001 / 256:
        raise unsupported(op, f"a quantized softmax output must have scale 1/256 and zero point {qmin} "
                          f"(TFLite's requirement); it has scale {float(so)} and zero point {zo}")
    return [softmax_int8(args[0], softmax_params(op.attrs.beta, s), out_t.dtype)]


# ---- the runtime/ kernel's parameters (TFLite's Prepare, at compile time)

def kernel_params(graph: Graph, op: Op) -> KernelParams:
    """SOFTMAX: reference_ops::Softmax (int8 -> int8) with SoftmaxPrepare<kReference>'s parameters."""
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
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


register("softmax", SoftmaxAttrs, _reference_softmax, kernel_params)
