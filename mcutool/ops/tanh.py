"""TANH: TFLite Micro's `tanh.cc` (CalculateArithmeticOpData) and reference_integer_ops::Tanh
(`reference/integer_ops/tanh.h`). int8: the input rescaled to Q4.27, gemmlowp's fixed-point tanh, output in
Q0.7 (scale 1/128, zero point 0); kernel: the int8 table of runtime/mcu_lut_s8.c. int16 (16x8 scheme, zero
points 0, output scale 2^-15): the input rescaled so that 2^17 stands for 10.7 (a power-of-two input scale takes
a multiplier of 3 << shift), then tanh(x) = 2 sigmoid(2x) - 1 interpolated in a 256-entry sigmoid table;
kernel: runtime/mcu_tanh_s16.c. float32 for calibration.
"""
from __future__ import annotations

import numpy as np

from mcutool.ir import Graph, NoAttrs, Op
from mcutool.ops import register
from mcutool.ops.common import int8_operands, kind_of, qparams, unsupported
from mcutool.ops.fixedpoint import (SIGMOID_TABLE_UINT16, clamp, f32, i64, multiply_by_quantized_multiplier, rounding_divide_by_pot,
                                    tanh_fixed_point, tflite_round)
from mcutool.ops.logistic import LogisticParams, logistic_params
from mcutool.ops.kernel import CRef, KernelParams, lut_kernel

INPUT_INTEGER_BITS = 4


def tanh_int8(x, input_zero_point: int, p: LogisticParams) -> np.ndarray:
    """reference_integer_ops::Tanh for int8. TanhPrepare rescales the input to Q4.27 exactly as LogisticPrepare
    does (frexp-based multiplier, CalculateInputRadius), so the parameters are logistic_params'."""
    inp = i64(x) - int(input_zero_point)
    in_q4 = multiply_by_quantized_multiplier(inp, p.input_multiplier, p.input_left_shift)
    out = clamp(rounding_divide_by_pot(tanh_fixed_point(in_q4, INPUT_INTEGER_BITS), 31 - 7), -128, 127)
    out = np.where(inp <= -p.input_range_radius, -128, out)
    return np.where(inp >= p.input_range_radius, 127, out)


# ---- int16

def checked_log2(x) -> tuple[bool, int]:
    """TFLite's CheckedLog2 in float32: (|log2(x) - round(log2(x))| < 1e-3, round(log2(x)))."""
    x_log2 = np.float32(np.log(np.float32(x))) * np.float32(np.float32(1.0) / np.float32(np.log(np.float32(2.0))))
    rounded = np.float32(tflite_round(x_log2))
    return bool(abs(np.float32(x_log2 - rounded)) < np.float32(1e-3)), int(rounded)


def tanh_int16_params(op: Op, input_scale, output_scale) -> tuple[int, int]:
    """TanhPrepare for int16: (input_multiplier, input_left_shift); 0 as multiplier for power-of-two scales."""
    out_pot, log2_out = checked_log2(output_scale)
    if not out_pot or log2_out != -15:
        raise unsupported(op, f"an int16 tanh output must have scale 2^-15 (TFLite's requirement); it has "
                          f"{float(output_scale)}")
    pot, log2_in = checked_log2(input_scale)
    left_shift = (15 - 3) + log2_in
    if pot and left_shift in (0, 1):
        return 0, left_shift
    multiplier = float(f32(input_scale)) * 4096.0 * 3.0
    left_shift = 0
    while multiplier <= 32767.0 / 2.0 and left_shift <= 30:
        left_shift += 1
        multiplier *= 2.0
    return int(multiplier), left_shift


def tanh_int16(x, input_multiplier: int, input_left_shift: int) -> np.ndarray:
    """reference_integer_ops::Tanh for int16."""
    if input_multiplier == 0:
        input_multiplier, input_left_shift = 3 << input_left_shift, 0
    rnd = (1 << (input_left_shift - 1)) if input_left_shift > 0 else 0
    v = (i64(x) * input_multiplier + rnd) >> input_left_shift
    a = np.abs(v)
    uh = a >> 8
    table = np.append(SIGMOID_TABLE_UINT16, 0)
    idx = np.minimum(uh, 255)
    ua, ub = table[idx], table[np.minimum(idx + 1, 256)]
    result = np.where(uh >= 255, 0xFFFF << 8, (ua << 8) + (a & 0xFF) * (ub - ua))
    result = np.where(v >= 0, result - (1 << 23) + (1 << 7), -result + (1 << 23) + (1 << 7) - 1)
    out = result >> 8
    return ((out + (1 << 15)) & 0xFFFF) - (1 << 15)  # int16_t store


def _int16_params(graph: Graph, op: Op) -> tuple[int, int]:
    x_t, y_t = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    (s, z), (so, zo) = qparams(op, x_t, "input"), qparams(op, y_t, "output")
    if y_t.dtype != "int16" or z != 0 or zo != 0:
        raise unsupported(op, "an int16 tanh takes and gives int16 tensors with zero point 0 (TFLite's 16x8 scheme)")
    return tanh_int16_params(op, s, so)


def _int8_function(graph: Graph, op: Op):
    (s, z), (so, zo) = int8_operands(graph, op, ("input", "output"))
    if zo != 0 or float(so) != 1.0 / 128:
        raise unsupported(op, f"an int8 tanh output must have scale 1/128 and zero point 0 (TFLite's requirement); "
                          f"it has scale {float(so)} and zero point {zo}")
    p = logistic_params(s)
    return lambda q: tanh_int8(q, z, p)


def _reference(graph, op, args):
    if graph.tensor(op.inputs[0]).dtype == "int16":
        return [tanh_int16(args[0], *_int16_params(graph, op))]
    if kind_of(graph, op) == "float":
        return [np.tanh(np.asarray(args[0], np.float32)).astype(np.float32)]
    return [_int8_function(graph, op)(args[0])]


def kernel_params(graph: Graph, op: Op) -> KernelParams:
    x = graph.tensor(op.inputs[0])
    if x.dtype != "int16":
        return lut_kernel(graph, op, _int8_function(graph, op))
    multiplier, left_shift = _int16_params(graph, op)
    if multiplier == 0:
        multiplier, left_shift = 3 << left_shift, 0
    fields = {"size": x.size, "input_multiplier": multiplier, "input_left_shift": left_shift,
              "sigmoid_table": CRef("sigmoid_table")}
    return KernelParams("mcu_tanh_s16", "mcu_tanh_s16_params", fields,
                        arrays={"sigmoid_table": ("uint16_t", [int(v) for v in SIGMOID_TABLE_UINT16])})


register("tanh", NoAttrs, _reference, kernel_params, dtypes=("int8", "int16"))
