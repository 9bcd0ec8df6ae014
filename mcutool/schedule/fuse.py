"""Fuse elementwise chains whose output depends on one int8 input value alone into one lookup table.

Swish as exporters write it (EfficientNet, MobileNetV3's SiLU): s = LOGISTIC(x); y = MUL(x, s) (in a QDQ ONNX
model s is a `lut`: the importer's table of Sigmoid to the model's scale). Run as written,
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


def _table_pair(graph: Graph, op: Op, consumers) -> Op | None:
    """The op that makes `op` (a LOGISTIC, or a `lut`: an ONNX QDQ Sigmoid as the importer tabulates it) half of
    x * op(x), or the `lut` reading op's output (two tables in a row: one), or None."""
    if op.kind not in ("logistic", "lut") or len(consumers[op.outputs[0]]) != 1 or op.outputs[0] in graph.outputs:
        return None
    nxt = consumers[op.outputs[0]][0]
    x, s = op.inputs[0], op.outputs[0]
    if not ((nxt.kind == "mul" and sorted(nxt.inputs) == sorted([x, s]))
            or (nxt.kind == "lut" and op.kind == "lut" and nxt.inputs == [s])):
        return None
    tensors = [graph.tensor(n) for n in (x, s, nxt.outputs[0])]
    same = tensors[0].shape == tensors[1].shape == tensors[2].shape
    return nxt if same and all(_int8_per_tensor(t) for t in tensors) else None


def _table(graph: Graph, logistic: Op, mul: Op) -> tuple[int, ...]:
    """y for each of the 256 int8 values of x, by the reference's LOGISTIC (or table) and MUL (or table) on a
    256-element graph."""
    from .. import reference
    x, s, y = (graph.tensor(n) for n in (logistic.inputs[0], logistic.outputs[0], mul.outputs[0]))
    g = Graph("swish_table", inputs=[x.name], outputs=[y.name])
    for t in (x, s, y):
        g.add_tensor(Tensor(t.name, (1, 256), t.dtype, t.quant))
    g.ops = [logistic, mul]
    values = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    return tuple(int(v) for v in reference.run(g, {x.name: values})[y.name].reshape(-1))


def fuse_swish(graph: Graph) -> Graph:
    """`graph` with every int8 x * logistic(x) as one `lut` op (named after the MUL, writing its output), and
    tables in a row (the ONNX importer's, say Erf then Add 1 of a GELU) as one table; repeated, so that a GELU
    x * table(x) then * 0.5 ends as one table."""
    while True:
        fused = _fuse_pairs(graph)
        if fused is graph:
            return graph
        graph = fused


def _fuse_pairs(graph: Graph) -> Graph:
    consumers = graph.consumers()
    pairs = {}
    for op in graph.ops:
        nxt = _table_pair(graph, op, consumers)
        if nxt is not None and op.name not in pairs and not any(p is op for p in pairs.values()):
            pairs[nxt.name] = op
    pairs = {k: v for k, v in pairs.items() if k not in {p.name for p in pairs.values()}}  # disjoint pairs
    if not pairs:
        return graph
    gone = {op.name for op in pairs.values()}
    ops = []
    for op in graph.ops:
        if op.name in gone:
            continue
        first = pairs.get(op.name)
        if first is not None:
            op = Op(op.name, "lut", [first.inputs[0]], list(op.outputs), LutAttrs(_table(graph, first, op)))
        ops.append(op)
    dropped = {op.outputs[0] for op in pairs.values()}
    out = Graph(graph.name, {n: t for n, t in graph.tensors.items() if n not in dropped}, ops, list(graph.inputs),
                list(graph.outputs))
    out.validate()
    return out
