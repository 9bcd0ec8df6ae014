"""RSQRT: TFLite Micro's `elementwise.cc` (PrepareAbsRsqrt / RsqrtEvalQuantized): 1 / sqrt(q - zp_in) through
GetInvSqrtQuantizedMultiplierExp, then requantized by 1 / (sqrt(s_in) s_out), plus zp_out, clamped; float32 for
calibration. int8 and int16 (16x8, zero points 0). Kernels: int8, the table of runtime/mcu_lut_s8.c; int16,
runtime/mcu_rsqrt_s16.c.

TFLite Micro fails the invocation on an input below the zero point (a negative real value); a table has to give
every input a value, so mcutool maps those to the type's max (127, 32767), as TFLite does for q == zp (1/sqrt(0)).
"""
from __future__ import annotations

import math

import numpy as np

from mcutool.ir import Graph, NoAttrs, Op
from mcutool.ops import register
from mcutool.ops.common import kind_of, quantized_operands
from mcutool.ops.fixedpoint import (clamp, dtype_range, f32, get_inv_sqrt_quantized_multiplier_exp, i64,
                                    multiply_by_quantized_multiplier, quantize_multiplier)
from mcutool.ops.kernel import KernelParams, lut_kernel, quant

_SHIFT = 20  # RsqrtEvalQuantized's kShift


def rsqrt_multiplier(in_scale, out_scale) -> tuple[int, int]:
    """SetRsqrtOutputMultiplier: 1 / (sqrt(s_in) s_out) in double."""
    return quantize_multiplier(1.0 / (math.sqrt(float(f32(in_scale))) * float(f32(out_scale))))


def rsqrt_quantized(x, in_zp: int, in_scale, out_zp: int, out_scale, dtype: str = "int8") -> np.ndarray:
    """RsqrtEvalQuantized<T> for q > zp_in; the type's max for q <= zp_in."""
    m, sh = rsqrt_multiplier(in_scale, out_scale)
    qmin, qmax = dtype_range(dtype)
    value = i64(x) - int(in_zp)
    inv, inv_shift = get_inv_sqrt_quantized_multiplier_exp(np.maximum(value, 0), -1)
    data = multiply_by_quantized_multiplier(np.ones_like(value), inv, inv_shift + _SHIFT)
    out = clamp(multiply_by_quantized_multiplier(data, m, sh - _SHIFT) + int(out_zp), qmin, qmax)
    return np.where(value <= 0, qmax, out)


def _function(graph: Graph, op: Op):
    (s, z), (so, zo) = quantized_operands(graph, op)
    dtype = graph.tensor(op.inputs[0]).dtype
    return lambda q: rsqrt_quantized(q, z, s, zo, so, dtype)


def _reference(graph, op, args):
    if graph.tensor(op.inputs[0]).dtype == "float32" and kind_of(graph, op) == "float":
        x = np.asarray(args[0], np.float32)
        return [(np.float32(1) / np.sqrt(x)).astype(np.float32)]
    return [_function(graph, op)(args[0])]


def kernel_params(graph: Graph, op: Op) -> KernelParams:
    x = graph.tensor(op.inputs[0])
    if x.dtype != "int16":
        return lut_kernel(graph, op, _function(graph, op))
    (s, _), (so, _) = quantized_operands(graph, op)
    m, sh = rsqrt_multiplier(s, so)
    fields = {"size": x.size, "quant": quant(m, sh)}
    return KernelParams("mcu_rsqrt_s16", "mcu_rsqrt_s16_params", fields)


register("rsqrt", NoAttrs, _reference, kernel_params, dtypes=("int8", "int16"))
