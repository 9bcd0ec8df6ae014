"""Which ops may write their output over an input's bytes (in-place execution), and which input.

An elementwise op whose runtime kernel reads element i of each input before it writes element i of the output,
and never reads an element it has already written, can take an input's storage for its output when that input
dies at this op. The kernels this holds for (runtime/):

- mcu_add_s8, mcu_mul_s8: equal shapes -> one flat loop `output[i] = f(input1[i], input2[i])`; with a broadcast
  input, output element (b, y, x, c) is written after reading element (b, y, x, c) of the full-shaped input
  (the other input is read through strides, and it is a different buffer). Only an input with exactly the
  output's shape and dtype is overwritten, so its byte i is output byte i.
- mcu_lut_s8 (logistic): `output[i] = table[input[i]]`.
- mcu_quantize_s8 (int8 -> int8): `output[i] = requantize(input[i])`.

Not in place: depthwise conv (the TVM kernel reads a k x k window of rows it would already have overwritten;
making it safe needs a line buffer that is not built), softmax, pools, concat, pad, transpose, mean, conv, FC.
"""
from __future__ import annotations

from ..ir import Graph, Op

IN_PLACE_KINDS = ("add", "mul", "logistic", "quantize")


def in_place_input(graph: Graph, op: Op, last_use: dict[str, int], index: int,
                   root: dict[str, str]) -> str | None:
    """The input tensor `op` (the index-th op) may overwrite with its output, or None.

    `last_use[r]`: index of the last op reading storage root r (len(ops) when r's bytes are a graph output);
    `root[t]`: the storage root of tensor t (itself unless t aliases another tensor's bytes)."""
    if op.kind not in IN_PLACE_KINDS or len(op.outputs) != 1:
        return None
    out = graph.tensor(op.outputs[0])
    data_inputs = [n for n in op.inputs if n and not graph.tensor(n).is_const]
    for name in data_inputs:
        t = graph.tensor(name)
        r = root.get(name, name)
        if t.shape != out.shape or t.dtype != out.dtype or t.nbytes != out.nbytes:
            continue
        if last_use.get(r) != index:
            continue  # still read later (or a graph output): its bytes must survive this op
        # another input in the same storage under a different tensor (a reshape of it) would be read at a
        # different element index than the one being written: refuse
        if any(o != name and root.get(o, o) == r for o in data_inputs):
            continue
        return name
    return None
