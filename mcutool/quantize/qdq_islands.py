"""Float islands of a QDQ model quantized with calibration data (Graph -> Graph, issue 14).

onnxruntime's quantize_static leaves ops it does not quantize in float between a DequantizeLinear and the next
QuantizeLinear (the decomposed LayerNorm of a ViT: ReduceMean, Sub, Pow, ReduceMean, Sqrt, Div). With --calib,
the imported graph -- int8 where the model is int8, float in the islands -- runs over the calibration samples
(`ptq.calibrate`: the island's internal tensors get their ranges), and each island op is quantized by ptq's
per-op rules, as the same op of a float model would be. An island input keeps the quantization of the int8
tensor its DEQUANTIZE reads; an island output read by a QUANTIZE takes that QUANTIZE's quantization (the QDQ
model's own scale) and replaces it. The result has an integer core (`ptq.has_integer_core`).
"""
from __future__ import annotations

import copy

import numpy as np

from ..ir import Graph, Op, Tensor
from .ptq import FIXED_OUTPUT_QUANT, SAME_QUANT_OPS, SHARED_QUANT_OPS, _quantize_op, calibrate


def island_ops(graph: Graph) -> list[Op]:
    """The ops of an int8 (QDQ) graph that compute in float: neither QUANTIZE nor DEQUANTIZE, reading or writing
    a float activation. [] for a float model."""
    def is_float(name):
        return bool(name) and graph.tensor(name).dtype == "float32" and not graph.tensor(name).is_const

    if not any(t.dtype in ("int8", "uint8") and not t.is_const for t in graph.tensors.values()):
        return []
    return [op for op in graph.ops if op.kind not in ("quantize", "dequantize")
            and any(is_float(n) for n in op.inputs + op.outputs)]


def open_islands(graph: Graph) -> list[Op]:
    """The island ops reading a float graph input or writing a float graph output: at the model's border, with no
    QuantizeLinear / DequantizeLinear to give that tensor its int8 scale, so calibration does not quantize them."""
    return [op for op in island_ops(graph) if any(n in graph.outputs for n in op.outputs)
            or any(n in graph.inputs for n in op.inputs)]


def quantize_islands(graph: Graph, samples: dict[str, np.ndarray]) -> Graph:
    """`graph` with every float island op quantized from the ranges its tensors take over `samples`."""
    islands = island_ops(graph)
    ranges = calibrate(graph, samples)
    consumers = graph.consumers()
    island_names = {op.name for op in islands}
    # float tensors the islands read from a DEQUANTIZE: the int8 tensor it dequantizes stands for them
    renamed = {n: n for n, t in graph.tensors.items() if not t.is_const and t.dtype != "float32"}
    renamed.update({op.outputs[0]: op.inputs[0] for op in graph.ops if op.kind == "dequantize"
                    and op.outputs[0] not in graph.outputs})
    quant = {n: graph.tensor(n).quant for n in renamed.values()}
    dequantized = {op.outputs[0] for op in graph.ops if op.kind == "dequantize" and op.outputs[0] in renamed}
    taken = {}  # QUANTIZE after an island op whose output takes its place -> that output's inner name
    q = Graph(name=graph.name, inputs=list(graph.inputs), outputs=list(graph.outputs))
    island_consts = {n for op in islands for n in op.inputs if n and graph.tensor(n).is_const}  # _quantize_op's
    for name, t in graph.tensors.items():
        if name in island_consts:
            continue
        if t.is_const or t.dtype != "float32" or name in graph.inputs or name in graph.outputs:
            q.add_tensor(copy.deepcopy(t) if not t.is_const else t)
    for op in graph.ops:
        if op.kind == "dequantize" and op.outputs[0] in dequantized:
            continue  # its readers read the int8 tensor
        if op.kind == "quantize" and op.name in taken:
            continue
        if op.name not in island_names:
            q.ops.append(Op(op.name, op.kind, [renamed.get(n, n) for n in op.inputs], list(op.outputs), op.attrs))
            continue
        new = _quantize_op(graph, q, op, ranges, quant, renamed)
        q.ops.append(new)
        _take_quantize(graph, q, op, new, consumers, quant, taken)
    alias = {n: inner for names in taken.values() for n, inner in names.items()}
    q.ops = [Op(o.name, o.kind, [alias.get(n, n) for n in o.inputs], o.outputs, o.attrs) for o in q.ops
             if o.name not in taken]
    read = {n for op in q.ops for n in op.inputs} | set(q.outputs)
    q.tensors = {n: t for n, t in q.tensors.items() if n in read or any(n in op.outputs for op in q.ops)}
    q.validate()
    return q


def _take_quantize(graph: Graph, q: Graph, op: Op, new: Op, consumers: dict, quant: dict, taken: dict) -> None:
    """An island op's output read by a QUANTIZE: the output takes the QUANTIZE's quantization (where its kind
    lets it choose one) and the QUANTIZE goes; its readers read the op's output instead."""
    if op.kind in SAME_QUANT_OPS or op.kind in FIXED_OUTPUT_QUANT or op.kind in SHARED_QUANT_OPS:
        return  # the QUANTIZE stays, as an int8 requantize
    for name, inner in zip(op.outputs, new.outputs):
        readers = [c for c in consumers.get(name, []) if c.kind == "quantize"
                   and graph.tensor(c.outputs[0]).dtype == q.tensor(inner).dtype]
        if not readers:
            continue
        target = graph.tensor(readers[0].outputs[0]).quant
        quant[inner] = copy.deepcopy(target)
        q.tensors[inner] = Tensor(inner, q.tensor(inner).shape, q.tensor(inner).dtype, copy.deepcopy(target))
        for reader in readers:
            if _same(graph.tensor(reader.outputs[0]).quant, target) and reader.outputs[0] not in graph.outputs:
                taken[reader.name] = {reader.outputs[0]: inner}


def _same(a, b) -> bool:
    return (np.array_equal(np.float32(a.scale), np.float32(b.scale))
            and np.array_equal(np.asarray(a.zero_point), np.asarray(b.zero_point)))

