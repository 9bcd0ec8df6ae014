"""The binarize pass, Graph -> Graph on the int8 IR (DESIGN.md §8; the binary op kinds are documented in ir.py).

    graph, report = binarize(int8_graph, parse_selection("auto"))

Recognized (`auto`): a conv2d whose int8 weights hold one |w| per output channel (+-alpha: post-training
quantization makes them +-127) and whose input is a Sign's output, directly or through max pools. Named layers
(`--binarize conv1,conv2`) are binarized even when their weights are not +-alpha (alpha = mean |w| per channel,
the weights' signs kept; the report says how far the outputs moved) and even when their input is not a Sign's
(the input's sign is taken). `off` changes nothing: the Sign ops stay int8 ops.

What each recognized piece becomes:
  * Sign -> the packed bits of its input (`binary_pack`), or nothing when the op before it writes bits itself:
  * binary conv + Sign -> `binary_conv2d` with bit output: BatchNorm (folded into the conv's weights and bias by
    the importer) + Sign become one integer threshold per channel on the popcount dot product (`flip` where
    the folded scale is negative);
  * int8 conv + Sign (the first layer) -> `binary_pack_conv2d`: the int32 accumulator's sign is the sign of the
    real output (positive scales), so the conv writes packed bits and its int8 output never exists;
  * max pool on Sign outputs -> `binary_max_pool2d` (AND of the bits);
  * a binary conv whose output is not Sign'd (the last binary layer) -> `binary_conv2d` with int8 output:
    alpha per channel goes into the requantization multiplier (alpha / s_out), the bias into the dot's units.
The int8 values a binary layer reads are taken as exactly +-1 (the float model's meaning): biases are recovered
in real units (bias_q * s_in * s_w) before they are folded.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from ..errors import UserError
from ..ir import (BinaryConv2DAttrs, BinaryPackAttrs, BinaryPool2DAttrs, Graph, Op, Quant, Tensor, packed_words)
from ..reference import pack_bits, sign_thresholds


@dataclass
class BinarizeReport:
    mode: str
    layers: list[str] = field(default_factory=list)        # convs now binary
    approximated: list[str] = field(default_factory=list)  # named layers whose weights were not +-alpha
    movement: dict | None = None  # how far the outputs moved (named layers): see output_movement

    def to_json(self) -> dict:
        return {"mode": self.mode, "binary_layers": self.layers, "approximated": self.approximated,
                "output_movement": self.movement}


def parse_selection(spec: str | None) -> str | frozenset:
    """`auto`, `off`, or the set of layer names of `LAYER,...`."""
    spec = (spec or "auto").strip()
    if spec in ("auto", "off"):
        return spec
    names = frozenset(n.strip() for n in spec.split(",") if n.strip())
    if not names:
        raise UserError("--binarize takes auto, off, or a comma-separated list of layer names.")
    return names


# -- recognition ---------------------------------------------------------------------------------------------------

def _is_pm_alpha(w: Tensor) -> bool:
    """int8 weights with one magnitude per output channel (and zero point 0)."""
    if w.dtype != "int8" or w.quant is None or np.any(w.quant.zero_point != 0):
        return False
    a = np.abs(w.data.astype(np.int64)).reshape(w.shape[0], -1)
    return bool(np.all(a == a[:, :1]) and np.all(a[:, 0] > 0))


def _packed_reshape(graph: Graph, op: Op) -> bool:
    """A reshape that can move packed bits as they are: it only merges axes into the channel axis (a flatten
    before a fully connected layer) and the channels fill whole words, so the packed words keep their order."""
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    return (op.kind == "reshape" and x.shape[-1] % 32 == 0 and y.shape[-1] % x.shape[-1] == 0
            and x.shape[0] == y.shape[0] and len(y.shape) <= len(x.shape))


def _sign_chain(graph: Graph, producers: dict, name: str) -> bool:
    """True when tensor `name` is a Sign's int8 output, directly or through max pools and flattening reshapes."""
    p = producers.get(name)
    while p is not None and ((p.kind == "max_pool2d" and p.attrs.activation == "none") or _packed_reshape(graph, p)):
        p = producers.get(p.inputs[0])
    return p is not None and p.kind == "sign" and graph.tensor(p.outputs[0]).dtype == "int8"


def _int8_conv(graph: Graph, op: Op) -> bool:
    return (op.kind == "conv2d" and graph.tensor(op.inputs[0]).dtype == "int8"
            and graph.tensor(op.outputs[0]).dtype == "int8" and tuple(op.attrs.dilation) == (1, 1))


def _int8_fc(graph: Graph, op: Op) -> bool:
    return (op.kind == "fully_connected" and graph.tensor(op.inputs[0]).dtype == "int8"
            and graph.tensor(op.outputs[0]).dtype == "int8" and len(graph.tensor(op.inputs[1]).shape) == 2)


def _selected(graph: Graph, selection, producers) -> tuple[set[str], list[str]]:
    """(names of the convs to binarize, those among them whose weights are not +-alpha)."""
    if selection == "off":
        return set(), []
    convs = {op.name: op for op in graph.ops if _int8_conv(graph, op) or _int8_fc(graph, op)}
    if selection == "auto":
        return {n for n, op in convs.items() if _is_pm_alpha(graph.tensor(op.inputs[1]))
                and _sign_chain(graph, producers, op.inputs[0])}, []
    unknown = sorted(selection - set(convs))
    if unknown:
        raise UserError(f"--binarize names {', '.join(unknown)}, which {'is' if len(unknown) == 1 else 'are'} not an "
                        f"int8 conv or fully connected layer of {graph.name} (those layers: "
                        f"{', '.join(convs) or 'none'}).")
    return set(selection), sorted(n for n in selection if not _is_pm_alpha(graph.tensor(convs[n].inputs[1])))


# -- planning: which tensors are needed as int8, which as packed bits ------------------------------------------------

@dataclass
class _Plan:
    selected: set[str]
    bits: set[str] = field(default_factory=set)     # int8 tensors whose +-1 content is needed packed
    int8: set[str] = field(default_factory=set)     # int8 tensors that must exist as int8
    fused: dict[str, Op] = field(default_factory=dict)  # conv name -> the Sign whose bits it writes


def _plan(graph: Graph, selected: set[str]) -> _Plan:
    plan = _Plan(selected, int8=set(graph.outputs))
    producers, consumers = graph.producers(), graph.consumers()
    for op in reversed(graph.ops):
        if op.kind == "sign" and op.outputs[0] in plan.bits:
            x = op.inputs[0]
            p = producers.get(x)
            fusable = (p is not None and (_int8_conv(graph, p) or p.name in selected) and p.attrs.activation == "none"
                       and len(consumers[x]) == 1 and x not in graph.outputs and op.outputs[0] not in plan.int8)
            if fusable:
                plan.fused[p.name] = op
            else:
                plan.int8.add(x)
            continue
        for i, n in enumerate(op.inputs):
            if not n or graph.tensor(n).is_const:
                continue
            if op.name in selected and i == 0:
                plan.bits.add(n)
                if not _sign_chain(graph, producers, n):
                    plan.int8.add(n)   # packed from its int8 values in place
            elif (op.kind in ("max_pool2d", "reshape") and op.outputs[0] in plan.bits
                  and _sign_chain(graph, producers, n)):
                plan.bits.add(n)
                if op.outputs[0] in plan.int8:
                    plan.int8.add(n)
            else:
                plan.int8.add(n)
    return plan


# -- rewriting --------------------------------------------------------------------------------------------------------

class _Rewriter:
    def __init__(self, graph: Graph, plan: _Plan):
        self.old, self.plan = graph, plan
        self.g = Graph(graph.name, {n: copy.deepcopy(t) for n, t in graph.tensors.items()}, [],
                       list(graph.inputs), list(graph.outputs))
        self.bits: dict[str, str] = {}  # int8 tensor -> its packed tensor

    def _packed(self, like: str, channels: int, name: str | None = None) -> str:
        t = self.old.tensor(like)
        name = name or f"{like}/bits"
        self.g.add_tensor(Tensor(name, t.shape[:-1] + (packed_words(channels),), "uint32"))
        return name

    def _const(self, name: str, data: np.ndarray, dtype: str, quant: Quant | None = None) -> str:
        self.g.add_tensor(Tensor(name, data.shape, dtype, quant, data))
        return name

    def bits_of(self, x: str, where: str) -> str:
        """The packed tensor of int8 tensor x, packing it here if nothing wrote it yet."""
        if x not in self.bits:
            c = self.old.tensor(x).shape[-1]
            out = self._packed(x, c)
            self.g.ops.append(Op(f"{where}/pack", "binary_pack", [x], [out], BinaryPackAttrs(c)))
            self.bits[x] = out
        return self.bits[x]

    def run(self) -> Graph:
        for op in self.old.ops:
            if op.kind == "sign":
                self._sign(op)
            elif op.kind == "max_pool2d" and op.outputs[0] in self.plan.bits:
                self._max_pool(op)
            elif op.kind == "reshape" and op.outputs[0] in self.plan.bits:
                self._reshape(op)
            elif op.name in self.plan.selected:
                self._binary_conv(op)
            elif op.name in self.plan.fused:
                self._pack_conv(op)
            else:
                self.g.ops.append(op)
        used = {n for op in self.g.ops for n in op.inputs + op.outputs if n} | set(self.g.inputs) | set(self.g.outputs)
        self.g.tensors = {n: t for n, t in self.g.tensors.items() if n in used}
        self.g.validate()
        return self.g

    def _sign(self, op: Op) -> None:
        y = op.outputs[0]
        if any(s is op for s in self.plan.fused.values()):
            return  # the conv before it wrote the bits
        if y in self.plan.int8:
            self.g.ops.append(op)
        if y in self.plan.bits:
            c = self.old.tensor(y).shape[-1]
            out = self._packed(y, c)
            self.g.ops.append(Op(f"{op.name}/pack", "binary_pack", [op.inputs[0]], [out], BinaryPackAttrs(c)))
            self.bits[y] = out

    def _max_pool(self, op: Op) -> None:
        x, y = op.inputs[0], op.outputs[0]
        c = self.old.tensor(y).shape[-1]
        out = self._packed(y, c)
        a = op.attrs
        self.g.ops.append(Op(f"{op.name}/binary", "binary_max_pool2d", [self.bits[x]], [out],
                             BinaryPool2DAttrs(a.filter, a.stride, a.pads, "none", channels=c)))
        self.bits[y] = out
        if y in self.plan.int8:
            self.g.ops.append(op)

    def _reshape(self, op: Op) -> None:
        """A flatten of packed bits (channels in whole words): the same words, a new shape."""
        x, y = op.inputs[0], op.outputs[0]
        out = self._packed(y, self.old.tensor(y).shape[-1])
        self.g.ops.append(Op(f"{op.name}/binary", "reshape", [self.bits[x]], [out]))
        self.bits[y] = out
        if y in self.plan.int8:
            self.g.ops.append(op)

    def _attrs(self, op: Op, activation: str = "none") -> BinaryConv2DAttrs:
        """A fully connected layer is a 1x1 binary conv over a 1x1 image (its packed input: 1x1xwords)."""
        w = self.old.tensor(op.inputs[1])
        if op.kind == "fully_connected":
            return BinaryConv2DAttrs(activation=activation, in_channels=w.shape[1], out_channels=w.shape[0])
        a = op.attrs
        return BinaryConv2DAttrs(a.stride, a.dilation, a.pads, activation, in_channels=w.shape[3],
                                 out_channels=w.shape[0])

    def _fused_output(self, op: Op) -> str:
        sign = self.plan.fused[op.name]
        y = sign.outputs[0]
        out = self._packed(y, self.old.tensor(y).shape[-1])
        self.bits[y] = out
        return out

    def _pack_conv(self, op: Op) -> None:
        """int8 conv + Sign: bit 1 where the int32 accumulator (bias included) is negative."""
        w = self.old.tensor(op.inputs[1])
        cout = w.shape[0]
        bias = op.inputs[2] if len(op.inputs) > 2 and op.inputs[2] else \
            self._const(f"{op.name}/zero_bias", np.zeros(cout, np.int32), "int32")
        thr = self._const(f"{op.name}/thresholds", np.zeros(cout, np.int32), "int32")
        out = self._fused_output(op)
        self.g.ops.append(Op(op.name, "binary_pack_conv2d", [op.inputs[0], op.inputs[1], bias, thr], [out],
                             self._attrs(op)))

    def _binary_conv(self, op: Op) -> None:
        x_t, w_t = self.old.tensor(op.inputs[0]), self.old.tensor(op.inputs[1])
        q = w_t.data.astype(np.int64)
        if op.kind == "fully_connected":  # (out, in) -> (out, 1, 1, in)
            q = q.reshape(q.shape[0], 1, 1, q.shape[1])
        s_w = np.broadcast_to(w_t.quant.scale, (w_t.shape[0],)).astype(np.float64)
        alpha = np.abs(q).reshape(w_t.shape[0], -1).mean(axis=1) * s_w
        b_q = self.old.tensor(op.inputs[2]).data if len(op.inputs) > 2 and op.inputs[2] else np.zeros(w_t.shape[0])
        b_real = b_q.astype(np.float64) * float(x_t.quant.scale[0]) * s_w
        x_bits = self.bits_of(op.inputs[0], op.name)
        w_bits = pack_bits(q < 0)
        if op.name in self.plan.fused:
            thr, flip = sign_thresholds(alpha, b_real)
            wq = self._const(f"{op.name}/weights_bits", w_bits, "uint32")
            tq = self._const(f"{op.name}/thresholds", thr.astype(np.int32), "int32")
            fq = self._const(f"{op.name}/flip", pack_bits(flip), "uint32")
            out = self._fused_output(op)
            self.g.ops.append(Op(op.name, "binary_conv2d", [x_bits, wq, tq, fq], [out], self._attrs(op)))
            return
        safe = np.where(alpha > 0, alpha, 1.0)
        bias = np.clip(np.round(b_real / safe), -2**31, 2**31 - 1).astype(np.int32)
        wq = self._const(f"{op.name}/weights_bits", w_bits, "uint32",
                         Quant(np.where(alpha > 0, alpha, 1e-30).astype(np.float32), np.zeros(alpha.size, np.int64), 0))
        bq = self._const(f"{op.name}/bias_dot", bias, "int32")
        self.g.ops.append(Op(op.name, "binary_conv2d", [x_bits, wq, bq], [op.outputs[0]],
                             self._attrs(op, op.attrs.activation)))


def binarize(graph: Graph, selection="auto") -> tuple[Graph, BinarizeReport]:
    """The graph with the selected conv layers binary (a new graph; `graph` is not changed)."""
    mode = selection if isinstance(selection, str) else "layers"
    selected, approximated = _selected(graph, selection, graph.producers())
    report = BinarizeReport(mode, [op.name for op in graph.ops if op.name in selected], approximated)
    if not selected:
        return graph, report
    result = _Rewriter(graph, _plan(graph, selected)).run()
    if mode == "layers":  # binarizing chosen layers of a trained model: say how far the outputs moved
        report.movement = output_movement(graph, result)
    return result, report


def output_movement(before: Graph, after: Graph, samples: int = 8, seed: int = 0) -> dict:
    """How far binarizing moved the first output, on `samples` random int8 inputs (both graphs run by the
    reference): mean and max |difference| in output LSB, and the top-1 agreement."""
    from .. import reference
    rng = np.random.default_rng(seed)
    diffs, agree = [], 0
    for _ in range(samples):
        xs = {n: rng.integers(-128, 128, size=before.tensor(n).shape).astype(before.tensor(n).dtype)
              for n in before.inputs}
        a = reference.run(before, xs)[before.outputs[0]].astype(np.int64)
        b = reference.run(after, xs)[after.outputs[0]].astype(np.int64)
        diffs.append(np.abs(a - b).reshape(-1))
        agree += int(np.argmax(a) == np.argmax(b))
    d = np.concatenate(diffs)
    return {"samples": samples, "mean_abs_lsb": round(float(d.mean()), 3), "max_abs_lsb": int(d.max()),
            "top1_agreement": agree / samples}
