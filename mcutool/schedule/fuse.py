"""Fuse elementwise chains whose output depends on one int8 input value alone into one lookup table.

Swish as exporters write it (EfficientNet, MobileNetV3's SiLU): s = LOGISTIC(x); y = MUL(x, s). Run as written,
x and s are both whole tensors at the MUL (and x may not be overwritten while s is made). But y[i] depends on
x[i] only, so the 256 values y takes are computed at compile time with the reference's own LOGISTIC and MUL
(TFLite's integer arithmetic: bit-exact by construction) and the pair becomes one `lut` op, which runs in place
(mcu_lut_s8 reads element i before writing it): one tensor live instead of two.
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph, LutAttrs, Op, Tensor


def _int8_per_tensor(t: Tensor) -> bool:
    return t.dtype == "int8" and t.quant is not None and not t.quant.per_channel


def _swish_pair(graph: Graph, op: Op, consumers) -> Op | None:
    """The MUL that makes `op` (a LOGISTIC) half of x * logistic(x), or None."""
    if op.kind != "logistic" or len(consumers[op.outputs[0]]) != 1 or op.outputs[0] in graph.outputs:
        return None
    mul = consumers[op.outputs[0]][0]
    x, s = op.inputs[0], op.outputs[0]
    if mul.kind != "mul" or sorted(mul.inputs) != sorted([x, s]):
        return None
    tensors = [graph.tensor(n) for n in (x, s, mul.outputs[0])]
    same = tensors[0].shape == tensors[1].shape == tensors[2].shape
    return mul if same and all(_int8_per_tensor(t) for t in tensors) else None


def _table(graph: Graph, logistic: Op, mul: Op) -> tuple[int, ...]:
    """y for each of the 256 int8 values of x, by the reference's LOGISTIC and MUL on a 256-element graph."""
    from .. import reference
    x, s, y = (graph.tensor(n) for n in (logistic.inputs[0], logistic.outputs[0], mul.outputs[0]))
    g = Graph("swish_table", inputs=[x.name], outputs=[y.name])
    for t in (x, s, y):
        g.add_tensor(Tensor(t.name, (1, 256), t.dtype, t.quant))
    g.ops = [logistic, mul]
    values = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    return tuple(int(v) for v in reference.run(g, {x.name: values})[y.name].reshape(-1))


def fuse_swish(graph: Graph) -> Graph:
    """`graph` with every int8 x * logistic(x) as one `lut` op (named after the MUL, writing its output)."""
    consumers = graph.consumers()
    pairs = {}
    for op in graph.ops:
        mul = _swish_pair(graph, op, consumers)
        if mul is not None:
            pairs[mul.name] = op
    if not pairs:
        return graph
    gone = {op.name for op in pairs.values()}
    ops = []
    for op in graph.ops:
        if op.name in gone:
            continue
        logistic = pairs.get(op.name)
        if logistic is not None:
            op = Op(op.name, "lut", [logistic.inputs[0]], list(op.outputs), LutAttrs(_table(graph, logistic, op)))
        ops.append(op)
    dropped = {op.outputs[0] for op in pairs.values()}
    out = Graph(graph.name, {n: t for n, t in graph.tensors.items() if n not in dropped}, ops, list(graph.inputs),
                list(graph.outputs))
    out.validate()
    return out
