"""STRIDED_SLICE: TFLite Micro's strided_slice.cc / strided_slice_common.cc over `reference/strided_slice.h`
(StridedSliceStartForAxis / StridedSliceEndForAxis of `strided_slice_logic.h`): constant begin/end/strides, the
begin, end and shrink-axis masks, one spec entry per input axis. TensorFlow's sparse spec -- an ellipsis, new
axes, fewer entries than axes -- is made dense at import (`dense_spec`, as TensorFlow and tflite-runtime do;
TFLite Micro's kernel zeroes the ellipsis and new-axis masks and reads one entry per axis, so it does not run
such slices as TensorFlow means them). Values move unchanged (input and output share quantization), so any
dtype runs in the reference. Kernels: runtime/mcu_strided_slice_s8.c, runtime/mcu_strided_slice_s16.c.
"""
from __future__ import annotations

import numpy as np

from mcutool.errors import UserError
from mcutool.ir import Graph, Op, StridedSliceAttrs
from mcutool.ops import register
from mcutool.ops.common import require_same_quant, where
from mcutool.ops.kernel import KernelParams, dims, int_qparams, kernel_error, kernel_for, rank_pad, same_qparams

KERNELS = {("int8", "int8"): "mcu_strided_slice_s8", ("int16", "int16"): "mcu_strided_slice_s16"}


def dense_spec(rank: int, begin, end, strides, begin_mask=0, end_mask=0, ellipsis_mask=0, new_axis_mask=0,
               shrink_axis_mask=0) -> StridedSliceAttrs:
    """TensorFlow's sparse slice spec (`x[1:3, ..., tf.newaxis, 2]`) as one entry per input axis: the ellipsis
    (the first set bit of `ellipsis_mask`; implicitly after the last entry when there is none) stands for full
    ranges over the axes no other entry names, a new axis names no input axis (the caller reshapes the output
    to insert it), every other entry names the next input axis with its mask bits."""
    begin, end, strides = list(begin), list(end), list(strides)
    if not ellipsis_mask:
        ellipsis_mask = 1 << len(begin)
        begin, end, strides = begin + [0], end + [0], strides + [1]
    ellipsis_mask &= -ellipsis_mask  # only the first ellipsis counts
    named = sum(1 for i in range(len(begin)) if not (ellipsis_mask | new_axis_mask) & (1 << i))
    if named > rank:
        raise ValueError(f"the slice names {named} axes of a rank-{rank} tensor")
    entries = []  # (begin, end, stride, begin bit, end bit, shrink bit) per input axis
    for i in range(len(begin)):
        bit = 1 << i
        if ellipsis_mask & bit:
            entries += [(0, 0, 1, True, True, False)] * (rank - named)
        elif not new_axis_mask & bit:
            entries.append((int(begin[i]), int(end[i]), int(strides[i]), bool(begin_mask & bit),
                            bool(end_mask & bit), bool(shrink_axis_mask & bit)))

    def mask(k: int) -> int:
        return sum(1 << axis for axis, e in enumerate(entries) if e[k])

    return StridedSliceAttrs(tuple(e[0] for e in entries), tuple(e[1] for e in entries),
                             tuple(e[2] for e in entries), mask(3), mask(4), mask(5))


def sliced_shape(in_shape, a: StridedSliceAttrs) -> tuple[int, ...]:
    """The output shape of a dense slice: the length of every axis range, shrunk axes dropped."""
    return tuple(len(range(*rng)) for axis, rng in enumerate(axis_ranges(in_shape, a))
                 if not a.shrink_axis_mask & (1 << axis))


def _clamp(v: int, lo: int, hi: int) -> int:
    return min(max(v, lo), hi)


def axis_ranges(shape, a: StridedSliceAttrs) -> list[tuple[int, int, int]]:
    """(start, stop, stride) per input axis, a Python range over that axis (StridedSliceStartForAxis /
    StridedSliceEndForAxis: negative indices count from the end, clamped, then the masks override)."""
    out = []
    for axis, size in enumerate(shape):
        stride = a.strides[axis]
        start = a.begin[axis] + (size if a.begin[axis] < 0 else 0)
        start = _clamp(start, 0, size) if stride > 0 else _clamp(start, -1, size - 1)
        if a.begin_mask & (1 << axis):
            start = 0 if stride > 0 else size - 1
        if a.shrink_axis_mask & (1 << axis):
            stop = start if start >= size else start + 1
        else:
            stop = a.end[axis] + (size if a.end[axis] < 0 else 0)
            stop = _clamp(stop, 0, size) if stride > 0 else _clamp(stop, -1, size - 1)
            if a.end_mask & (1 << axis):
                stop = size if stride > 0 else -1
        out.append((start, stop, stride))
    return out


def check(op: Op, in_shape, out_shape) -> list[tuple[int, int, int]]:
    """The axis ranges, after checking the attributes against the input and output shapes."""
    a = op.attrs
    r = len(in_shape)
    if not (len(a.begin) == len(a.end) == len(a.strides) == r):
        raise UserError(f"{where(op)}: begin/end/strides of lengths {len(a.begin)}/{len(a.end)}/{len(a.strides)} "
                        f"for a rank-{r} input")
    if any(s == 0 for s in a.strides):
        raise UserError(f"{where(op)}: a stride is 0 ({a.strides})")
    ranges = axis_ranges(in_shape, a)
    kept = sliced_shape(in_shape, a)
    if kept != tuple(out_shape):
        raise UserError(f"{where(op)}: slicing {tuple(in_shape)} with begin {a.begin}, end {a.end}, strides "
                        f"{a.strides} and masks ({a.begin_mask}, {a.end_mask}, {a.shrink_axis_mask}) gives "
                        f"{kept}, but the output has shape {tuple(out_shape)}")
    return ranges


def strided_slice(x, ranges) -> np.ndarray:
    """reference_ops::StridedSlice: the elements at the ranges' indices, in row-major order."""
    return np.asarray(x)[np.ix_(*[np.arange(*rng, dtype=np.int64) for rng in ranges])]


def _reference(graph, op, args):
    require_same_quant(graph, op)
    ranges = check(op, graph.tensor(op.inputs[0]).shape, graph.tensor(op.outputs[0]).shape)
    return [strided_slice(args[0], ranges)]


# ---- the runtime/ kernel's parameters (TFLite's Prepare, at compile time)

def kernel_params(graph: Graph, op: Op) -> KernelParams:
    """STRIDED_SLICE: output element (n, h, w, c) of the 4-D extents `count` reads input element
    start + (n, h, w, c) * stride."""
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    function, cin, cout = kernel_for(op, x, y, KERNELS)
    xq, yq = int_qparams(op, x, "input", (x.dtype,)), int_qparams(op, y, "output", (x.dtype,))
    if not same_qparams(xq, yq):
        raise kernel_error(op, "input and output quantization differ (STRIDED_SLICE moves values without "
                           "rescaling them)")
    k, _ = rank_pad(op, x.shape)
    ranges = [(0, 1, 1)] * k + check(op, x.shape, y.shape)
    fields = {
        "input": dims(x.shape),
        "start": [s for s, _, _ in ranges],
        "stride": [st for _, _, st in ranges],
        "count": [len(range(*rng)) for rng in ranges],
    }
    return KernelParams(function, "mcu_strided_slice_params", fields, in_ctype=cin, out_ctype=cout)


register("strided_slice", StridedSliceAttrs, _reference, kernel_params)
