"""PRELU: TFLite Micro's `prelu_common.cc` (CalculatePreluParams) and reference_ops::BroadcastPrelu4DSlow
(`reference/prelu.h`): x >= 0 requantized by s_in / s_out, x < 0 multiplied by alpha (both offset by their zero
points) and requantized by s_in s_alpha / s_out; alpha broadcasts to the input's shape. float32 for calibration.
Kernel: runtime/mcu_prelu_s8.c.
"""
from __future__ import annotations

import numpy as np

from mcutool.ir import Graph, NoAttrs, Op
from mcutool.ops import register
from mcutool.ops.common import int8_operands, kind_of_all
from mcutool.ops.fixedpoint import clamp, f32, i64, multiply_by_quantized_multiplier, quantize_multiplier
from mcutool.ops.kernel import KernelParams, check_broadcast, const_operands, dims, int8_qparams, quant


def prelu_multipliers(in_scale, alpha_scale, out_scale) -> tuple[tuple[int, int], tuple[int, int]]:
    """CalculatePreluParams: (s_in / s_out) and (s_in s_alpha / s_out) in double, QuantizeMultiplier'd."""
    s_in, s_a, s_out = (float(f32(v)) for v in (in_scale, alpha_scale, out_scale))
    return quantize_multiplier(s_in / s_out), quantize_multiplier(s_in * s_a / s_out)


def prelu_int8(x, alpha, *, in_zp: int, alpha_zp: int, out_zp: int, positive, negative) -> np.ndarray:
    """BroadcastPrelu4DSlow<int8_t, int8_t> with numpy broadcasting."""
    xv = i64(x) - int(in_zp)
    av = i64(alpha) - int(alpha_zp)
    pos = multiply_by_quantized_multiplier(xv, *positive)
    neg = multiply_by_quantized_multiplier(xv * av, *negative)
    return clamp(np.where(xv >= 0, pos, neg) + int(out_zp), -128, 127)


_ROLES = ("input", "alpha", "output")


def _reference(graph, op, args):
    if kind_of_all(graph, op) == "float":
        x, a = np.asarray(args[0], np.float32), np.asarray(args[1], np.float32)
        return [np.where(x >= 0, x, x * a).astype(np.float32)]
    (s, z), (sa, za), (so, zo) = int8_operands(graph, op, _ROLES)
    positive, negative = prelu_multipliers(s, sa, so)
    return [prelu_int8(args[0], args[1], in_zp=z, alpha_zp=za, out_zp=zo, positive=positive, negative=negative)]


def kernel_params(graph: Graph, op: Op) -> KernelParams:
    x, a, y = (graph.tensor(n) for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    (s, z), (sa, za), (so, zo) = int8_operands(graph, op, _ROLES, int8_qparams)
    check_broadcast(op, x, a, y)
    positive, negative = prelu_multipliers(s, sa, so)
    fields = {"input1": dims(x.shape), "input2": dims(a.shape), "output": dims(y.shape),
              "input_offset": -z, "alpha_offset": -za, "output_offset": zo,
              "positive_quant": quant(*positive), "negative_quant": quant(*negative)}
    return const_operands(graph, op, KernelParams("mcu_prelu_s8", "mcu_prelu_params", fields, num_inputs=2))


register("prelu", NoAttrs, _reference, kernel_params)
