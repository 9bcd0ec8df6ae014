"""GATHER (`micro/kernels/gather.cc`): slices of the input along `axis` picked by int32 indices, the first
`batch_dims` axes of input and indices paired; values unchanged. An index outside [0, extent) is an error, as in
TFLite Micro. Kernel: runtime/mcu_gather_s8.c, with the indices a constant array (firmware needs them constant).
"""
from __future__ import annotations

import numpy as np

from mcutool.errors import UserError
from mcutool.ir import GatherAttrs, Graph, Op
from mcutool.ops import register
from mcutool.ops.common import require_moved_values, unsupported, where
from mcutool.ops.kernel import CRef, KernelParams, check_moved, kernel_error


def _geometry(graph: Graph, op: Op) -> tuple[int, int, int, int, int, int]:
    """(axis, batch, outer, axis_size, coords, inner) of TFLite Micro's loops, the output shape checked."""
    x, idx, y = (graph.tensor(n) for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    r, ri = len(x.shape), len(idx.shape)
    axis = op.attrs.axis + r if op.attrs.axis < 0 else op.attrs.axis
    bd = op.attrs.batch_dims + ri if op.attrs.batch_dims < 0 else op.attrs.batch_dims
    if idx.dtype != "int32":
        raise unsupported(op, f"indices of dtype {idx.dtype} (TFLite Micro's GATHER takes int32)")
    if not (0 <= axis < r and 0 <= bd <= axis and bd <= ri and x.shape[:bd] == idx.shape[:bd]):
        raise UserError(f"{where(op)}: axis {op.attrs.axis} and batch_dims {op.attrs.batch_dims} do not fit the "
                        f"input {x.shape} and indices {idx.shape}")
    expected = x.shape[:axis] + idx.shape[bd:] + x.shape[axis + 1:]
    if expected != y.shape:
        raise UserError(f"{where(op)}: the gathered shape is {expected}, the output {y.name!r} has {y.shape}")
    prod = lambda s: int(np.prod(s, dtype=np.int64))  # noqa: E731
    return (axis, prod(x.shape[:bd]), prod(x.shape[bd:axis]), x.shape[axis], prod(idx.shape[bd:]),
            prod(x.shape[axis + 1:]))


def _checked_indices(op: Op, indices, axis_size: int) -> np.ndarray:
    idx = np.asarray(indices, dtype=np.int64)
    bad = idx[(idx < 0) | (idx >= axis_size)]
    if bad.size:
        raise UserError(f"{where(op)}: index {int(bad[0])} is outside [0, {axis_size}) (TFLite Micro fails too)")
    return idx


def _reference_gather(graph, op, args):
    require_moved_values(graph, op, [op.inputs[0], op.outputs[0]])
    _, batch, outer, axis_size, coords, inner = _geometry(graph, op)
    idx = _checked_indices(op, args[1], axis_size).reshape(batch, coords)
    x = np.asarray(args[0]).reshape(batch, outer, axis_size, inner)
    return [np.stack([x[b][:, idx[b], :] for b in range(batch)])]


# ---- the runtime/ kernel's parameters (TFLite's Prepare, at compile time)

def kernel_params(graph: Graph, op: Op) -> KernelParams:
    """GATHER: TFLite Micro's loops (batch, outer, coordinate), one memcpy of `inner` bytes each."""
    x, idx, y = (graph.tensor(n) for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    check_moved(op, [x, y])
    if not idx.is_const:
        raise kernel_error(op, f"indices {idx.name!r} are computed at run time; the firmware kernel takes "
                           "constant indices")
    _, batch, outer, axis_size, coords, inner = _geometry(graph, op)
    values = _checked_indices(op, idx.data, axis_size).reshape(-1)
    fields = {"batch": batch, "outer": outer, "axis_size": axis_size, "coords": coords, "inner": inner,
              "indices": CRef("indices")}
    return KernelParams("mcu_gather_s8", "mcu_gather_params", fields,
                        arrays={"indices": ("int32_t", [int(v) for v in values])})


register("gather", GatherAttrs, _reference_gather, kernel_params)
