"""LEAKY_RELU: TFLite Micro's leaky_relu.cc / leaky_relu_common.cc (int8, int16) over `reference/leaky_relu.h`
QuantizeLeakyRelu; float32 for calibration.

    v = x - zp_in;  out = zp_out + MultiplyByQuantizedMultiplier(v, v >= 0 ? identity : alpha), clamped to the dtype

with identity = QuantizeMultiplier(s_in / s_out) and alpha = QuantizeMultiplier(s_in * alpha / s_out), computed
in double from the float32 scales and alpha: what the tflite-micro build this is checked against (pip
0.dev20261023) computes. A leaky_relu_common.cc of 2025 divides in float32 first; that is what 4 of the SEANet
goldens (leaky_relu3, 11, 18, 19) hold, 1 LSB off the interpreter on some elements. Kernels: int8 is a function of
one byte, so it runs as a 256-entry table of this reference (runtime/mcu_lut_s8.c); int16 runs
runtime/mcu_leaky_relu_s16.c.
"""
from __future__ import annotations

import numpy as np

from mcutool.ir import Graph, LeakyReluAttrs, Op
from mcutool.ops import register
from mcutool.ops.common import kind_of, qparams, unsupported
from mcutool.ops.fixedpoint import clamp, dtype_range, f32, i64, multiply_by_quantized_multiplier, quantize_multiplier
from mcutool.ops.kernel import CRef, KernelParams, byte_indexed, int_qparams, kernel_error, kernel_for, quant

KERNELS = {("int8", "int8"): "mcu_lut_s8", ("int16", "int16"): "mcu_leaky_relu_s16"}


def leaky_relu_multipliers(in_scale, out_scale, alpha) -> tuple[tuple[int, int], tuple[int, int]]:
    """leaky_relu_common.cc's Prepare: ((identity multiplier, shift), (alpha multiplier, shift))."""
    s_in, s_out, a = float(f32(in_scale)), float(f32(out_scale)), float(f32(alpha))
    identity = quantize_multiplier(s_in / s_out)
    negative = quantize_multiplier(s_in * a / s_out)
    return identity, negative


def leaky_relu_int(x, *, in_zp, out_zp, identity, negative, dtype) -> np.ndarray:
    """reference_ops::QuantizeLeakyRelu<int8_t / int16_t>."""
    v = i64(x) - int(in_zp)
    pos = multiply_by_quantized_multiplier(v, *identity)
    neg = multiply_by_quantized_multiplier(v, *negative)
    return clamp(np.where(v >= 0, pos, neg) + int(out_zp), *dtype_range(dtype))


def _reference(graph, op, args):
    x_t, out_t = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if kind_of(graph, op, int16=True) == "float":
        x = np.asarray(args[0], np.float32)
        return [np.where(x > 0, x, x * np.float32(op.attrs.alpha)).astype(np.float32)]
    if x_t.dtype == "uint8":
        raise unsupported(op, "a uint8 leaky relu (TFLite Micro runs int8 and int16 only)")
    s, z = qparams(op, x_t, "input")
    so, zo = qparams(op, out_t, "output")
    identity, negative = leaky_relu_multipliers(s, so, op.attrs.alpha)
    return [leaky_relu_int(args[0], in_zp=z, out_zp=zo, identity=identity, negative=negative, dtype=out_t.dtype)]


# ---- the runtime/ kernel's parameters (TFLite's Prepare, at compile time)

def kernel_params(graph: Graph, op: Op) -> KernelParams:
    """LEAKY_RELU: int8 as a lookup table of the reference, int16 as mcu_leaky_relu_s16."""
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    function, cin, cout = kernel_for(op, x, y, KERNELS)
    xq, yq = int_qparams(op, x, "input", (x.dtype,)), int_qparams(op, y, "output", (x.dtype,))
    identity, negative = leaky_relu_multipliers(xq[0], yq[0], op.attrs.alpha)
    if x.dtype == "int8":
        table = leaky_relu_int(np.arange(-128, 128), in_zp=xq[1], out_zp=yq[1], identity=identity,
                               negative=negative, dtype="int8")
        fields = {"size": x.size, "table": CRef("table")}
        return KernelParams(function, "mcu_lut_params", fields, arrays={"table": ("int8_t", byte_indexed(table))})
    if x.size != y.size:
        raise kernel_error(op, f"input {x.shape} and output {y.shape} differ in size")
    fields = {"size": x.size, "identity": quant(*identity), "alpha": quant(*negative)}
    return KernelParams(function, "mcu_leaky_relu_params", fields, in_ctype=cin, out_ctype=cout)


register("leaky_relu", LeakyReluAttrs, _reference, kernel_params, dtypes=("int8", "int16"))
