"""MAXIMUM, MINIMUM: TFLite Micro's `maximum_minimum.cc` (reference_ops::MaximumMinimumBroadcastSlow): the raw
values compared element by element, with broadcasting; no requantization, so the inputs and the output share one
quantization (what the TFLite converter emits). float32 for calibration. Kernel: runtime/mcu_minmax_s8.c.
"""
from __future__ import annotations

import numpy as np

from mcutool.ir import Graph, NoAttrs, Op
from mcutool.ops import register
from mcutool.ops.common import int8_operands, kind_of_all, same_quant, unsupported
from mcutool.ops.kernel import KernelParams, check_broadcast, const_operands, dims, int8_qparams, kernel_error

_NUMPY = {"maximum": np.maximum, "minimum": np.minimum}
_ROLES = ("first input", "second input", "output")


def _check_same_quant(graph: Graph, op: Op, error) -> None:
    a, b, y = (graph.tensor(n) for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    for t in (a, b):
        if not same_quant(t, y):
            raise error(op, f"input {t.name!r} is quantized differently from the output {y.name!r}; TFLite's "
                        f"{op.kind.upper()} compares raw values, so its inputs and output must share one scale and "
                        "zero point (requantize the input first)")


def _reference(graph, op, args):
    fn = _NUMPY[op.kind]
    if kind_of_all(graph, op) == "float":
        return [fn(np.asarray(args[0], np.float32), np.asarray(args[1], np.float32))]
    int8_operands(graph, op, _ROLES)
    _check_same_quant(graph, op, unsupported)
    return [fn(np.asarray(args[0]), np.asarray(args[1]))]


def kernel_params(graph: Graph, op: Op) -> KernelParams:
    """reference_ops::MaximumMinimumBroadcastSlow on int8: shapes only."""
    a, b, y = (graph.tensor(n) for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    int8_operands(graph, op, _ROLES, int8_qparams)
    _check_same_quant(graph, op, kernel_error)
    check_broadcast(op, a, b, y)
    fields = {"input1": dims(a.shape), "input2": dims(b.shape), "output": dims(y.shape)}
    return const_operands(graph, op, KernelParams(f"mcu_{op.kind}_s8", "mcu_broadcast_params", fields, num_inputs=2))


register("maximum", NoAttrs, _reference, kernel_params)
register("minimum", NoAttrs, _reference, kernel_params)
