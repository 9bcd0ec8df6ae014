"""Which ops may write their output over an input's bytes (in-place execution), and which input.

An elementwise op whose runtime kernel reads element i of each input before it writes element i of the output,
and never reads an element it has already written, can take an input's storage for its output when that input
dies at this op. The kernels this holds for (runtime/):

- mcu_add_s8, mcu_add_s16 (ADD and SUB), mcu_mul_s8: equal shapes -> one flat loop
  `output[i] = f(input1[i], input2[i])`; with a broadcast
  input, output element (b, y, x, c) is written after reading element (b, y, x, c) of the full-shaped input
  (the other input is read through strides, and it is a different buffer). Only an input with exactly the
  output's shape and dtype is overwritten, so its byte i is output byte i.
- mcu_lut_s8 (logistic, int8 leaky relu, the fused swish `lut`, abs, elu, hard_swish, relu, relu6, rsqrt, tanh):
  `output[i] = table[input[i]]`; mcu_leaky_relu_s16 likewise.
- mcu_maximum_s8, mcu_minimum_s8, mcu_squared_difference_s8, mcu_div_s8, mcu_prelu_s8: the loop of mcu_add_s8's
  broadcast case (output element (b, y, x, c) written after reading that element of each input).
- mcu_l2_normalization_s8: each row is summed, then each element read before it is written.
- mcu_quantize_s8 / _s16 (int8 -> int8, int16 -> int16): `output[i] = requantize(input[i])` (a quantize between
  dtypes of different sizes is not in place: the byte check below refuses it).

Convolutions in place with a line buffer (`row_buffer`): a depthwise conv (multiplier 1) or a conv2d with
stride 1, dilation 1, int8, and an output of exactly its input's shape (SAME padding: pt + pb = kh - 1, and as
many output as input channels). Output row y reads input rows y - pt .. y + pb, so input row r is read last by
output row r + pt: output row y may be stored over input row y only once output row y + pt is computed. The
kernel (codegen/row_inplace.py) computes `step` output rows at a time into a ring of `slots` = pt + 1 slots of
`step` rows (a scratch buffer of the op, planned in the arena and live only while it runs) and, after computing
step s, copies slot s - pt back over its input rows; the last pt steps are copied back at the end. `step` is 1,
except for 1 x 1 kernels (pt = 0) on odd widths, where 2 rows give the SIMD fully connected kernel an even
number of pixels (it takes them in pairs).

Not in place: softmax, pools, concat, pad, transpose, mean, strided slice, strided or dilated convs, convs whose output
shape differs from their input's, FC.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import Graph, Op

IN_PLACE_KINDS = ("add", "sub", "mul", "logistic", "leaky_relu", "lut", "quantize",
                  # elementwise and activation operators (branch ops8a): tables (mcu_lut_s8), binary kernels that
                  # read element i of each input before writing output element i, and L2 normalization, which
                  # reads a whole row before writing it
                  "abs", "elu", "hard_swish", "relu", "relu6", "rsqrt", "tanh",
                  "div", "maximum", "minimum", "prelu", "squared_difference", "l2_normalization")
ROW_BUFFER_KINDS = ("conv2d", "depthwise_conv2d")


@dataclass(frozen=True)
class RowBuffer:
    """The line buffer of a convolution run in place: `slots` slots of `step` rows of `row_bytes` each."""
    height: int     # rows of the input (= of the output)
    row_bytes: int  # W * C
    pad_top: int    # pt: how many steps a slot waits before it is copied back
    pad_bottom: int
    step: int       # output rows computed per kernel call

    @property
    def slots(self) -> int:
        return self.pad_top + 1

    @property
    def nbytes(self) -> int:
        return self.slots * self.step * self.row_bytes


def row_buffer(graph: Graph, op: Op) -> RowBuffer | None:
    """The line buffer `op` needs to run in place, or None when it cannot (see the module docstring)."""
    if op.kind not in ROW_BUFFER_KINDS or len(op.outputs) != 1 or len(op.inputs) < 2:
        return None
    x, y, w = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0]), graph.tensor(op.inputs[1])
    a = op.attrs
    if x.shape != y.shape or len(x.shape) != 4 or x.shape[0] != 1 or (x.dtype, y.dtype) != ("int8", "int8"):
        return None
    if x.is_const or not w.is_const or tuple(a.stride) != (1, 1) or tuple(a.dilation) != (1, 1):
        return None
    if w.dtype == "int4":  # int4 weights run runtime/ kernels, which write whole outputs (no row kernels)
        return None
    if op.kind == "depthwise_conv2d" and a.depth_multiplier != 1:
        return None
    _, h, width, c = x.shape
    kh = w.shape[1]
    pt, _pl, pb, _pr = (int(p) for p in a.pads)
    if pt + pb != kh - 1:
        return None
    step = 2 if kh == 1 and width % 2 and h >= 2 else 1
    return RowBuffer(h, width * c, pt, pb, step)


def in_place_input(graph: Graph, op: Op, last_use: dict[str, int], index: int,
                   root: dict[str, str]) -> str | None:
    """The input tensor `op` (the index-th op) may overwrite with its output, or None.

    `last_use[r]`: index of the last op reading storage root r (len(ops) when r's bytes are a graph output);
    `root[t]`: the storage root of tensor t (itself unless t aliases another tensor's bytes)."""
    if op.kind in ROW_BUFFER_KINDS:
        if row_buffer(graph, op) is None or last_use.get(root.get(op.inputs[0], op.inputs[0])) != index:
            return None
        return op.inputs[0]
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
