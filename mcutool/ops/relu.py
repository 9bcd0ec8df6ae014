"""RELU and RELU6 as layers (not fused): TFLite Micro's `activations.cc` / `activations_common.cc`.
RELU int8 (ReluQuantized): MultiplyByQuantizedMultiplier(q - zp_in, s_in / s_out) + zp_out, clamped to
[max(-128, zp_out), 127]. RELU6 int8 (Relu6Quantized): the raw value clamped to [zp_in, quantize(6.0)] on the
input's quantization -- no requantization, so its output must share the input's quantization. float32 for
calibration. Kernel: the int8 table of runtime/mcu_lut_s8.c.
"""
from __future__ import annotations

import numpy as np

from mcutool.ir import Graph, NoAttrs, Op
from mcutool.ops import register
from mcutool.ops.common import int8_operands, kind_of, same_quant, unsupported
from mcutool.ops.fixedpoint import clamp, f32, i64, multiply_by_quantized_multiplier, quantize_multiplier, tflite_round
from mcutool.ops.kernel import KernelParams, lut_kernel


def relu_int8(x, in_zp: int, in_scale, out_zp: int, out_scale) -> np.ndarray:
    """ReluQuantized<int8_t> with CalculateReluOpData's parameters (act_min = max(-128, zp_out))."""
    m, sh = quantize_multiplier(float(f32(in_scale)) / float(f32(out_scale)))
    out = multiply_by_quantized_multiplier(i64(x) - int(in_zp), m, sh) + int(out_zp)
    return clamp(out, max(-128, int(out_zp)), 127)


def relu6_int8(x, in_zp: int, in_scale) -> np.ndarray:
    """Relu6Quantized<int8_t>: clamp to [zp, FloatToQuantizedType(6.0)] (round(6 / s) + zp, clamped to int8)."""
    six = int(np.clip(tflite_round(np.float32(6.0) / f32(in_scale)) + int(in_zp), -128, 127))
    return clamp(x, int(in_zp), six)


def _int8_function(graph: Graph, op: Op):
    (s, z), (so, zo) = int8_operands(graph, op, ("input", "output"))
    x_t, y_t = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if op.kind == "relu":
        return lambda q: relu_int8(q, z, s, zo, so)
    if not same_quant(x_t, y_t):
        raise unsupported(op, "TFLite Micro's int8 RELU6 clamps raw values without rescaling, so its output must "
                          f"share the input's scale and zero point (input {float(s)}, {z}; output {float(so)}, {zo})")
    return lambda q: relu6_int8(q, z, s)


def _reference(graph, op, args):
    if kind_of(graph, op) == "float":
        x = np.asarray(args[0], np.float32)
        hi = np.float32(np.inf) if op.kind == "relu" else np.float32(6)
        return [np.minimum(np.maximum(x, np.float32(0)), hi)]
    return [_int8_function(graph, op)(args[0])]


def kernel_params(graph: Graph, op: Op) -> KernelParams:
    return lut_kernel(graph, op, _int8_function(graph, op))


register("relu", NoAttrs, _reference, kernel_params)
register("relu6", NoAttrs, _reference, kernel_params)
