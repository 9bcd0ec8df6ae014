"""RSQRT: TFLite Micro's `elementwise.cc` (PrepareAbsRsqrt / RsqrtEvalQuantized): 1 / sqrt(q - zp_in) through
GetInvSqrtQuantizedMultiplierExp, then requantized by 1 / (sqrt(s_in) s_out), plus zp_out, clamped; float32 for
calibration. Kernel: the int8 table of runtime/mcu_lut_s8.c.

TFLite Micro fails the invocation on an input below the zero point (a negative real value); a table has to give
every input a value, so mcutool maps those to 127, as TFLite does for q == zp (1/sqrt(0)).
"""
from __future__ import annotations

import math

import numpy as np

from mcutool.ir import Graph, NoAttrs, Op
from mcutool.ops import register
from mcutool.ops.common import int8_operands, kind_of
from mcutool.ops.fixedpoint import (clamp, f32, get_inv_sqrt_quantized_multiplier_exp, i64,
                                    multiply_by_quantized_multiplier, quantize_multiplier)
from mcutool.ops.kernel import KernelParams, lut_kernel

_SHIFT = 20  # RsqrtEvalQuantized's kShift


def rsqrt_int8(x, in_zp: int, in_scale, out_zp: int, out_scale) -> np.ndarray:
    """RsqrtEvalQuantized<int8_t> for q >= zp_in; 127 for q <= zp_in."""
    m, sh = quantize_multiplier(1.0 / (math.sqrt(float(f32(in_scale))) * float(f32(out_scale))))
    value = i64(x) - int(in_zp)
    inv, inv_shift = get_inv_sqrt_quantized_multiplier_exp(np.maximum(value, 0), -1)
    data = multiply_by_quantized_multiplier(np.ones_like(value), inv, inv_shift + _SHIFT)
    out = clamp(multiply_by_quantized_multiplier(data, m, sh - _SHIFT) + int(out_zp), -128, 127)
    return np.where(value <= 0, 127, out)


def _int8_function(graph: Graph, op: Op):
    (s, z), (so, zo) = int8_operands(graph, op, ("input", "output"))
    return lambda q: rsqrt_int8(q, z, s, zo, so)


def _reference(graph, op, args):
    if kind_of(graph, op) == "float":
        x = np.asarray(args[0], np.float32)
        return [(np.float32(1) / np.sqrt(x)).astype(np.float32)]
    return [_int8_function(graph, op)(args[0])]


def kernel_params(graph: Graph, op: Op) -> KernelParams:
    return lut_kernel(graph, op, _int8_function(graph, op))


register("rsqrt", NoAttrs, _reference, kernel_params)
