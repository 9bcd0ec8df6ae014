"""Fuse elementwise chains whose output depends on one int8 input value alone into one lookup table.

Swish as exporters write it (EfficientNet, MobileNetV3's SiLU): s = LOGISTIC(x); y = MUL(x, s). Run as written,
x and s are both whole tensors at the MUL (and x may not be overwritten while s is made). But y[i] depends on
x[i] only, so the 256 values y takes are computed at compile time with the reference's own LOGISTIC and MUL
(TFLite's integer arithmetic: bit-exact by construction) and the pair becomes one `lut` op, which runs in place
(mcu_lut_s8 reads element i before writing it): one tensor live instead of two.

The same holds for any chain of elementwise ops from one tensor x (`chain`): unary activations and
requantizations, and binary ops whose other operand is x, another tensor of the chain, or a one-element
constant -- hard-swish as written through ONNX, x * RELU6(x + 3) * (1/6) (ADD, RELU6, MUL, MUL), is one table
too. Every tensor of the chain but its last must be read inside it only.
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph, LutAttrs, Op, Tensor

UNARY = ("logistic", "relu", "relu6", "hard_swish", "tanh", "elu", "abs", "leaky_relu", "quantize", "lut")
BINARY = ("add", "sub", "mul", "maximum", "minimum")


def int8_per_tensor(t: Tensor) -> bool:
    return t.dtype == "int8" and t.quant is not None and not t.quant.per_channel


def _pointwise(graph: Graph, op: Op, inside: set[str], shape: tuple[int, ...]) -> bool:
    """Is `op` elementwise on tensors of `inside` (and one-element constants), int8, of the chain's shape?"""
    if len(op.outputs) != 1 or not int8_per_tensor(graph.tensor(op.outputs[0])) \
            or graph.tensor(op.outputs[0]).shape != shape:
        return False
    acts = [n for n in op.inputs if n and not graph.tensor(n).is_const]
    consts = [graph.tensor(n) for n in op.inputs if n and graph.tensor(n).is_const]
    if not acts or not all(n in inside for n in acts):
        return False
    if op.kind in UNARY:
        return len(acts) == 1 and not consts
    return op.kind in BINARY and len(op.inputs) == 2 \
        and all(c.size == 1 and int8_per_tensor(c) for c in consts)


def chain(graph: Graph, x: str, ops: list[Op], consumers) -> list[Op]:
    """The longest run of `ops` (the graph's ops after x is made) computing one tensor from x elementwise, with
    every tensor it makes but the last read inside it only and no graph output but the last ([] if under 2 ops)."""
    t = graph.tensor(x)
    if not int8_per_tensor(t):
        return []
    inside, run, best = {x}, [], []
    for op in ops:
        if not _pointwise(graph, op, inside, t.shape):
            if any(n in inside and n != x for n in op.inputs):
                break  # a tensor of the run read outside it: no later end can fuse it away
            continue
        run.append(op)
        inside.add(op.outputs[0])
        made = {o.outputs[0] for o in run}
        names = {o.name for o in run}
        inner = made - {op.outputs[0]}
        if len(run) >= 2 and not inner & set(graph.outputs) \
                and all(c.name in names for n in inner for c in consumers[n]):
            best = list(run)
    return best


def chain_table(graph: Graph, ops: list[Op]) -> tuple[int, ...]:
    """y for each of the 256 int8 values of x, by the reference running `ops` on 256-element tensors."""
    from .. import reference
    x = next(n for n in ops[0].inputs if n and not graph.tensor(n).is_const)
    y = ops[-1].outputs[0]
    g = Graph("lut_table", inputs=[x], outputs=[y])
    for name in {x} | {o.outputs[0] for o in ops}:
        t = graph.tensor(name)
        g.add_tensor(Tensor(name, (1, 256), t.dtype, t.quant))
    for o in ops:
        for n in o.inputs:
            if n and graph.tensor(n).is_const:
                g.add_tensor(graph.tensor(n))
    g.ops = list(ops)
    values = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    return tuple(int(v) for v in reference.run(g, {x: values})[y].reshape(-1))


def fuse_swish(graph: Graph) -> Graph:
    """`graph` with every chain (swish x * logistic(x), hard-swish as exported, ...) as one `lut` op named after
    the chain's last op, writing its output."""
    consumers = graph.consumers()
    fused: dict[str, list[Op]] = {}  # last op's name -> the chain
    taken: set[str] = set()
    for i, op in enumerate(graph.ops):
        if op.name in taken:
            continue
        for x in dict.fromkeys(n for n in op.inputs if n and not graph.tensor(n).is_const):
            run = chain(graph, x, [o for o in graph.ops[i:] if o.name not in taken], consumers)
            if run and run[0] is op:
                fused[run[-1].name] = run
                taken |= {o.name for o in run}
                break
    if not fused:
        return graph
    ops, dropped = [], set()
    for op in graph.ops:
        run = fused.get(op.name)
        if run is not None:
            x = next(n for n in run[0].inputs if n and not graph.tensor(n).is_const)
            op = Op(op.name, "lut", [x], list(op.outputs), LutAttrs(chain_table(graph, run)))
            dropped |= {o.outputs[0] for o in run[:-1]}
        elif op.name in taken:
            continue
        ops.append(op)
    used = {n for op in ops for n in op.inputs}
    out = Graph(graph.name, {n: t for n, t in graph.tensors.items() if n not in dropped
                             and not (t.is_const and n not in used)}, ops, list(graph.inputs), list(graph.outputs))
    out.validate()
    return out
