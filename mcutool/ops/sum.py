"""SUM (`micro/kernels/reduce.cc` EvalSum -> `reference/reduce.h` QuantizedMeanOrSum with compute_sum=true):
int8 sum over the reduced axes of (x - zp_in), requantized by s_in / s_out; float32 for calibration. Kernel:
runtime/mcu_mean_s8.c (MEAN's, given the multiplier without MEAN's 1/count fold).
"""
from __future__ import annotations

import numpy as np

from mcutool.ir import Graph, MeanAttrs, Op
from mcutool.ops import register
from mcutool.ops.common import kind_of, qparams
from mcutool.ops.fixedpoint import requantize_multiplier
from mcutool.ops.kernel import KernelParams, int8_qparams, quant
from mcutool.ops.mean import mean_int8
from mcutool.ops.reduce_max import reduce_fields


def _reference_sum(graph, op, args):
    x_t, out_t = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    axes = tuple(op.attrs.axes)
    if kind_of(graph, op) == "float":
        return [np.sum(np.asarray(args[0], np.float32), axis=axes, keepdims=op.attrs.keep_dims, dtype=np.float32)]
    s, z = qparams(op, x_t, "input")
    so, zo = qparams(op, out_t, "output")
    m, sh = requantize_multiplier(s, so)
    return [mean_int8(args[0], axes=axes, keep_dims=op.attrs.keep_dims, in_zp=z, multiplier=m, shift=sh,
                      out_zp=zo, out_dtype=out_t.dtype, compute_sum=True)]


# ---- the runtime/ kernel's parameters (TFLite's Prepare, at compile time)

def kernel_params(graph: Graph, op: Op) -> KernelParams:
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    xq, yq = int8_qparams(op, x, "input"), int8_qparams(op, y, "output")
    m, sh = requantize_multiplier(xq[0], yq[0])
    fields = {**reduce_fields(graph, op), "input_offset": -xq[1], "output_offset": yq[1], "quant": quant(m, sh)}
    return KernelParams("mcu_mean_s8", "mcu_mean_params", fields)


register("sum", MeanAttrs, _reference_sum, kernel_params)
