"""Explicit input padding for convolutions whose kernels reduce whole kernel rows ("row mode").

A convolution over few input channels (C % 4 != 0, e.g. the first layer of an audio or image model) reduces
each kernel row's KW * C contiguous taps as one vector (mcutool.codegen.tvm_kernels). Where left/right padding
cuts a row, the kernel must gather the remaining taps one by one; on KWS's first layer that is 2 of every 5
output columns, and those pixels cost twice the instructions of the rest. Materializing the padded input once
(a PAD op, which fills with the input zero point: exactly what TFLite's convolution padding means) turns every
row into a whole one, for the price of a copy of the (small) input.

The rewrite is kept where it raises the planned arena by at most ARENA_TOLERANCE (1 %): the padded copy
must (nearly) fit beside tensors that are live at that point anyway. On KWS, whose depthwise and pointwise
convolutions run in place, the arena is 8,640 B (an 8,000-byte tensor and a 640-byte line buffer); the first
conv's padded input (696 B) beside its 8,000-byte output makes it 8,696 B (+0.6 %), and saves 372k of the
layer's 943k instructions.
"""
from __future__ import annotations

from dataclasses import replace

from ..ir import Graph, Op, PadAttrs, Tensor
from .arena import plan_arena

ARENA_TOLERANCE = 0.01  # the explicit padding may raise the planned arena by this fraction at most


def _row_mode_with_padding(graph: Graph, op: Op) -> bool:
    if op.kind != "conv2d" or not any(op.attrs.pads):
        return False
    x = graph.tensor(op.inputs[0])  # row mode is the int8 TVM kernels' (a 16x8 conv has a runtime/ kernel)
    return x.dtype == "int8" and x.shape[-1] % 4 != 0 and tuple(op.attrs.dilation) == (1, 1)


def _with_explicit_pad(graph: Graph, index: int) -> Graph:
    """A copy of `graph` in which op `index` reads a zero-point-padded copy of its input and pads no more."""
    op = graph.ops[index]
    x = graph.tensor(op.inputs[0])
    top, left, bottom, right = op.attrs.pads
    n, h, w, c = x.shape
    padded = Tensor(f"{x.name}_padded_for_{op.name}", (n, h + top + bottom, w + left + right, c), x.dtype, x.quant)
    pad = Op(f"{op.name}_pad", "pad", [x.name], [padded.name],
             PadAttrs(pads=((0, 0), (top, bottom), (left, right), (0, 0))))
    conv = replace(op, inputs=[padded.name, *op.inputs[1:]], attrs=replace(op.attrs, pads=(0, 0, 0, 0)))
    out = Graph(graph.name, dict(graph.tensors), list(graph.ops), list(graph.inputs), list(graph.outputs))
    out.add_tensor(padded)
    out.ops[index:index + 1] = [pad, conv]
    return out


def explicit_row_padding(graph: Graph) -> Graph:
    """`graph` with explicit PAD ops before its padded row-mode convolutions, where that costs at most
    ARENA_TOLERANCE more arena."""
    index, arena = 0, None
    while index < len(graph.ops):
        if _row_mode_with_padding(graph, graph.ops[index]):
            arena = arena or plan_arena(graph).size
            candidate = _with_explicit_pad(graph, index)
            padded = plan_arena(candidate).size
            if padded <= arena * (1 + ARENA_TOLERANCE):
                graph, arena = candidate, padded
                index += 1  # skip the inserted PAD
        index += 1
    return graph
