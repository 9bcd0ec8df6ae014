"""PRELU: TFLite Micro's `prelu_common.cc` (CalculatePreluParams) and reference_ops::BroadcastPrelu4DSlow
(`reference/prelu.h`): x >= 0 requantized by s_in / s_out, x < 0 multiplied by alpha (both offset by their zero
points) and requantized by s_in s_alpha / s_out; alpha broadcasts to the input's shape. int8, and int16 with an int8
alpha (16x8); float32 for calibration. Kernels: runtime/mcu_prelu_s8.c (mcu_prelu_s8, mcu_prelu_s16).
"""
from __future__ import annotations

import numpy as np

from mcutool.ir import Graph, NoAttrs, Op
from mcutool.ops import register
from mcutool.ops.common import int8_operands, kind_of_all, qparams, unsupported
from mcutool.ops.fixedpoint import clamp, dtype_range, f32, i64, multiply_by_quantized_multiplier, quantize_multiplier
from mcutool.ops.kernel import (KernelParams, check_broadcast, const_operands, dims, int8_or_int16_qparams,
                                kernel_error, quant)


def prelu_multipliers(in_scale, alpha_scale, out_scale) -> tuple[tuple[int, int], tuple[int, int]]:
    """CalculatePreluParams: (s_in / s_out) and (s_in s_alpha / s_out) in double, QuantizeMultiplier'd."""
    s_in, s_a, s_out = (float(f32(v)) for v in (in_scale, alpha_scale, out_scale))
    return quantize_multiplier(s_in / s_out), quantize_multiplier(s_in * s_a / s_out)


def prelu_quantized(x, alpha, *, in_zp: int, alpha_zp: int, out_zp: int, positive, negative,
                    dtype: str = "int8") -> np.ndarray:
    """BroadcastPrelu4DSlow<T, int8_t> (T = int8, or int16 with an int8 alpha) with numpy broadcasting."""
    xv = i64(x) - int(in_zp)
    av = i64(alpha) - int(alpha_zp)
    pos = multiply_by_quantized_multiplier(xv, *positive)
    neg = multiply_by_quantized_multiplier(xv * av, *negative)
    return clamp(np.where(xv >= 0, pos, neg) + int(out_zp), *dtype_range(dtype))


_ROLES = ("input", "alpha", "output")


def _operands(graph: Graph, op: Op, qp, error) -> tuple[str, list]:
    """(dtype, quantizations): int8 throughout, or TFLite Micro's int16 PRELU (int16 input and output with zero
    point 0, int8 alpha)."""
    x, a, y = (graph.tensor(n) for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    if (x.dtype, a.dtype, y.dtype) != ("int16", "int8", "int16"):
        return "int8", int8_operands(graph, op, _ROLES, qp)
    q = [qp(op, t, r) for t, r in ((x, "input"), (a, "alpha"), (y, "output"))]
    if q[0][1] != 0 or q[2][1] != 0:
        raise error(op, "int16 tensors take zero point 0 (TFLite's 16x8 scheme)")
    return "int16", q


def _reference(graph, op, args):
    if graph.tensor(op.outputs[0]).dtype == "float32" and kind_of_all(graph, op) == "float":
        x, a = np.asarray(args[0], np.float32), np.asarray(args[1], np.float32)
        return [np.where(x >= 0, x, x * a).astype(np.float32)]
    dtype, ((s, z), (sa, za), (so, zo)) = _operands(graph, op, qparams, unsupported)
    positive, negative = prelu_multipliers(s, sa, so)
    return [prelu_quantized(args[0], args[1], in_zp=z, alpha_zp=za, out_zp=zo, positive=positive, negative=negative,
                            dtype=dtype)]


def kernel_params(graph: Graph, op: Op) -> KernelParams:
    x, a, y = (graph.tensor(n) for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    dtype, ((s, z), (sa, za), (so, zo)) = _operands(graph, op, int8_or_int16_qparams, kernel_error)
    check_broadcast(op, x, a, y)
    positive, negative = prelu_multipliers(s, sa, so)
    fields = {"input1": dims(x.shape), "input2": dims(a.shape), "output": dims(y.shape),
              "input_offset": -z, "alpha_offset": -za, "output_offset": zo,
              "positive_quant": quant(*positive), "negative_quant": quant(*negative)}
    function = "mcu_prelu_s8" if dtype == "int8" else "mcu_prelu_s16"
    return const_operands(graph, op, KernelParams(function, "mcu_prelu_params", fields, num_inputs=2))


register("prelu", NoAttrs, _reference, kernel_params, dtypes=("int8", "int16"))
