"""TANH: TFLite Micro's `tanh.cc` (CalculateArithmeticOpData) and reference_integer_ops::Tanh
(`reference/integer_ops/tanh.h`): the int8 input rescaled to Q4.27, gemmlowp's fixed-point tanh, output in
Q0.7 (scale 1/128, zero point 0); float32 for calibration. Kernel: the int8 table of runtime/mcu_lut_s8.c.
"""
from __future__ import annotations

import numpy as np

from mcutool.ir import Graph, NoAttrs, Op
from mcutool.ops import register
from mcutool.ops.common import int8_operands, kind_of, unsupported
from mcutool.ops.fixedpoint import clamp, i64, multiply_by_quantized_multiplier, rounding_divide_by_pot, tanh_fixed_point
from mcutool.ops.logistic import LogisticParams, logistic_params
from mcutool.ops.kernel import KernelParams, lut_kernel

INPUT_INTEGER_BITS = 4


def tanh_int8(x, input_zero_point: int, p: LogisticParams) -> np.ndarray:
    """reference_integer_ops::Tanh for int8. TanhPrepare rescales the input to Q4.27 exactly as LogisticPrepare
    does (frexp-based multiplier, CalculateInputRadius), so the parameters are logistic_params'."""
    inp = i64(x) - int(input_zero_point)
    in_q4 = multiply_by_quantized_multiplier(inp, p.input_multiplier, p.input_left_shift)
    out = clamp(rounding_divide_by_pot(tanh_fixed_point(in_q4, INPUT_INTEGER_BITS), 31 - 7), -128, 127)
    out = np.where(inp <= -p.input_range_radius, -128, out)
    return np.where(inp >= p.input_range_radius, 127, out)


def _int8_function(graph: Graph, op: Op):
    (s, z), (so, zo) = int8_operands(graph, op, ("input", "output"))
    if zo != 0 or float(so) != 1.0 / 128:
        raise unsupported(op, f"an int8 tanh output must have scale 1/128 and zero point 0 (TFLite's requirement); "
                          f"it has scale {float(so)} and zero point {zo}")
    p = logistic_params(s)
    return lambda q: tanh_int8(q, z, p)


def _reference(graph, op, args):
    if kind_of(graph, op) == "float":
        return [np.tanh(np.asarray(args[0], np.float32)).astype(np.float32)]
    return [_int8_function(graph, op)(args[0])]


def kernel_params(graph: Graph, op: Op) -> KernelParams:
    return lut_kernel(graph, op, _int8_function(graph, op))


register("tanh", NoAttrs, _reference, kernel_params)
