"""REDUCE_MAX (`micro/kernels/reduce.cc` EvalMax -> `reference/reduce.h` ReduceGeneric with max): the largest
value over the reduced axes; int8 input and output share scale and zero point (TFLite Micro requires it), so
values are compared and moved, never rescaled. Kernel: runtime/mcu_reduce_max_s8.c.
"""
from __future__ import annotations

import numpy as np

from mcutool.ir import Graph, MeanAttrs, Op
from mcutool.ops import register
from mcutool.ops.common import require_same_quant
from mcutool.ops.kernel import KernelParams, check_moved, dims, kernel_error, rank_pad


def _reference_reduce_max(graph, op, args):
    require_same_quant(graph, op)
    return [np.max(np.asarray(args[0]), axis=tuple(op.attrs.axes), keepdims=op.attrs.keep_dims)]


# ---- the runtime/ kernel's parameters (TFLite's Prepare, at compile time)

def reduce_fields(graph: Graph, op: Op) -> dict:
    """The input's NHWC extents and the reduced axes as a bit mask (bit 0..3 = N, H, W, C), checked against the
    output's size; shared by the reductions' kernels (mean, sum, reduce_max)."""
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    k, r = rank_pad(op, x.shape)
    axes = sorted({int(a) % r for a in op.attrs.axes}) if r else []
    count = int(np.prod([x.shape[a] for a in axes], dtype=np.int64)) if axes else 1
    if y.size * count != x.size:
        raise kernel_error(op, f"reducing {x.shape} over axes {tuple(op.attrs.axes)} does not give {y.shape}")
    return {"input": dims(x.shape), "axis_mask": sum(1 << (a + k) for a in axes)}


def kernel_params(graph: Graph, op: Op) -> KernelParams:
    check_moved(op, [graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])])
    return KernelParams("mcu_reduce_max_s8", "mcu_reduce_params", reduce_fields(graph, op))


register("reduce_max", MeanAttrs, _reference_reduce_max, kernel_params)
