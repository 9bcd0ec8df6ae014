"""SLICE (`reference/slice.h`): the block of `size` extents starting at `begin`; values unchanged.
Kernel: runtime/mcu_slice_s8.c.
"""
from __future__ import annotations

import numpy as np

from mcutool.errors import UserError
from mcutool.ir import Graph, Op, SliceAttrs
from mcutool.ops import register
from mcutool.ops.common import require_same_quant, where
from mcutool.ops.kernel import MOVED_DTYPES, KernelParams, byte_dims, check_moved, rank_pad


def resolve_slice(shape, begin, size) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """TFLite's begin/size with size -1 meaning "to the end", as explicit (begin, size); ValueError when out of
    bounds."""
    shape, begin, size = tuple(shape), [int(b) for b in begin], [int(s) for s in size]
    if not len(begin) == len(size) == len(shape):
        raise ValueError(f"begin {begin} and size {size} do not have one entry per axis of a rank-{len(shape)} "
                         "tensor")
    size = [d - b if s == -1 else s for d, b, s in zip(shape, begin, size)]
    if any(b < 0 or s < 0 or b + s > d for d, b, s in zip(shape, begin, size)):
        raise ValueError(f"begin {begin} with size {size} reaches outside the input of shape {shape}")
    return tuple(begin), tuple(size)


def _check(graph: Graph, op: Op) -> tuple[tuple[int, ...], tuple[int, ...]]:
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    try:
        begin, size = resolve_slice(x.shape, op.attrs.begin, op.attrs.size)
    except ValueError as exc:
        raise UserError(f"{where(op)}: {exc}") from None
    if size != tuple(y.shape):
        raise UserError(f"{where(op)}: the slice has shape {size}, the output {y.name!r} {y.shape}")
    return begin, size


def _reference_slice(graph, op, args):
    require_same_quant(graph, op)
    begin, size = _check(graph, op)
    return [np.asarray(args[0])[tuple(slice(b, b + s) for b, s in zip(begin, size))]]


# ---- the runtime/ kernel's parameters (TFLite's Prepare, at compile time)

def kernel_params(graph: Graph, op: Op) -> KernelParams:
    """SLICE: reference_ops::Slice over NHWC extents (rank < 4 padded in front); int16 as bytes."""
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    es = check_moved(op, [x, y], MOVED_DTYPES)
    k, _ = rank_pad(op, x.shape)
    begin = [0] * k + list(_check(graph, op)[0])
    if len(x.shape):
        begin[3] *= es
    return KernelParams("mcu_slice_s8", "mcu_slice_params",
                        {"input": byte_dims(x.shape, es), "output": byte_dims(y.shape, es), "begin": begin})


register("slice", SliceAttrs, _reference_slice, kernel_params, dtypes=MOVED_DTYPES)
