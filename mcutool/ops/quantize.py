"""QUANTIZE and DEQUANTIZE: float32 -> int (`reference/quantize.h` AffineQuantize), int -> int
(`reference/requantize.h` Requantize, with TFLite Micro's quantize_common.cc Prepare: QuantizeMultiplier of
(double)s_in / (double)s_out) and int -> float32 (`reference/dequantize.h`). In firmware the int -> int
requantizations TFLite Micro runs between int8, int16 and int32 run (runtime/mcu_quantize_s8.c, _s16.c, _s32.c);
float <-> int conversion happens on the host.
"""
from __future__ import annotations

import numpy as np

from mcutool.ir import Graph, NoAttrs, Op
from mcutool.ops import register
from mcutool.ops.common import qparams, unsupported
from mcutool.ops.fixedpoint import (INT32_MAX, INT32_MIN, QUANTIZED, QUANTIZED_16, clamp, dtype_range, f32, i64,
                                    requantize, requantize_multiplier, tflite_round)
from mcutool.ops.kernel import KernelParams, act, int_qparams, kernel_error, kernel_for, quant

# The int -> int requantizations TFLite Micro's quantize_common.cc runs (uint8 aside), by (input, output) dtype.
KERNELS = {
    ("int8", "int8"): "mcu_quantize_s8", ("int8", "int16"): "mcu_quantize_s8_s16",
    ("int16", "int8"): "mcu_quantize_s16_s8", ("int16", "int16"): "mcu_quantize_s16",
    ("int16", "int32"): "mcu_quantize_s16_s32",
    ("int32", "int8"): "mcu_quantize_s32_s8", ("int32", "int16"): "mcu_quantize_s32_s16",
}
REQUANTIZED = QUANTIZED_16 + ("int32",)


def quantize_float(x, *, scale, zero_point, out_dtype, half_to_even: bool = False) -> np.ndarray:
    """float32 -> int8/uint8 (`reference/quantize.h` AffineQuantize): round(x / (float)scale) + zp, clamped;
    the division in float32, rounding half away from zero -- half to even with `half_to_even` (ONNX's
    QuantizeLinear, for the host-side conversion of a QDQ model's float input)."""
    q = np.asarray(x, dtype=np.float32) / f32(scale)
    r = np.rint(q).astype(np.float64) if half_to_even else tflite_round(q)
    qmin, qmax = dtype_range(out_dtype)
    r = np.clip(r, INT32_MIN, INT32_MAX)  # out-of-range float -> int casts are undefined in C; saturate
    return clamp(r.astype(np.int64) + int(zero_point), qmin, qmax)


def dequantize(x, *, scale, zero_point) -> np.ndarray:
    """int8/uint8 -> float32 (`reference/dequantize.h`): (float)((double)scale * (q - zp))."""
    return (float(f32(scale)) * (i64(x) - int(zero_point)).astype(np.float64)).astype(np.float32)


def _reference_quantize(graph, op, args):
    x_t, out_t = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if out_t.dtype not in REQUANTIZED or (x_t.dtype == "float32" and out_t.dtype == "int32"):
        raise unsupported(op, f"quantize {x_t.dtype} to {out_t.dtype}")
    so, zo = qparams(op, out_t, "output")
    if x_t.dtype == "float32":
        return [quantize_float(args[0], scale=so, zero_point=zo, out_dtype=out_t.dtype)]
    if x_t.dtype in REQUANTIZED:
        s, z = qparams(op, x_t, "input")
        m, sh = requantize_multiplier(s, so)
        return [requantize(args[0], in_zp=z, multiplier=m, shift=sh, out_zp=zo, out_dtype=out_t.dtype)]
    raise unsupported(op, f"quantize from {x_t.dtype}")


def _reference_dequantize(graph, op, args):
    x_t, out_t = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if x_t.dtype not in QUANTIZED_16 or out_t.dtype != "float32":
        raise unsupported(op, f"dequantize {x_t.dtype} -> {out_t.dtype}")
    s, z = qparams(op, x_t, "input")
    return [dequantize(args[0], scale=s, zero_point=z)]


# ---- the runtime/ kernel's parameters (TFLite's Prepare, at compile time)

def kernel_params(graph: Graph, op: Op) -> KernelParams:
    """QUANTIZE int -> int: reference_ops::Requantize with quantize_common.cc's (double)s_in / (double)s_out,
    clamped to the output dtype's range."""
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if x.dtype == "float32" or y.dtype == "float32":
        raise kernel_error(op, "float <-> int conversion happens on the host (the firmware's I/O is integer); only "
                           "int -> int requantization runs in firmware")
    function, cin, cout = kernel_for(op, x, y, KERNELS)
    xq, yq = int_qparams(op, x, "input", REQUANTIZED), int_qparams(op, y, "output", REQUANTIZED)
    m, sh = requantize_multiplier(xq[0], yq[0])
    fields = {"size": x.size, "input_offset": -xq[1], "output_offset": yq[1], "quant": quant(m, sh),
              "act": act(*dtype_range(y.dtype))}
    return KernelParams(function, "mcu_quantize_params", fields, in_ctype=cin, out_ctype=cout)


register("quantize", NoAttrs, _reference_quantize, kernel_params, dtypes=("int8", "int16"))
register("dequantize", NoAttrs, _reference_dequantize, dtypes=())  # float output: on the host
