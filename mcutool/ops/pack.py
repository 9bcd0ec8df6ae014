"""PACK (`micro/kernels/pack.cc`): N same-shaped tensors stacked along a new axis; values unchanged (TFLite
Micro copies them whatever their quantization; mcutool requires it equal). Kernel: runtime/mcu_concat_s8.c
(PACK is CONCATENATION along an axis of extent 1 per input).
"""
from __future__ import annotations

import numpy as np

from mcutool.errors import UserError
from mcutool.ir import AxisAttrs, Graph, Op
from mcutool.ops import register
from mcutool.ops.common import require_moved_values, where
from mcutool.ops.kernel import MOVED_DTYPES, CRef, KernelParams, check_moved, dims4, rank_pad


def _axis(graph: Graph, op: Op) -> int:
    y = graph.tensor(op.outputs[0])
    r = len(y.shape)
    if not -r <= op.attrs.axis < r:
        raise UserError(f"{where(op)}: axis {op.attrs.axis} of a rank-{r} output")
    axis = op.attrs.axis % r
    piece = y.shape[:axis] + y.shape[axis + 1:]
    if y.shape[axis] != len(op.inputs) or any(graph.tensor(n).shape != piece for n in op.inputs):
        raise UserError(f"{where(op)}: {len(op.inputs)} inputs of shapes "
                        f"{[graph.tensor(n).shape for n in op.inputs]} do not stack to {y.shape} along axis {axis}")
    return axis


def _reference_pack(graph, op, args):
    require_moved_values(graph, op, op.outputs[:1] + op.inputs)
    return [np.stack([np.asarray(a) for a in args], axis=_axis(graph, op))]


# ---- the runtime/ kernel's parameters (TFLite's Prepare, at compile time)

def kernel_params(graph: Graph, op: Op) -> KernelParams:
    """PACK: for each of `outer` slices (the output's extents before the axis), every input's next block (of
    bytes: int16 too)."""
    y = graph.tensor(op.outputs[0])
    inputs = [graph.tensor(n) for n in op.inputs]
    es = check_moved(op, inputs + [y], MOVED_DTYPES)
    k, _ = rank_pad(op, y.shape)
    axis = _axis(graph, op)
    y4 = dims4(y.shape)
    block = int(np.prod(y4[axis + k + 1:], dtype=np.int64)) * es  # bytes
    fields = {"num_inputs": len(inputs), "outer": int(np.prod(y4[:axis + k], dtype=np.int64)),
              "copy_size": CRef("copy_size"), "table": None}
    return KernelParams("mcu_concat_s8", "mcu_concat_params", fields,
                        arrays={"copy_size": ("int32_t", [block] * len(inputs))},
                        num_inputs=len(inputs), input_array=True)


register("pack", AxisAttrs, _reference_pack, kernel_params, dtypes=MOVED_DTYPES)
