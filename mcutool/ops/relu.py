"""RELU and RELU6 as layers (not fused): TFLite Micro's `activations.cc` / `activations_common.cc`, int8 and int16.
RELU (ReluQuantized): MultiplyByQuantizedMultiplier(q - zp_in, s_in / s_out) + zp_out, clamped to
[max(qmin, zp_out), qmax]. RELU6 (Relu6Quantized): the raw value clamped to [zp_in, quantize(6.0)] on the input's
quantization -- no requantization, so its output must share the input's quantization. float32 for calibration.
Kernels: int8, the table of runtime/mcu_lut_s8.c; int16, runtime/mcu_requant_clamp_s16.c.
"""
from __future__ import annotations

import numpy as np

from mcutool.ir import Graph, NoAttrs, Op
from mcutool.ops import register
from mcutool.ops.common import RequantClamp, kind_of, quantized_operands, same_quant, unsupported
from mcutool.ops.fixedpoint import dtype_range, f32, quantize_multiplier, tflite_round
from mcutool.ops.kernel import KernelParams, lut_kernel, requant_clamp_s16_kernel


def relu_quantized(in_scale, in_zp: int, out_scale, out_zp: int, dtype: str) -> RequantClamp:
    """CalculateReluOpData<T> + ReluQuantized<T>: act_min = max(qmin, zp_out + round(0 / s_out))."""
    qmin, qmax = dtype_range(dtype)
    m, sh = quantize_multiplier(float(f32(in_scale)) / float(f32(out_scale)))
    return RequantClamp(int(in_zp), int(out_zp), m, sh, max(qmin, int(out_zp)), qmax)


def relu6_quantized(in_scale, in_zp: int, dtype: str) -> RequantClamp:
    """Relu6Prepare + Relu6Quantized<T>: clamp raw values to [zp, FloatToQuantizedType<T>(6.0)]."""
    qmin, qmax = dtype_range(dtype)
    six = int(np.clip(tflite_round(np.float32(6.0) / f32(in_scale)) + int(in_zp), qmin, qmax))
    return RequantClamp(0, 0, None, 0, int(in_zp), six)


def _function(graph: Graph, op: Op) -> RequantClamp:
    (s, z), (so, zo) = quantized_operands(graph, op)
    x_t, y_t = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if op.kind == "relu":
        return relu_quantized(s, z, so, zo, x_t.dtype)
    if not same_quant(x_t, y_t):
        raise unsupported(op, "TFLite Micro's quantized RELU6 clamps raw values without rescaling, so its output "
                          f"must share the input's scale and zero point (input {float(s)}, {z}; output "
                          f"{float(so)}, {zo})")
    return relu6_quantized(s, z, x_t.dtype)


def _reference(graph, op, args):
    if graph.tensor(op.inputs[0]).dtype == "float32" and kind_of(graph, op) == "float":
        x = np.asarray(args[0], np.float32)
        hi = np.float32(np.inf) if op.kind == "relu" else np.float32(6)
        return [np.minimum(np.maximum(x, np.float32(0)), hi)]
    return [_function(graph, op)(args[0])]


def kernel_params(graph: Graph, op: Op) -> KernelParams:
    if graph.tensor(op.inputs[0]).dtype == "int16":
        return requant_clamp_s16_kernel(graph, op, _function(graph, op))
    return lut_kernel(graph, op, _function(graph, op))


register("relu", NoAttrs, _reference, kernel_params, dtypes=("int8", "int16"))
register("relu6", NoAttrs, _reference, kernel_params, dtypes=("int8", "int16"))
