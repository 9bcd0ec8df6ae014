"""MAXIMUM, MINIMUM: TFLite Micro's `maximum_minimum.cc` (reference_ops::MaximumMinimumBroadcastSlow): the raw
values compared element by element, with broadcasting; no requantization, so the inputs and the output share one
quantization (what the TFLite converter emits). int8 and int16; float32 for calibration. Kernels:
runtime/mcu_minmax_s8.c (mcu_maximum_s8/_s16, mcu_minimum_s8/_s16).
"""
from __future__ import annotations

import numpy as np

from mcutool.ir import Graph, NoAttrs, Op
from mcutool.ops import register
from mcutool.ops.common import kind_of_all, same_quant, unsupported
from mcutool.ops.kernel import KernelParams, check_broadcast, const_operands, dims, kernel_error

_NUMPY = {"maximum": np.maximum, "minimum": np.minimum}
_ROLES = ("first input", "second input", "output")


def _check_same_quant(graph: Graph, op: Op, error) -> None:
    a, b, y = (graph.tensor(n) for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    for t in (a, b):
        if not same_quant(t, y):
            raise error(op, f"input {t.name!r} is quantized differently from the output {y.name!r}; TFLite's "
                        f"{op.kind.upper()} compares raw values, so its inputs and output must share one scale and "
                        "zero point (requantize the input first)")


def _check_dtype(graph: Graph, op: Op, error) -> str:
    """int8 or int16 (16x8 models) for all three tensors: TFLite Micro compares raw values of one type."""
    dtypes = {graph.tensor(n).dtype for n in (op.inputs[0], op.inputs[1], op.outputs[0])}
    if len(dtypes) != 1 or not dtypes <= {"int8", "int16"}:
        raise error(op, f"tensor dtypes {sorted(dtypes)}; the integer {op.kind.upper()} takes int8 or int16 inputs "
                    "and output of one type")
    return dtypes.pop()


def _reference(graph, op, args):
    fn = _NUMPY[op.kind]
    if graph.tensor(op.outputs[0]).dtype == "float32" and kind_of_all(graph, op) == "float":
        return [fn(np.asarray(args[0], np.float32), np.asarray(args[1], np.float32))]
    _check_dtype(graph, op, unsupported)
    _check_same_quant(graph, op, unsupported)
    return [fn(np.asarray(args[0]), np.asarray(args[1]))]


def kernel_params(graph: Graph, op: Op) -> KernelParams:
    """reference_ops::MaximumMinimumBroadcastSlow on int8 or int16: shapes only."""
    a, b, y = (graph.tensor(n) for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    dtype = _check_dtype(graph, op, kernel_error)
    _check_same_quant(graph, op, kernel_error)
    check_broadcast(op, a, b, y)
    fields = {"input1": dims(a.shape), "input2": dims(b.shape), "output": dims(y.shape)}
    function = f"mcu_{op.kind}_{'s8' if dtype == 'int8' else 's16'}"
    return const_operands(graph, op, KernelParams(function, "mcu_broadcast_params", fields, num_inputs=2))


register("maximum", NoAttrs, _reference, kernel_params, dtypes=("int8", "int16"))
register("minimum", NoAttrs, _reference, kernel_params, dtypes=("int8", "int16"))
