"""LOGISTIC: TFLite 2.14's int8 kernel (a LUTPopulate table, `activations.cc` SigmoidPrepare) and TFLite Micro's
fixed-point one (`reference/integer_ops/logistic.h`); int16 as TFLite Micro runs it (`logistic_common.cc`
Prepare, reference_integer_ops::Logistic for int16: the sigmoid table interpolated); float32 for calibration.
Kernels: mcu_logistic_s8, mcu_logistic_s16.
"""
from __future__ import annotations

import numpy as np

from mcutool.ir import Graph, NoAttrs, Op
from mcutool.ops import register
from mcutool.ops.common import kind_of, qparams, unsupported
from mcutool.ops.fixedpoint import (calculate_input_radius, checked_log2, clamp, dtype_range, expf, f32, i64,
                                    int16_sigmoid_tanh_input_params, logistic_fixed_point, logistic_int16,
                                    multiply_by_quantized_multiplier, rounding_divide_by_pot, tflite_round, wrap_int32)
from mcutool.ops.kernel import (CRef, CTYPES, INT8_MIN, KernelParams, byte_indexed, int8_qparams, int_qparams,
                                kernel_error)
import math
from dataclasses import dataclass


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
        transformed = np.float32(1.0) / (np.float32(1.0) + expf(-dequantized))
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


def logistic_int8_lut(x, table: np.ndarray, dtype: str = "int8") -> np.ndarray:
    """LOGISTIC through a lookup table (`activations.cc` SigmoidEval with a LUTPopulate table)."""
    return table[i64(x) - dtype_range(dtype)[0]]


def logistic_int8_fixed_point(x, input_zero_point: int, params: LogisticParams) -> np.ndarray:
    """LOGISTIC, int8, fixed point (`reference/integer_ops/logistic.h` Logistic, used by TFLite Micro)."""
    inp = i64(x) - int(input_zero_point)
    in_q4 = multiply_by_quantized_multiplier(inp, params.input_multiplier, params.input_left_shift)
    out_q0 = logistic_fixed_point(in_q4, 4)
    out = rounding_divide_by_pot(out_q0, 31 - 8) - 128
    out = clamp(out, -128, 127)
    out = np.where(inp <= -params.input_range_radius, -128, out)
    return np.where(inp >= params.input_range_radius, 127, out)


def logistic_float(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return (np.float32(1) / (np.float32(1) + np.exp(-x))).astype(np.float32)


def int16_params(op: Op, x_t, out_t, error) -> tuple[int, int]:
    """LogisticPrepare for int16 (`logistic_common.cc`): zero points 0, an output scale of 2^-15, the input
    multiplier and shift of int16_sigmoid_tanh_input_params."""
    if out_t.dtype != "int16":
        raise error(op, f"an int16 input with a {out_t.dtype} output")
    s, _ = int_qparams(op, x_t, "input", ("int16",))
    so, _ = int_qparams(op, out_t, "output", ("int16",))
    pot, log2 = checked_log2(so)
    if not pot or log2 != -15:
        raise error(op, f"an int16 logistic output needs scale 2^-15 and zero point 0 (TFLite Micro's requirement); it "
                    f"has scale {float(so)}")
    return int16_sigmoid_tanh_input_params(s, pot_shifts=(0,))


def _reference_logistic(graph, op, args):
    x_t, out_t = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if x_t.dtype == "int16":
        return [logistic_int16(args[0], *int16_params(op, x_t, out_t, unsupported))]
    if kind_of(graph, op) == "float":
        return [logistic_float(args[0])]
    s, z = qparams(op, x_t, "input")
    so, zo = qparams(op, out_t, "output")
    qmin = dtype_range(out_t.dtype)[0]
    if zo != qmin or float(so) != 1.0 / 256:
        raise unsupported(op, f"a quantized logistic output must have scale 1/256 and zero point {qmin} "
                          f"(TFLite's requirement); it has scale {float(so)} and zero point {zo}")
    return [logistic_int8_lut(args[0], logistic_lut(s, z, so, zo, x_t.dtype), x_t.dtype)]


# ---- the runtime/ kernel's parameters (TFLite's Prepare, at compile time)

def kernel_params(graph: Graph, op: Op) -> KernelParams:
    """LOGISTIC: TFLite 2.14's int8 kernel is a LUTPopulate table (activations.cc SigmoidPrepare) + lookup; int16:
    TFLite Micro's interpolated sigmoid table (mcu_logistic_s16)."""
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if x.dtype == "int16":
        multiplier, shift = int16_params(op, x, y, kernel_error)
        fields = {"size": x.size, "input_multiplier": multiplier, "input_left_shift": shift}
        return KernelParams("mcu_logistic_s16", "mcu_activation_s16_params", fields, in_ctype=CTYPES["int16"],
                            out_ctype=CTYPES["int16"])
    xq, yq = int8_qparams(op, x, "input"), int8_qparams(op, y, "output")
    if yq[1] != INT8_MIN or float(yq[0]) != 1.0 / 256:
        raise kernel_error(op, f"an int8 logistic output needs scale 1/256 and zero point -128 (TFLite's requirement); "
                           f"it has scale {float(yq[0])} and zero point {yq[1]}")
    table = logistic_lut(xq[0], xq[1], yq[0], yq[1], "int8")
    fields = {"size": x.size, "table": CRef("table")}
    return KernelParams("mcu_logistic_s8", "mcu_lut_params", fields, arrays={"table": ("int8_t", byte_indexed(table))})


register("logistic", NoAttrs, _reference_logistic, kernel_params, dtypes=("int8", "int16"))
