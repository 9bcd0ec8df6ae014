"""ARG_MAX and ARG_MIN (`reference/arg_min_max.h`): the index along `axis` of the largest (smallest) value, the
first one on ties; int32 output (int64 in the reference only). Kernel: runtime/mcu_arg_min_max_s8.c, writing
int32 indices.
"""
from __future__ import annotations

import numpy as np

from mcutool.errors import UserError
from mcutool.ir import AxisAttrs, Graph, Op
from mcutool.ops import register
from mcutool.ops.common import unsupported, where
from mcutool.ops.kernel import KernelParams, int8_qparams, kernel_error


def _geometry(graph: Graph, op: Op) -> tuple[int, int, int, int]:
    """(axis, outer, axis_size, inner), the output shape (the input's without the axis) checked."""
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    r = len(x.shape)
    if not -r <= op.attrs.axis < r:
        raise UserError(f"{where(op)}: axis {op.attrs.axis} of a rank-{r} input")
    axis = op.attrs.axis % r
    if y.shape != x.shape[:axis] + x.shape[axis + 1:]:
        raise UserError(f"{where(op)}: the output {y.name!r} of shape {y.shape} is not the input {x.shape} "
                        f"without axis {axis}")
    if y.dtype not in ("int32", "int64"):
        raise unsupported(op, f"an index output of dtype {y.dtype} (TFLite writes int32 or int64)")
    prod = lambda s: int(np.prod(s, dtype=np.int64))  # noqa: E731
    return axis, prod(x.shape[:axis]), x.shape[axis], prod(x.shape[axis + 1:])


def _reference(pick):
    def reference(graph, op, args):
        axis = _geometry(graph, op)[0]
        return [pick(np.asarray(args[0]), axis=axis)]  # numpy also returns the first index on ties
    return reference


# ---- the runtime/ kernel's parameters (TFLite's Prepare, at compile time)

def kernel_params(graph: Graph, op: Op) -> KernelParams:
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    int8_qparams(op, x, "input")
    if y.dtype != "int32":
        raise kernel_error(op, f"the index output {y.name!r} is {y.dtype}; the kernel writes int32")
    _, outer, axis_size, inner = _geometry(graph, op)
    fields = {"outer": outer, "axis_size": axis_size, "inner": inner, "is_min": int(op.kind == "arg_min")}
    return KernelParams("mcu_arg_min_max_s8", "mcu_arg_min_max_params", fields, out_ctype="int32_t")


register("arg_max", AxisAttrs, _reference(np.argmax), kernel_params)
register("arg_min", AxisAttrs, _reference(np.argmin), kernel_params)
