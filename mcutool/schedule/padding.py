"""Explicit padding: fold exporters' PAD ops into the convolutions they feed, and insert PADs for convolutions
whose kernels reduce whole kernel rows ("row mode").

`fold_pads`: PyTorch -> ONNX -> TensorFlow exports write a padded conv as a PAD (1 on every side) then a VALID
conv. A PAD whose output has its input's quantization fills with that zero point, which is what a convolution's
own padding means in TFLite int8 (a padded tap contributes (zp - zp) * w = 0), so a conv reading a spatial PAD
that nothing else reads may pad by the same amounts itself: bit-exact, one whole tensor less, and the patch
planner sees the layers a stage can tile.

`explicit_row_padding`:

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


def _foldable(graph: Graph, pad: Op, consumers) -> Op | None:
    """The conv/depthwise that may take `pad`'s padding over (see the module notes), or None."""
    if pad.kind != "pad" or pad.outputs[0] in graph.outputs or len(consumers[pad.outputs[0]]) != 1:
        return None
    conv = consumers[pad.outputs[0]][0]
    x, y = graph.tensor(pad.inputs[0]), graph.tensor(pad.outputs[0])
    pads = pad.attrs.pads
    if conv.kind not in ("conv2d", "depthwise_conv2d") or conv.inputs[0] != y.name or len(pads) != 4 \
            or tuple(pads[0]) != (0, 0) or tuple(pads[3]) != (0, 0) or any(v < 0 for p in pads for v in p):
        return None
    same_quant = x.quant is not None and y.quant is not None and not x.quant.per_channel \
        and float(x.quant.scale[0]) == float(y.quant.scale[0]) and x.quant.zero_point[0] == y.quant.zero_point[0]
    return conv if x.dtype == y.dtype == "int8" and same_quant else None


def fold_pads(graph: Graph) -> Graph:
    """`graph` with every foldable spatial PAD merged into the padding of the conv/depthwise that reads it."""
    consumers = graph.consumers()
    folded = {}  # conv name -> (pad op, conv)
    for op in graph.ops:
        conv = _foldable(graph, op, consumers)
        if conv is not None:
            folded[conv.name] = op
    if not folded:
        return graph
    gone = {pad.name for pad in folded.values()}
    ops = []
    for op in graph.ops:
        if op.name in gone:
            continue
        pad = folded.get(op.name)
        if pad is not None:
            (t, b), (le, r) = pad.attrs.pads[1], pad.attrs.pads[2]
            pt, pl, pb, pr = op.attrs.pads
            op = replace(op, inputs=[pad.inputs[0], *op.inputs[1:]],
                         attrs=replace(op.attrs, pads=(pt + t, pl + le, pb + b, pr + r)))
        ops.append(op)
    dropped = {pad.outputs[0] for pad in folded.values()}
    out = Graph(graph.name, {n: t for n, t in graph.tensors.items() if n not in dropped}, ops, list(graph.inputs),
                list(graph.outputs))
    out.validate()
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
