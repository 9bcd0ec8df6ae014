"""SPLIT and SPLIT_V (`micro/kernels/split.cc`, `split_v.cc`): the input cut along `axis` into consecutive
outputs, their extents along the axis given by the output tensors; UNPACK (`micro/kernels/unpack.cc`): cut into
extents of 1 with the axis dropped. Values unchanged. Kernel (both): runtime/mcu_split_s8.c, which writes several
outputs (KernelParams.num_outputs).
"""
from __future__ import annotations

import numpy as np

from mcutool.errors import UserError
from mcutool.ir import AxisAttrs, Graph, Op
from mcutool.ops import register
from mcutool.ops.common import require_moved_values, where
from mcutool.ops.kernel import MOVED_DTYPES, CRef, KernelParams, check_moved, dims4, kernel_error, rank_pad


def _pieces(graph: Graph, op: Op) -> tuple[int, list[int]]:
    """(axis in [0, rank), each output's extent along it), checked against the input."""
    x = graph.tensor(op.inputs[0])
    outs = [graph.tensor(n) for n in op.outputs]
    r = len(x.shape)
    if not -r <= op.attrs.axis < r:
        raise UserError(f"{where(op)}: axis {op.attrs.axis} of a rank-{r} input")
    axis = op.attrs.axis % r
    sizes = []
    for t in outs:
        shape = t.shape if op.kind == "split" else t.shape[:axis] + (1,) + t.shape[axis:]
        if len(shape) != r or any(d != e for j, (d, e) in enumerate(zip(shape, x.shape)) if j != axis):
            raise UserError(f"{where(op)}: output {t.name!r} of shape {t.shape} is not a piece of the input "
                            f"{x.shape} along axis {axis}")
        sizes.append(shape[axis])
    if sum(sizes) != x.shape[axis]:
        raise UserError(f"{where(op)}: the outputs' extents along axis {axis} add up to {sum(sizes)}, the input "
                        f"has {x.shape[axis]}")
    return axis, sizes


def _reference_split(graph, op, args):
    require_moved_values(graph, op, op.inputs[:1] + op.outputs)
    axis, sizes = _pieces(graph, op)
    parts = np.split(np.asarray(args[0]), np.cumsum(sizes)[:-1], axis=axis)
    return [p.reshape(graph.tensor(n).shape) for p, n in zip(parts, op.outputs)]


# ---- the runtime/ kernel's parameters (TFLite's Prepare, at compile time)

def kernel_params(graph: Graph, op: Op) -> KernelParams:
    """SPLIT / SPLIT_V / UNPACK: for each of `outer` slices (the extents before the axis), output i gets the
    next copy_size[i] bytes -- the inverse of CONCATENATION's copy; int16 as bytes."""
    x = graph.tensor(op.inputs[0])
    es = check_moved(op, [x] + [graph.tensor(n) for n in op.outputs], MOVED_DTYPES)
    k, r = rank_pad(op, x.shape)
    if r == 0:
        raise kernel_error(op, "a scalar input")
    axis, sizes = _pieces(graph, op)
    x4 = dims4(x.shape)
    inner = int(np.prod(x4[axis + k + 1:], dtype=np.int64)) * es  # bytes
    fields = {"num_outputs": len(sizes), "outer": int(np.prod(x4[:axis + k], dtype=np.int64)),
              "copy_size": CRef("copy_size")}
    return KernelParams("mcu_split_s8", "mcu_split_params", fields,
                        arrays={"copy_size": ("int32_t", [s * inner for s in sizes])}, num_outputs=len(sizes),
                        output_array=True)


register("split", AxisAttrs, _reference_split, kernel_params, dtypes=MOVED_DTYPES)
register("unpack", AxisAttrs, _reference_split, kernel_params, dtypes=MOVED_DTYPES)
