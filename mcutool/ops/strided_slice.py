"""STRIDED_SLICE: TFLite Micro's strided_slice.cc / strided_slice_common.cc over `reference/strided_slice.h`
(StridedSliceStartForAxis / StridedSliceEndForAxis of `strided_slice_logic.h`): constant begin/end/strides, the
begin, end and shrink-axis masks (TFLite Micro sets the ellipsis and new-axis masks to 0; the importer refuses
models that set them). Values move unchanged (input and output share quantization), so any dtype runs in the
reference. Kernels: runtime/mcu_strided_slice_s8.c, runtime/mcu_strided_slice_s16.c.
"""
from __future__ import annotations

import numpy as np

from mcutool.errors import UserError
from mcutool.ir import Graph, Op, StridedSliceAttrs
from mcutool.ops import register
from mcutool.ops.common import require_same_quant, where
from mcutool.ops.kernel import KernelParams, dims, int_qparams, kernel_error, kernel_for, rank_pad, same_qparams

KERNELS = {("int8", "int8"): "mcu_strided_slice_s8", ("int16", "int16"): "mcu_strided_slice_s16"}


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
    kept = tuple(len(range(*rng)) for axis, rng in enumerate(ranges) if not a.shrink_axis_mask & (1 << axis))
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


register("strided_slice", StridedSliceAttrs, _reference, kernel_params, dtypes=("int8", "int16"))
