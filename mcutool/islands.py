"""Float islands inside an integer graph (Graph -> Graph): DEQUANTIZE -> float elementwise ops -> QUANTIZE.

The TFLite converter leaves ops it has no int8 kernel for in float between a DEQUANTIZE and a QUANTIZE (Keras 3's
LayerNormalization: DEQUANTIZE -> NEG -> QUANTIZE), and TFLite Micro runs them in float. Each output value of
such a chain depends on one int8 input value alone when every op in it is elementwise (output shape = input
shape, any constant operand a single value), so its 256 values are computed at compile time by the reference --
TFLite's own float arithmetic, the very computation the chain does -- and the chain becomes one `lut` op
(runtime/mcu_lut_s8.c): integer-only firmware, bit-exact with the float island by construction.
"""
from __future__ import annotations

from .ir import Graph, LutAttrs, Op
from .schedule.fuse import chain_table, int8_per_tensor


def _data_inputs(graph: Graph, op: Op) -> list[str] | None:
    """The op's one computed input, if every other operand is a single constant value; else None."""
    computed = [n for n in op.inputs if n and not graph.tensor(n).is_const]
    consts = [graph.tensor(n) for n in op.inputs if n and graph.tensor(n).is_const]
    return computed if len(computed) == 1 and all(t.size == 1 for t in consts) else None


def _chain(graph: Graph, quantize: Op, producers: dict, consumers: dict) -> list[Op] | None:
    """[DEQUANTIZE, float ops..., QUANTIZE] ending at `quantize`, or None when it is no elementwise island."""
    y = graph.tensor(quantize.outputs[0])
    chain, op = [quantize], quantize
    while True:
        x = op.inputs[0]
        prev = producers.get(x)
        if prev is None or len(consumers.get(x, [])) != 1 or x in graph.outputs:
            return None
        if graph.tensor(x).shape != y.shape:
            return None
        chain.insert(0, prev)
        if prev.kind == "dequantize":
            return chain if int8_per_tensor(graph.tensor(prev.inputs[0])) else None
        if graph.tensor(prev.outputs[0]).dtype != "float32" or len(prev.outputs) != 1:
            return None
        inputs = _data_inputs(graph, prev)
        if inputs is None or inputs[0] != prev.inputs[0]:
            return None
        op = prev


def fuse_float_islands(graph: Graph) -> Graph:
    """`graph` with every int8 DEQUANTIZE -> elementwise float ops -> int8 QUANTIZE as one `lut` op (named after
    the QUANTIZE, writing its output)."""
    producers = {o: op for op in graph.ops for o in op.outputs}
    consumers = graph.consumers()
    chains = {}
    for op in graph.ops:
        if op.kind == "quantize" and int8_per_tensor(graph.tensor(op.outputs[0])) \
                and graph.tensor(op.inputs[0]).dtype == "float32":
            chain = _chain(graph, op, producers, consumers)
            if chain is not None:
                chains[op.name] = chain
    if not chains:
        return graph
    gone = {op.name for chain in chains.values() for op in chain[:-1]}
    dropped = {op.outputs[0] for chain in chains.values() for op in chain[:-1]}
    ops = []
    for op in graph.ops:
        if op.name in gone:
            continue
        chain = chains.get(op.name)
        if chain is not None:
            op = Op(op.name, "lut", [chain[0].inputs[0]], list(op.outputs), LutAttrs(chain_table(graph, chain)))
        ops.append(op)
    read = {n for op in ops for n in op.inputs}
    tensors = {n: t for n, t in graph.tensors.items() if n not in dropped and (not t.is_const or n in read
                                                                                 or n in graph.outputs)}
    out = Graph(graph.name, tensors, ops, list(graph.inputs), list(graph.outputs))
    out.validate()
    return out
