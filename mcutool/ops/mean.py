"""MEAN: `reference/reduce.h` QuantizedMeanOrSum (TFLite 2.14's int8 MEAN for every keep_dims / axis set, and
the tflite-micro interpreter's int16 MEAN for every case tested: keep_dims or not, the 4-D H,W mean, equal input
and output scales -- where the older reduce_common.cc sources have separate paths); float32 for calibration.
Kernels: runtime/mcu_mean_s8.c, mcu_mean_s16.c.
"""
from __future__ import annotations

import numpy as np

from mcutool.ir import Graph, MeanAttrs, Op
from mcutool.ops import register
from mcutool.ops.common import kind_of, qparams
from mcutool.ops.fixedpoint import (clamp, dtype_range, i64, multiply_by_quantized_multiplier, requantize_multiplier,
                                    single_rounding_multipliers, wrap_int32)
from mcutool.ops.kernel import CTYPES, KernelParams, dims, int_qparams, kernel_error, quant, rank_pad


def fold_mean_divisor(multiplier: int, shift: int, num_elements: int) -> tuple[int, int]:
    """Fold 1/num_elements into a (multiplier, shift) pair as reference_ops::QuantizedMeanOrSum
    (`internal/reference/reduce.h`) does: s = min(floor(log2 n), 32, 31 + shift),
    multiplier = (int64(multiplier) << s) / n (C division), shift -= s."""
    n = int(num_elements)
    s = min(n.bit_length() - 1, 32, 31 + int(shift))
    m = int(multiplier) << s
    folded = m // n if m >= 0 else -((-m) // n)
    return folded, int(shift) - s


def mean_multiplier(input_scale, output_scale, num_elements: int, rounding: str = "tflite") -> tuple[int, int]:
    """MEAN's complete requantization: reduce.cc's (double)s_in / (double)s_out with 1/num_elements folded in;
    rounding "single" (ir.ROUNDINGS, ONNX QDQ models) then folds the right shift in too, so the sum is rounded
    once."""
    m, s = fold_mean_divisor(*requantize_multiplier(input_scale, output_scale), num_elements)
    return single_rounding_multipliers(m, s) if rounding == "single" else (m, s)


def mean_int8(x, *, axes, keep_dims, in_zp, multiplier, shift, out_zp, out_dtype="int8",
              compute_sum: bool = False, rounding: str = "tflite") -> np.ndarray:
    """MEAN, quantized (`reference/reduce.h` QuantizedMeanOrSum with compute_sum=false, which TFLite 2.14's
    reference MEAN uses for every int8/uint8 case): integer sum, then one MultiplyByQuantizedMultiplier whose
    multiplier has 1/num_elements folded in. `multiplier`/`shift` are reduce.cc's (s_in / s_out).
    compute_sum=True is SUM (the same function without the 1/num_elements fold; mcutool/ops/sum.py)."""
    x64 = i64(x)
    axes = tuple(sorted({a % x64.ndim for a in axes}))
    n = int(np.prod([x64.shape[a] for a in axes], dtype=np.int64))
    total = x64.sum(axis=axes, keepdims=keep_dims)
    m, s = (multiplier, shift) if compute_sum else fold_mean_divisor(multiplier, shift, n)
    if rounding == "single":  # ir.ROUNDINGS (ONNX QDQ models): as mean_multiplier
        m, s = single_rounding_multipliers(m, s)
    shifted_sum = wrap_int32(total - int(in_zp) * n)
    out = multiply_by_quantized_multiplier(shifted_sum, m, s) + int(out_zp)
    qmin, qmax = dtype_range(out_dtype)
    return clamp(out, qmin, qmax)


def _reference_mean(graph, op, args):
    x_t, out_t = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    axes = tuple(op.attrs.axes)
    if kind_of(graph, op, int16=True) == "float":
        return [np.mean(np.asarray(args[0], np.float32), axis=axes, keepdims=op.attrs.keep_dims).astype(np.float32)]
    s, z = qparams(op, x_t, "input")
    so, zo = qparams(op, out_t, "output")
    m, sh = requantize_multiplier(s, so)
    return [mean_int8(args[0], axes=axes, keep_dims=op.attrs.keep_dims, in_zp=z, multiplier=m, shift=sh,
                      out_zp=zo, out_dtype=out_t.dtype, rounding=op.attrs.rounding)]


# ---- the runtime/ kernel's parameters (TFLite's Prepare, at compile time)

def kernel_params(graph: Graph, op: Op) -> KernelParams:
    """MEAN: reference_ops::QuantizedMeanOrSum (int8, and int16 with zero points 0)."""
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    xq, yq = int_qparams(op, x, "input", ("int8", "int16")), int_qparams(op, y, "output", ("int8", "int16"))
    if x.dtype != y.dtype:
        raise kernel_error(op, f"input {x.dtype} and output {y.dtype} differ")
    k, r = rank_pad(op, x.shape)
    axes = sorted({int(a) % r for a in op.attrs.axes}) if r else []
    count = int(np.prod([x.shape[a] for a in axes], dtype=np.int64)) if axes else 1
    if y.size * count != x.size:
        raise kernel_error(op, f"the mean of {x.shape} over axes {tuple(op.attrs.axes)} does not give {y.shape}")
    m, sh = mean_multiplier(xq[0], yq[0], count, op.attrs.rounding)
    fields = {
        "input": dims(x.shape),
        "axis_mask": sum(1 << (a + k) for a in axes),
        "input_offset": -xq[1], "output_offset": yq[1],
        "quant": quant(m, sh),
    }
    ctype = CTYPES[x.dtype]
    return KernelParams(f"mcu_mean_{'s8' if x.dtype == 'int8' else 's16'}", "mcu_mean_params", fields,
                        in_ctype=ctype, out_ctype=ctype)


register("mean", MeanAttrs, _reference_mean, kernel_params, dtypes=("int8", "int16"))
