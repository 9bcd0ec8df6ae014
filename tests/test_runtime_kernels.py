"""The hand-written C kernels of runtime/ against tflite-runtime 2.14 (BUILTIN_REF; MUL: the tflite-micro
interpreter) and mcutool.reference.

Every case is one int8 op, built twice from the same spec: as a one-op .tflite model (tests/tflite_builder.py)
and as an IR graph. mcutool/codegen/runtime_params.py turns the IR op into the kernel's parameter struct and
call; all cases go into one C harness, compiled once with the host gcc under -Wall -Wextra -Werror and
AddressSanitizer/UBSan (inputs and outputs in exactly sized heap buffers), and run once over every input.
Outputs must equal TFLite's bit for bit (np.array_equal) and the numpy reference's.

Also: runtime/ cross-compiles for Cortex-M7 and RV32IMAC with no floating-point helper and no VFP instruction.
"""
from __future__ import annotations

import os
import re
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from conftest import IN_CI, require_tool
from tflite_builder import MicroInterpreter, ModelBuilder, RefInterpreter

from mcutool import reference
from mcutool.codegen import runtime_params as rp
from mcutool.ir import (ConcatAttrs, ElementwiseAttrs, Graph, MeanAttrs, NoAttrs, Op, PadAttrs, Pool2DAttrs, Quant,
                        SoftmaxAttrs, Tensor, TransposeAttrs)

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = ROOT / "runtime"
N_INPUTS = 20
CFLAGS = ["-O2", "-Wall", "-Wextra", "-Werror", "-std=c99"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]


def runtime_sources() -> list[Path]:
    """Every C file of runtime/ (the cross-compilation checks cover all of them)."""
    return sorted(RUNTIME.glob("*.c"))


def kernel_sources() -> list[Path]:
    """The kernels declared in mcu_kernels.h (the files that include it)."""
    return [p for p in runtime_sources() if '#include "mcu_kernels.h"' in p.read_text()]


# kinds whose kernel may write its output over its first input (same shape): elementwise and row-wise ops
IN_PLACE_KINDS = {"add", "mul", "softmax", "logistic", "quantize"}


# ============================================================================ one op, twice: TFLite and IR

@dataclass
class Case:
    name: str
    graph: Graph
    op: Op
    model: bytes  # the one-op .tflite; b"" when TFLite has no such op (checked against the reference only)
    inputs: list[list[np.ndarray]] = field(default_factory=list)  # per run: the op's data inputs, IR order


class Spec:
    """Collects tensors for both the TFLite builder and the IR."""

    def __init__(self, name: str):
        self.name = name
        self.b = ModelBuilder()
        self.g = Graph(name)
        self.index: dict[str, int] = {}

    def t(self, name: str, shape, scale: float, zp: int) -> str:
        scale = float(np.float32(scale))
        self.index[name] = self.b.tensor(name, shape, "int8", scale=scale, zero_point=zp)
        self.g.add_tensor(Tensor(name, tuple(shape), "int8", Quant(scale, zp)))
        return name

    def const(self, name: str, data) -> int:
        return self.b.const(name, np.asarray(data, dtype=np.int32))

    def case(self, op: Op, tfl_op: str, tfl_inputs: list, options: str | None = None, inputs=None,
             rng=None, **fields) -> Case:
        self.g.ops.append(op)
        self.g.inputs = [n for n in op.inputs]
        self.g.outputs = list(op.outputs)
        self.g.validate()
        ins = [i if isinstance(i, int) else self.index[i] for i in tfl_inputs]
        self.b.op(tfl_op, ins, [self.index[op.outputs[0]]], options, **fields)
        self.b.inputs = [self.index[n] for n in op.inputs]
        self.b.outputs = [self.index[op.outputs[0]]]
        case = Case(self.name, self.g, op, self.b.build())
        case.inputs = inputs if inputs is not None else random_inputs(self.g, op, rng)
        return case


def random_inputs(graph: Graph, op: Op, rng) -> list[list[np.ndarray]]:
    """N_INPUTS runs: uniform int8, narrow ranges around random centres, and the two extremes."""
    runs = []
    shapes = [graph.tensor(n).shape for n in op.inputs]
    for k in range(N_INPUTS):
        run = []
        for s in shapes:
            if k == 0:
                run.append(np.full(s, -128, np.int8))
            elif k == 1:
                run.append(np.full(s, 127, np.int8))
            elif k % 3 == 0:
                centre = int(rng.integers(-100, 100))
                run.append(np.clip(rng.integers(centre - 20, centre + 20, size=s), -128, 127).astype(np.int8))
            else:
                run.append(rng.integers(-128, 128, size=s, dtype=np.int8))
        runs.append(run)
    return runs


def same_pads(in_hw, filt, stride):
    """TFLite SAME padding as explicit (top, left, bottom, right) and the output size."""
    out, pads = [], []
    for size, f, s in zip(in_hw, filt, stride):
        o = (size + s - 1) // s
        total = max((o - 1) * s + f - size, 0)
        out.append(o)
        pads.append((total // 2, total - total // 2))
    return tuple(out), (pads[0][0], pads[1][0], pads[0][1], pads[1][1])


_ACT_TFL = {"none": "NONE", "relu": "RELU", "relu6": "RELU6", "relu_n1_to_1": "RELU_N1_TO_1"}


# ============================================================================ the cases

def pool_cases(rng) -> list[Case]:
    cases = []
    configs = [
        # kind, input shape, filter, stride, padding, activation, scale, zp
        ("avg_pool2d", (1, 9, 9, 3), (3, 3), (2, 2), "SAME", "none", 0.05, -7),
        ("avg_pool2d", (2, 8, 7, 4), (2, 3), (1, 1), "VALID", "relu6", 0.04, 10),
        ("avg_pool2d", (1, 5, 6, 2), (5, 5), (1, 1), "SAME", "relu", 0.1, -3),
        ("avg_pool2d", (1, 7, 7, 8), (7, 7), (1, 1), "VALID", "none", 0.02, 0),
        ("avg_pool2d", (1, 6, 6, 3), (1, 1), (2, 2), "SAME", "none", 0.3, 5),
        ("avg_pool2d", (1, 66, 66, 1), (65, 65), (1, 1), "VALID", "none", 0.01, 1),  # count > 4096: division
        # four channels per word (mcu_pool_sum4_s8): KWS's global pool, 256 pixels (16-bit lanes full), 272
        # (one element at a time), a 2-channel tail after 4, depth 6 (unaligned words), borders of SAME padding
        ("avg_pool2d", (1, 25, 5, 64), (25, 5), (1, 1), "VALID", "none", 0.05, -3),
        ("avg_pool2d", (1, 16, 16, 8), (16, 16), (1, 1), "VALID", "relu", 0.05, 4),
        ("avg_pool2d", (1, 17, 16, 4), (17, 16), (1, 1), "VALID", "none", 0.05, -1),
        ("avg_pool2d", (2, 7, 6, 6), (3, 2), (2, 1), "SAME", "none", 0.05, 6),
        ("max_pool2d", (1, 9, 9, 3), (3, 3), (2, 2), "SAME", "none", 0.05, -7),
        ("max_pool2d", (2, 8, 7, 4), (2, 2), (2, 2), "VALID", "relu", 0.04, 10),
        ("max_pool2d", (1, 5, 6, 2), (4, 3), (1, 2), "SAME", "relu6", 0.03, -20),
        ("max_pool2d", (1, 4, 4, 5), (4, 4), (3, 3), "SAME", "relu_n1_to_1", 0.01, 3),
    ]
    for i, (kind, shape, filt, stride, padding, act, scale, zp) in enumerate(configs):
        if padding == "SAME":
            out_hw, pads = same_pads(shape[1:3], filt, stride)
        else:
            out_hw = tuple((shape[1 + k] - filt[k]) // stride[k] + 1 for k in range(2))
            pads = (0, 0, 0, 0)
        s = Spec(f"{kind}_{i}")
        x = s.t("x", shape, scale, zp)
        y = s.t("y", (shape[0], *out_hw, shape[3]), scale, zp)
        op = Op("pool", kind, [x], [y], Pool2DAttrs(filter=filt, stride=stride, pads=pads, activation=act))
        tfl = "AVERAGE_POOL_2D" if kind == "avg_pool2d" else "MAX_POOL_2D"
        cases.append(s.case(op, tfl, [x], "Pool2DOptions", rng=rng, Padding=padding, StrideH=stride[0],
                            StrideW=stride[1], FilterHeight=filt[0], FilterWidth=filt[1],
                            FusedActivationFunction=_ACT_TFL[act]))
    # ONNX's count_include_pad (no TFLite equivalent: checked against mcutool.reference only), explicit
    # asymmetric pads
    for i, (shape, filt, stride, pads, zp) in enumerate([((1, 6, 5, 3), (3, 3), (2, 2), (1, 0, 2, 1), -9),
                                                         ((2, 4, 4, 2), (2, 3), (1, 2), (1, 1, 1, 1), 40)]):
        g = Graph(f"avg_pool2d_cip_{i}")
        out_hw = tuple((shape[1 + k] + pads[k] + pads[k + 2] - filt[k]) // stride[k] + 1 for k in range(2))
        g.add_tensor(Tensor("x", shape, "int8", Quant(0.05, zp)))
        g.add_tensor(Tensor("y", (shape[0], *out_hw, shape[3]), "int8", Quant(0.05, zp)))
        op = Op("pool", "avg_pool2d", ["x"], ["y"],
                Pool2DAttrs(filter=filt, stride=stride, pads=pads, count_include_pad=True))
        g.ops.append(op)
        g.inputs, g.outputs = ["x"], ["y"]
        cases.append(Case(g.name, g, op, b"", random_inputs(g, op, rng)))
    return cases


def binary_cases(rng) -> list[Case]:
    cases = []
    configs = [
        # shape1, shape2, out, (s1, z1), (s2, z2), (so, zo), act
        ((1, 4, 4, 3), (1, 4, 4, 3), (1, 4, 4, 3), (0.05, -3), (0.07, 12), (0.1, 2), "none"),
        ((1, 4, 4, 3), (1, 1, 1, 3), (1, 4, 4, 3), (0.02, 5), (0.5, -1), (0.3, -10), "relu6"),
        ((1, 4, 5, 3), (1, 4, 1, 1), (1, 4, 5, 3), (0.11, 0), (0.013, 30), (0.09, 7), "relu"),
        ((2, 1, 3, 4), (1, 5, 1, 4), (2, 5, 3, 4), (0.04, -50), (0.04, 60), (0.06, 0), "none"),
        ((3, 7), (7,), (3, 7), (0.2, 3), (0.001, -128), (0.15, -4), "relu6"),
        ((1, 2, 2, 6), (), (1, 2, 2, 6), (0.03, 1), (0.06, 0), (0.05, 3), "relu_n1_to_1"),
    ]
    for kind, tfl, opts in (("add", "ADD", "AddOptions"), ("mul", "MUL", "MulOptions")):
        for i, (sh1, sh2, sho, q1, q2, qo, act) in enumerate(configs):
            if kind == "mul":
                qo = (qo[0] * q1[0] * q2[0] * 40, qo[1])  # keep products in range
            s = Spec(f"{kind}_{i}")
            a = s.t("a", sh1, *q1)
            b = s.t("b", sh2, *q2)
            y = s.t("y", sho, *qo)
            op = Op(kind, kind, [a, b], [y], ElementwiseAttrs(activation=act))
            cases.append(s.case(op, tfl, [a, b], opts, rng=rng, FusedActivationFunction=_ACT_TFL[act]))
    return cases


def add_table_cases(rng) -> list[Case]:
    """Same-shaped ADDs of >= 1024 elements, which runtime/mcu_add_s8.c computes through per-input tables of
    the 256 int8 values: right-shifted output multipliers (the usual case) and one in [1/2, 1) (shift 0)."""
    configs = [
        # shape, (s1, z1), (s2, z2), (so, zo), act
        ((1, 16, 16, 8), (0.05, -3), (0.07, 12), (0.1, 2), "none"),
        ((1, 8, 8, 20), (0.02, -128), (0.9, 100), (0.3, -10), "relu6"),
        ((2, 32, 17), (0.0123, 127), (0.0123, -128), (0.03, -128), "relu"),
        ((1, 4, 16, 16), (0.5, 7), (0.25, -9), (1.4e-6, 0), "none"),  # output multiplier 0.68: shift 0
    ]
    cases = []
    for i, (shape, q1, q2, qo, act) in enumerate(configs):
        s = Spec(f"add_table_{i}")
        a, b, y = s.t("a", shape, *q1), s.t("b", shape, *q2), s.t("y", shape, *qo)
        op = Op(f"add_table_{i}", "add", [a, b], [y], ElementwiseAttrs(activation=act))
        cases.append(s.case(op, "ADD", [a, b], "AddOptions", rng=rng, FusedActivationFunction=_ACT_TFL[act]))
    return cases


def softmax_cases(rng) -> list[Case]:
    cases = []
    configs = [((1, 10), 0.1, 5, 1.0), ((1, 10), 0.02, -10, 1.0), ((2, 3, 17), 0.5, 0, 1.0),
               ((4, 100), 0.05, 20, 1.0), ((1, 5, 5, 12), 1.3, -100, 1.0), ((3, 12), 0.0625, -128, 0.5),
               ((2, 9), 0.003, 7, 2.0), ((1, 1), 0.1, 0, 1.0)]
    for i, (shape, scale, zp, beta) in enumerate(configs):
        s = Spec(f"softmax_{i}")
        x = s.t("x", shape, scale, zp)
        y = s.t("y", shape, 1.0 / 256, -128)
        op = Op("softmax", "softmax", [x], [y], SoftmaxAttrs(beta=beta))
        cases.append(s.case(op, "SOFTMAX", [x], "SoftmaxOptions", rng=rng, Beta=beta))
    return cases


def logistic_cases(rng) -> list[Case]:
    cases = []
    every_value = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    scales = [0.001, 0.01, 0.0234, 0.05, 0.0625, 0.1, 0.123, 0.25, 0.5, 1.0, 3.7]
    for i, scale in enumerate(scales + [float(v) for v in rng.uniform(0.002, 0.2, size=9)]):
        zp = int(rng.integers(-128, 128))
        s = Spec(f"logistic_{i}")
        x = s.t("x", (1, 256), scale, zp)
        y = s.t("y", (1, 256), 1.0 / 256, -128)
        op = Op("logistic", "logistic", [x], [y], NoAttrs())
        runs = [[every_value]] + [[rng.integers(-128, 128, size=(1, 256), dtype=np.int8)] for _ in range(N_INPUTS - 1)]
        cases.append(s.case(op, "LOGISTIC", [x], inputs=runs))
    return cases


def pad_cases(rng) -> list[Case]:
    cases = []
    configs = [((1, 5, 4, 3), ((0, 0), (1, 2), (2, 0), (0, 0)), 0.1, -7),
               ((2, 3, 3, 2), ((1, 0), (0, 1), (1, 1), (2, 3)), 0.02, 100),
               ((3, 4, 5), ((0, 0), (3, 1), (0, 2)), 0.5, 0),
               ((6, 2), ((2, 2), (1, 0)), 0.3, -128)]
    for i, (shape, pads, scale, zp) in enumerate(configs):
        s = Spec(f"pad_{i}")
        x = s.t("x", shape, scale, zp)
        y = s.t("y", tuple(d + b + e for d, (b, e) in zip(shape, pads)), scale, zp)
        p = s.const("paddings", np.array(pads, dtype=np.int32))
        op = Op("pad", "pad", [x], [y], PadAttrs(pads=pads))
        cases.append(s.case(op, "PAD", [x, p], rng=rng))
    return cases


def transpose_cases(rng) -> list[Case]:
    cases = []
    configs = [((1, 3, 4, 5), (0, 3, 1, 2)), ((2, 3, 4, 5), (3, 2, 1, 0)), ((2, 3, 4, 5), (0, 2, 1, 3)),
               ((2, 3, 4, 5), (1, 0, 3, 2)), ((4, 5, 6), (2, 0, 1)), ((7, 3), (1, 0))]
    for i, (shape, perm) in enumerate(configs):
        s = Spec(f"transpose_{i}")
        x = s.t("x", shape, 0.07, 9)
        y = s.t("y", tuple(shape[p] for p in perm), 0.07, 9)
        p = s.const("perm", np.array(perm, dtype=np.int32))
        op = Op("transpose", "transpose", [x], [y], TransposeAttrs(perm=perm))
        cases.append(s.case(op, "TRANSPOSE", [x, p], rng=rng))
    return cases


def mean_cases(rng) -> list[Case]:
    cases = []
    configs = [
        # shape, axes, keep_dims, (s_in, zp_in), (s_out, zp_out)
        ((1, 5, 7, 6), (1, 2), True, (0.05, 3), (0.02, -7)),
        ((1, 5, 7, 6), (1, 2), False, (0.05, 3), (0.02, -7)),
        ((2, 9, 9, 5), (1, 2), False, (0.013, -20), (0.013, -20)),
        ((2, 9, 9, 5), (2, 1), True, (0.013, -20), (0.011, 9)),
        ((1, 4, 6, 10), (3,), True, (0.1, 0), (0.04, 12)),
        ((2, 4, 6, 3), (1,), False, (0.1, 0), (0.3, -1)),
        ((3, 8, 5), (1,), False, (0.02, 50), (0.05, -30)),
        ((1, 16, 16, 3), (1, 2), False, (0.2, -128), (0.007, 0)),
    ]
    for i, (shape, axes, keep, qi, qo) in enumerate(configs):
        s = Spec(f"mean_{i}")
        x = s.t("x", shape, *qi)
        red = {a % len(shape) for a in axes}
        oshape = tuple((1 if k in red else d) for k, d in enumerate(shape) if keep or k not in red)
        y = s.t("y", oshape, *qo)
        ax = s.const("axes", np.array(axes, dtype=np.int32))
        op = Op("mean", "mean", [x], [y], MeanAttrs(axes=axes, keep_dims=keep))
        cases.append(s.case(op, "MEAN", [x, ax], "ReducerOptions", rng=rng, KeepDims=keep))
    return cases


def concat_cases(rng) -> list[Case]:
    """TFLite's int8 CONCATENATION requires the inputs' quantization to equal the output's; a differently
    quantized input is requantized by an int8 -> int8 QUANTIZE first (what the converter emits). The IR op
    concatenates differently quantized inputs directly; the TFLite model is QUANTIZE(s) + CONCATENATION."""
    cases = []
    configs = [
        # shapes, axis, input quants, output quant
        ([(1, 4, 4, 3), (1, 4, 4, 5), (1, 4, 4, 2)], 3, [(0.05, 3), (0.1, -20), (0.02, 0)], (0.08, -5)),
        ([(1, 2, 5, 3), (1, 4, 5, 3), (1, 1, 5, 3)], 1, [(0.3, 100), (0.08, -5), (0.011, -128)], (0.08, -5)),
        ([(2, 3, 2, 4), (2, 3, 1, 4)], 2, [(0.05, 0), (0.05, 0)], (0.05, 0)),
        ([(3, 4), (2, 4), (1, 4)], 0, [(0.2, 1), (0.6, 2), (0.01, 3)], (0.1, 0)),
    ]
    for i, (shapes, axis, qins, qo) in enumerate(configs):
        s = Spec(f"concat_{i}")
        names = [s.t(f"x{k}", sh, *q) for k, (sh, q) in enumerate(zip(shapes, qins))]
        oshape = list(shapes[0])
        oshape[axis] = sum(sh[axis] for sh in shapes)
        y = s.t("y", tuple(oshape), *qo)
        op = Op("concat", "concat", names, [y], ConcatAttrs(axis=axis))
        # TFLite model: QUANTIZE in front of every input quantized differently from the output
        tfl_ins = []
        for k, (sh, q) in enumerate(zip(shapes, qins)):
            if (float(np.float32(q[0])), q[1]) == (float(np.float32(qo[0])), qo[1]):
                tfl_ins.append(s.index[names[k]])
            else:
                rq = s.b.tensor(f"rq{k}", sh, "int8", scale=float(np.float32(qo[0])), zero_point=qo[1])
                s.b.op("QUANTIZE", [s.index[names[k]]], [rq])
                tfl_ins.append(rq)
        cases.append(s.case(op, "CONCATENATION", tfl_ins, "ConcatenationOptions", rng=rng, Axis=axis))
    return cases


def quantize_cases(rng) -> list[Case]:
    cases = []
    configs = [((1, 8, 8, 3), (0.05, 3), (0.1, -20)), ((4, 33), (0.1, -128), (0.013, 5)),
               ((2, 3, 7), (0.02, 50), (0.02, -50)), ((1, 100), (0.9, 0), (0.0035, 0))]
    for i, (shape, qi, qo) in enumerate(configs):
        s = Spec(f"quantize_{i}")
        x = s.t("x", shape, *qi)
        y = s.t("y", shape, *qo)
        op = Op("quantize", "quantize", [x], [y], NoAttrs())
        cases.append(s.case(op, "QUANTIZE", [x], rng=rng))
    return cases


def all_cases() -> list[Case]:
    rng = np.random.default_rng(20240531)
    return (pool_cases(rng) + binary_cases(rng) + softmax_cases(rng) + logistic_cases(rng) + pad_cases(rng)
            + transpose_cases(rng) + mean_cases(rng) + concat_cases(rng) + quantize_cases(rng)
            + add_table_cases(np.random.default_rng(11)))


# ============================================================================ the C harness

def harness_source(cases: list[Case]) -> str:
    """One C program holding every case's parameters (as runtime_params renders them) and a dispatcher.

    stdin-free protocol: argv[1] holds records (int32 case index, then the case's inputs, raw, back to back);
    for each record the program writes the case's output to argv[2]."""
    defs, funcs, table = [], [], []
    for i, c in enumerate(cases):
        prefix = f"C{i}"
        kp = rp.kernel_params(c.graph, c.op)
        defs.append(rp.c_definitions(kp, prefix))
        ins = [f"in[{k}]" for k in range(kp.num_inputs - len(kp.const_inputs))]
        call = rp.c_call(kp, prefix, ins, "out", status="st")
        funcs.append(f"static mcu_status run_{prefix}(const int8_t *const *in, int8_t *out)\n"
                     f"{{\n    mcu_status st;\n    {call}\n    return st;\n}}\n")
        in_sizes = [c.graph.tensor(n).size for n in c.op.inputs if not c.graph.tensor(n).is_const]
        out_size = c.graph.tensor(c.op.outputs[0]).size
        sizes = ", ".join(str(v) for v in in_sizes)
        in_place = int(c.op.kind in IN_PLACE_KINDS
                       and c.graph.tensor(c.op.inputs[0]).shape == c.graph.tensor(c.op.outputs[0]).shape)
        table.append(f"    {{run_{prefix}, {len(in_sizes)}, {{{sizes}}}, {out_size}, {in_place}}},")
    return """#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcu_kernels.h"

""" + "\n".join(defs) + "\n" + "\n".join(funcs) + """
typedef struct {
    mcu_status (*run)(const int8_t *const *in, int8_t *out);
    int num_inputs;
    long in_size[8];
    long out_size;
    int in_place; /* also run with the output written over input 0, which must give the same bytes */
} harness_case;

static const harness_case cases[] = {
""" + "\n".join(table) + """
};

int main(int argc, char **argv)
{
    FILE *fi, *fo;
    int32_t idx;
    if (argc != 3) {
        return 2;
    }
    fi = fopen(argv[1], "rb");
    fo = fopen(argv[2], "wb");
    if (fi == NULL || fo == NULL) {
        return 2;
    }
    while (fread(&idx, sizeof idx, 1, fi) == 1) {
        const harness_case *c = &cases[idx];
        int8_t *in[8];
        int8_t *out;
        int k;
        mcu_status st;
        for (k = 0; k < c->num_inputs; k++) {
            in[k] = (int8_t *)malloc((size_t)c->in_size[k]);  /* exact sizes: ASan sees any overrun */
            if (in[k] == NULL || fread(in[k], 1, (size_t)c->in_size[k], fi) != (size_t)c->in_size[k]) {
                return 3;
            }
        }
        out = (int8_t *)malloc((size_t)c->out_size);
        if (out == NULL) {
            return 3;
        }
        memset(out, 0x55, (size_t)c->out_size);
        st = c->run((const int8_t *const *)in, out);
        if (st != MCU_OK) {
            fprintf(stderr, "case %d: status %d\\n", (int)idx, (int)st);
            return 4;
        }
        fwrite(out, 1, (size_t)c->out_size, fo);
        if (c->in_place) {
            st = c->run((const int8_t *const *)in, in[0]);
            if (st != MCU_OK || memcmp(in[0], out, (size_t)c->out_size) != 0) {
                fprintf(stderr, "case %d: in-place result differs\\n", (int)idx);
                return 5;
            }
        }
        for (k = 0; k < c->num_inputs; k++) {
            free(in[k]);
        }
        free(out);
    }
    fclose(fi);
    fclose(fo);
    return 0;
}
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Runs every case through the C harness; returns (cases, C outputs per case per run)."""
    gcc = require_tool("gcc")
    cases = all_cases()
    work = tmp_path_factory.mktemp("runtime_kernels")
    (work / "harness.c").write_text(harness_source(cases))
    exe = work / "harness"
    cmd = [gcc, *CFLAGS, *SANITIZE, "-I", str(RUNTIME), str(work / "harness.c"),
           *map(str, kernel_sources()), "-o", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-6000:]
    records = bytearray()
    for i, c in enumerate(cases):
        for run in c.inputs:
            records += struct.pack("<i", i)
            for x in run:
                records += np.ascontiguousarray(x, dtype=np.int8).tobytes()
    (work / "in.bin").write_bytes(bytes(records))
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=1", UBSAN_OPTIONS="print_stacktrace=1")
    proc = subprocess.run([str(exe), str(work / "in.bin"), str(work / "out.bin")], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    data = np.frombuffer((work / "out.bin").read_bytes(), dtype=np.int8)
    outputs, pos = [], 0
    for c in cases:
        out_t = c.graph.tensor(c.op.outputs[0])
        per_case = []
        for _ in c.inputs:
            per_case.append(data[pos:pos + out_t.size].reshape(out_t.shape))
            pos += out_t.size
        outputs.append(per_case)
    assert pos == data.size
    return cases, outputs, work


KINDS = ["avg_pool2d", "max_pool2d", "add", "mul", "softmax", "logistic", "pad", "transpose", "mean", "concat",
         "quantize"]


@pytest.mark.parametrize("kind", KINDS)
def test_kernel_matches_tflite_and_reference(results, kind):
    cases, outputs, work = results
    checked = 0
    for c, outs in zip(cases, outputs):
        if c.op.kind != kind:
            continue
        interp = None
        if c.model:  # cases without a TFLite equivalent are checked against the reference only
            path = work / f"{c.name}.tflite"
            path.write_bytes(c.model)
            # MUL: the tflite-micro interpreter, as tflite-runtime's mul.cc computes the multiplier in float32 and
            # TFLite Micro's mul_common.cc in double (DESIGN.md §6); they differ on mul_0's inputs
            interp = MicroInterpreter(path) if kind == "mul" else RefInterpreter(path)
        who = "tflite-micro" if kind == "mul" else "tflite-runtime"
        for run, got in zip(c.inputs, outs):
            if interp is not None:
                want = interp(*run)[0].reshape(got.shape)
                assert want.dtype == np.int8
                mismatch = np.count_nonzero(want != got)
                assert np.array_equal(got, want), (f"{c.name}: {mismatch} of {got.size} outputs differ from "
                                                   f"{who} (first at {np.argwhere(want != got)[0]})")
            ref_out = reference.run(c.graph, dict(zip(c.op.inputs, run)))[c.op.outputs[0]]
            assert np.array_equal(got, ref_out), f"{c.name}: differs from mcutool.reference"
            checked += 1
    assert checked >= N_INPUTS * 3, f"only {checked} runs of {kind}"


def test_every_case_has_twenty_inputs(results):
    cases, _, _ = results
    assert all(len(c.inputs) >= N_INPUTS for c in cases)
    assert {c.op.kind for c in cases} == set(KINDS)


def test_rendered_parameters_are_deterministic():
    a = harness_source(all_cases())
    b = harness_source(all_cases())
    assert a == b


# ============================================================================ fixed-point primitives

FIXEDPOINT_HARNESS = r"""
#include <stdint.h>
#include <stdio.h>

#include "mcu_fixedpoint.h"

/* records of three int32 (function, a, b) in argv[1]; two int32 results per record to argv[2] */
int main(int argc, char **argv)
{
    FILE *fi, *fo;
    int32_t rec[3];
    if (argc != 3 || (fi = fopen(argv[1], "rb")) == NULL || (fo = fopen(argv[2], "wb")) == NULL) {
        return 2;
    }
    while (fread(rec, sizeof rec[0], 3, fi) == 3) {
        int32_t r[2] = {0, 0};
        int bits = 0;
        switch (rec[0]) {
        case 0: r[0] = mcu_fp_srdhm(rec[1], rec[2]); break;
        case 1: r[0] = mcu_fp_rdbp(rec[1], (int)rec[2]); break;
        case 2: r[0] = mcu_fp_sat_mul_pot(rec[1], (int)rec[2]); break;
        case 3: r[0] = mcu_requantize(rec[1], rec[2] & 0x7fffffe0, ((rec[2] & 31) * 61) / 31 - 31); break;
        case 4: r[0] = mcu_fp_exp_on_negative_values_q5(rec[1]); break;
        case 5: r[0] = mcu_fp_one_over_one_plus_x_q0(rec[1]); break;
        case 6: r[0] = mcu_fp_get_reciprocal(rec[1], (int)rec[2], &bits); r[1] = bits; break;
        case 7: r[0] = mcu_requantize_gt_one(rec[1], rec[2] & 0x7fffffe0, rec[2] & 31); break;
        default: return 3;
        }
        fwrite(r, sizeof r[0], 2, fo);
    }
    fclose(fi);
    fclose(fo);
    return 0;
}
"""


def test_fixed_point_primitives_match_reference(tmp_path):
    """mcu_fixedpoint.h against mcutool.reference's independent numpy gemmlowp/TFLite primitives, on random and
    edge values (int8 outputs of softmax hide low-bit errors, so the primitives are compared directly)."""
    gcc = require_tool("gcc")
    rng = np.random.default_rng(7)
    n = 4000
    i32 = lambda size: rng.integers(-(1 << 31), 1 << 31, size=size, dtype=np.int64)
    edges = np.array([-(1 << 31), -(1 << 31) + 1, -1, 0, 1, (1 << 31) - 1, 1 << 30, -(1 << 30)], np.int64)
    recs = []

    def add(fn, a, b):
        a, b = np.broadcast_arrays(np.asarray(a, np.int64), np.asarray(b, np.int64))
        recs.append(np.stack([np.full(a.shape, fn), a, b], axis=-1).reshape(-1, 3))

    add(0, np.concatenate([i32(n), edges.repeat(8)]), np.concatenate([i32(n), np.tile(edges, 8)]))
    add(1, np.concatenate([i32(n), edges.repeat(32)]), np.concatenate([rng.integers(0, 32, n), np.tile(np.arange(32), 8)]))
    add(2, np.concatenate([i32(n), edges.repeat(30)]), np.concatenate([rng.integers(1, 31, n), np.tile(np.arange(1, 31), 8)]))
    add(3, i32(n), rng.integers(1 << 30, 1 << 31, n))
    add(4, np.concatenate([-rng.integers(0, 1 << 31, n), -(rng.integers(0, 1 << 12, n) << 14), [0, -1, -(1 << 31)]]), 0)
    add(5, np.concatenate([rng.integers(0, 1 << 31, n), [0, 1, (1 << 31) - 1]]), 0)
    add(6, np.concatenate([rng.integers(1, 1 << 31, n), rng.integers(1, 1 << 20, n), [1, (1 << 31) - 1]]), 12)
    add(7, rng.integers(-255, 256, n), rng.integers(1 << 30, 1 << 31, n))
    recs = np.concatenate(recs).astype(np.int64)

    src = tmp_path / "fp.c"
    src.write_text(FIXEDPOINT_HARNESS)
    exe = tmp_path / "fp"
    proc = subprocess.run([gcc, *CFLAGS, *SANITIZE, "-I", str(RUNTIME), str(src), "-o", str(exe)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    (tmp_path / "in.bin").write_bytes(recs.astype("<i4").tobytes())
    proc = subprocess.run([str(exe), str(tmp_path / "in.bin"), str(tmp_path / "out.bin")], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = np.frombuffer((tmp_path / "out.bin").read_bytes(), dtype="<i4").astype(np.int64).reshape(-1, 2)

    fn, a, b = recs[:, 0], recs[:, 1], recs[:, 2]
    want = np.zeros_like(got)
    sel = fn == 0
    want[sel, 0] = reference.saturating_rounding_doubling_high_mul(a[sel], b[sel])
    sel = fn == 1
    want[sel, 0] = reference.rounding_divide_by_pot(a[sel], b[sel])
    for e in range(1, 31):
        sel = (fn == 2) & (b == e)
        want[sel, 0] = reference.saturating_rounding_multiply_by_pot(a[sel], e)
    sel = fn == 3
    want[sel, 0] = reference.multiply_by_quantized_multiplier(a[sel], b[sel] & 0x7FFFFFE0,
                                                             ((b[sel] & 31) * 61) // 31 - 31)
    sel = fn == 4
    want[sel, 0] = reference.exp_on_negative_values(a[sel], 5)
    sel = fn == 5
    want[sel, 0] = reference.one_over_one_plus_x_for_x_in_0_1(a[sel])
    sel = fn == 6
    r, bits = reference.get_reciprocal(a[sel], 12)
    want[sel, 0], want[sel, 1] = r, bits
    sel = fn == 7
    want[sel, 0] = reference.multiply_by_quantized_multiplier_greater_than_one(a[sel], b[sel] & 0x7FFFFFE0,
                                                                              b[sel] & 31)
    for k, name in enumerate(["srdhm", "rdbp", "sat_mul_pot", "requantize", "exp_on_negative_values_q5",
                              "one_over_one_plus_x", "get_reciprocal", "requantize_gt_one"]):
        sel = fn == k
        bad = np.flatnonzero(np.any(got[sel] != want[sel], axis=1))
        assert bad.size == 0, (f"{name}: {bad.size} of {sel.sum()} differ, e.g. a={a[sel][bad[0]]} b={b[sel][bad[0]]}"
                               f" -> {got[sel][bad[0]]} vs reference {want[sel][bad[0]]}")


# ============================================================================ cross compilation, no float

# float/double soft-float helpers (libgcc's and the ARM EABI's)
FLOAT_SYMBOL = re.compile(r"__aeabi_[fd]\w*|__(add|sub|mul|div|neg)[sdt]f3|__(fix|fixuns)[sdt]f\w*|"
                          r"__float\w*[sdt]f|__(extend|trunc)\w*f2|__(eq|ne|lt|le|gt|ge|unord|cmp)[sdt]f2")
# VFP / FPU instructions in Thumb-2 disassembly: v<op> mnemonics (vadd, vmul, vldr, vmov, vcvt, vpush, ...)
VFP_INSN = re.compile(r"^\s*[0-9a-f]+:\s+(?:[0-9a-f]{4}\s?){1,2}\s+v[a-z]+", re.M)


def _cross(tool: str, flags: list[str], tmp: Path, name: str) -> list[Path]:
    objs = []
    for src in runtime_sources():
        obj = tmp / f"{name}_{src.stem}.o"
        proc = subprocess.run([tool, *flags, "-I", str(RUNTIME), "-c", str(src), "-o", str(obj)],
                              capture_output=True, text=True)
        assert proc.returncode == 0, f"{src.name} for {name}:\n{proc.stderr}"
        objs.append(obj)
    # every header of runtime/ together in one translation unit (they are included side by side)
    headers = sorted(RUNTIME.glob("*.h"))
    tu = tmp / f"{name}_headers.c"
    tu.write_text("".join(f'#include "{h.name}"\n' for h in headers) + "int mcu_headers_compile;\n")
    proc = subprocess.run([tool, *flags, "-I", str(RUNTIME), "-c", str(tu), "-o", str(tmp / f"{name}_h.o")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, f"runtime headers together for {name}:\n{proc.stderr}"
    return objs


def _no_float(nm: str, objs: list[Path]) -> None:
    for obj in objs:
        syms = subprocess.run([nm, str(obj)], capture_output=True, text=True, check=True).stdout
        bad = sorted({m.group(0) for m in FLOAT_SYMBOL.finditer(syms)})
        assert not bad, f"{obj.name} uses floating point: {bad}"


ARM_FLAGS = ["-mcpu=cortex-m7", "-mthumb", "-O2", "-Wall", "-Wextra", "-Werror", "-std=c99"]


def test_cross_compile_cortex_m7(tmp_path):
    gcc = require_tool("arm-none-eabi-gcc")
    nm = require_tool("arm-none-eabi-nm")
    objdump = require_tool("arm-none-eabi-objdump")
    soft = _cross(gcc, ARM_FLAGS + ["-mfloat-abi=soft"], tmp_path, "m7soft")
    _no_float(nm, soft)
    # with the FPU enabled any float arithmetic would become VFP instructions: there must be none
    hard = _cross(gcc, ARM_FLAGS + ["-mfloat-abi=hard", "-mfpu=fpv5-d16"], tmp_path, "m7hard")
    _no_float(nm, hard)
    for obj in soft + hard:
        asm = subprocess.run([objdump, "-d", str(obj)], capture_output=True, text=True, check=True).stdout
        found = VFP_INSN.findall(asm)
        assert not found, f"{obj.name} holds VFP instructions: {found[:5]}"


def test_cross_compile_rv32imac(tmp_path):
    gcc = require_tool("riscv64-unknown-elf-gcc")
    nm = require_tool("riscv64-unknown-elf-nm")
    flags = ["-march=rv32imac", "-mabi=ilp32", "-O2", "-Wall", "-Wextra", "-Werror", "-std=c99"]
    specs = Path("/usr/lib/picolibc/riscv64-unknown-elf/picolibc.specs")
    if specs.exists():  # Debian's riscv64-unknown-elf-gcc ships no libc headers of its own
        flags.insert(0, f"--specs={specs}")
    elif IN_CI:
        pytest.fail("picolibc-riscv64-unknown-elf is not installed (bash install.sh installs it)")
    else:
        pytest.skip("picolibc-riscv64-unknown-elf is not installed (bash install.sh installs it)")
    objs = _cross(gcc, flags, tmp_path, "rv32")
    _no_float(nm, objs)


def test_freestanding_includes_only():
    """runtime kernels include nothing beyond <stdint.h>, <stddef.h>, <string.h>, the compiler's own intrinsics
    header <arm_acle.h> (no library behind it) and runtime/ headers."""
    allowed = {"stdint.h", "stddef.h", "string.h", "arm_acle.h"}
    files = [RUNTIME / "mcu_fixedpoint.h", RUNTIME / "mcu_kernels.h", *kernel_sources()]
    assert len(files) >= 13
    for src in files:
        text = src.read_text()
        for inc in re.findall(r'#include\s*<([^>]+)>', text):
            assert inc in allowed, f"{src.name} includes <{inc}>"
        assert not re.search(r"\b(float|double|malloc|free)\b", re.sub(r"/\*.*?\*/", "", text, flags=re.S)), \
            f"{src.name} mentions float/double/malloc"


def _one_op(kind, attrs, shapes_quants, out):
    g = Graph("bad")
    names = []
    for i, (shape, scale, zp) in enumerate(shapes_quants):
        g.add_tensor(Tensor(f"x{i}", shape, "int8", Quant(scale, zp)))
        names.append(f"x{i}")
    g.add_tensor(Tensor("y", out[0], out[3] if len(out) > 3 else "int8", Quant(out[1], out[2])))
    op = Op("bad_layer", kind, names, ["y"], attrs)
    g.ops.append(op)
    g.inputs, g.outputs = names, ["y"]
    return g, op


@pytest.mark.parametrize("kind, attrs, ins, out, words", [
    ("avg_pool2d", Pool2DAttrs(filter=(2, 2), stride=(2, 2)), [((1, 4, 4, 1), 0.1, 0)], ((1, 2, 2, 1), 0.2, 0),
     "quantization differ"),
    ("softmax", SoftmaxAttrs(), [((1, 10), 0.1, 0)], ((1, 10), 0.1, 0), "1/256"),
    ("add", ElementwiseAttrs(), [((1, 4, 4, 3), 0.1, 0), ((1, 3, 4, 3), 0.1, 0)], ((1, 4, 4, 3), 0.1, 0),
     "broadcast"),
    # no two axes stay adjacent, so the rank-5 permutation cannot be merged onto the rank-4 kernel
    ("transpose", TransposeAttrs(perm=(1, 0, 3, 2, 4)), [((2, 2, 2, 2, 2), 0.1, 0)], ((2, 2, 2, 2, 2), 0.1, 0),
     "rank 5"),
    ("quantize", NoAttrs(), [((1, 4), 0.1, 0)], ((1, 4), 0.1, 0, "float32"), "host"),
])
def test_unsupported_parameters_are_user_errors(kind, attrs, ins, out, words):
    from mcutool.errors import UserError

    g, op = _one_op(kind, attrs, ins, out)
    with pytest.raises(UserError, match=words) as info:
        rp.kernel_params(g, op)
    assert "bad_layer" in str(info.value)


def test_reshape_has_no_kernel():
    g, op = _one_op("reshape", NoAttrs(), [((1, 2, 3), 0.1, 0)], ((6,), 0.1, 0))
    assert rp.kernel_params(g, op) is None
