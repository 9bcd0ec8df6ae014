"""The elementwise and activation operators of issue 10 (mcutool/ops/{minmax,abs,relu,hard_swish,tanh,elu,rsqrt,
prelu,squared_difference,div,l2_normalization}.py), int8.

Oracle: TFLite Micro's own interpreter (the tflite-micro pip package) on one-op .tflite models written with
tests/tflite_builder.py; the model goes through mcutool's TFLite importer and mcutool.reference must equal the
interpreter bit for bit. A unary int8 op is checked on all 256 input values at once, for many scales and zero
points. Then the runtime/ kernels (a lookup table for the unary ops, C kernels for the others) are compiled on
the host with -Wall -Wextra -Werror and ASan/UBSan and must equal the reference on every run.
"""
from __future__ import annotations

import os
import struct
import subprocess

import numpy as np
import pytest

from conftest import require_tool
from tflite_builder import ModelBuilder

from mcutool import reference
from mcutool.errors import UserError
from mcutool.frontends.tflite import load_tflite

EVERY_INT8 = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)


def micro_outputs(model: bytes, runs: list[list[np.ndarray]]) -> list[np.ndarray]:
    """TFLite Micro's interpreter on each run (a list of input arrays)."""
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(model)
    outs = []
    for run in runs:
        for i, x in enumerate(run):
            interp.set_input(x, i)
        interp.invoke()
        outs.append(interp.get_output(0).copy())
    return outs


def unary_model(op_name: str, shape, qin, qout, options=None, **fields) -> bytes:
    b = ModelBuilder()
    x = b.tensor("x", shape, "int8", scale=qin[0], zero_point=qin[1])
    y = b.tensor("y", shape, "int8", scale=qout[0], zero_point=qout[1])
    b.op(op_name, [x], [y], options, **fields)
    b.inputs, b.outputs = [x], [y]
    return b.build()


def load(tmp_path, name: str, model: bytes):
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(model)
    return load_tflite(path)


def assert_reference_equals_micro(tmp_path, name, model, runs, min_distinct=2):
    graph = load(tmp_path, name, model)
    want = micro_outputs(model, runs)
    for k, (run, w) in enumerate(zip(runs, want)):
        got = reference.run(graph, dict(zip(graph.inputs, run)))[graph.outputs[0]]
        assert got.dtype == np.int8 and w.dtype == np.int8
        bad = np.argwhere(got != w)
        if bad.size:
            at = tuple(bad[0])
            ins = [np.broadcast_to(r.reshape(graph.tensor(n).shape), got.shape)[at] if r.size > 1 else r.reshape(-1)[0]
                   for r, n in zip(run, graph.inputs)]
            pytest.fail(f"{name} run {k}: {len(bad)} of {got.size} outputs differ from TFLite Micro, first at {at}: "
                        f"inputs {ins}, got {got[at]}, TFLite Micro {w[at]}")
    assert len(np.unique(np.concatenate([w.reshape(-1) for w in want]))) >= min_distinct, f"{name}: output constant"
    return graph


# ------------------------------------------------------------------------------------------- unary ops

# (op, [(input quant, output quant)]): scales and zero points from small to large, odd ones included
UNARY = {
    "ABS": [((0.05, 3), (0.05, 3)), ((0.02, -100), (0.03, -128)), ((0.5, 60), (0.25, -20)), ((0.007, 0), (0.1, 5))],
    "RELU": [((0.05, 3), (0.05, 3)), ((0.1, -128), (0.04, -128)), ((0.013, 40), (0.02, -7)), ((0.3, -5), (0.3, 90))],
    "RELU6": [((0.05, 3), (0.05, 3)), ((0.03, -128), (0.03, -128)), ((0.1, 100), (0.1, 100)), ((0.01, -20), (0.01, -20))],
    "HARD_SWISH": [((0.05, 3), (0.04, -90)), ((0.1, -20), (0.05, -120)), ((0.02, 0), (0.012, -100)),
                   ((0.3, 10), (0.2, -110)), ((0.8, -3), (0.5, -120))],
    "TANH": [((0.05, 3), (1 / 128, 0)), ((0.01, -50), (1 / 128, 0)), ((0.15, 20), (1 / 128, 0)),
             ((0.5, 0), (1 / 128, 0)), ((0.0234, -128), (1 / 128, 0)), ((0.4, 9), (1 / 128, 0))],
    "ELU": [((0.05, 3), (0.05, 3)), ((0.02, 60), (0.01, -30)), ((0.1, -70), (0.06, -100))],
    "RSQRT": [((0.05, -128), (0.05, -120)), ((0.01, -128), (0.2, -128)), ((0.5, -100), (0.01, -128)),
              ((0.002, -128), (0.9, -128))],
}


def unary_runs(op_name: str, qin) -> list[list[np.ndarray]]:
    if op_name == "RSQRT":  # TFLite Micro refuses inputs below the zero point; they are checked apart
        return [[np.clip(EVERY_INT8, qin[1], 127).astype(np.int8)]]
    return [[EVERY_INT8]]


@pytest.mark.parametrize("op_name,qin,qout", [(k, qi, qo) for k, v in UNARY.items() for qi, qo in v],
                         ids=lambda v: str(v))
def test_unary_reference_equals_tflite_micro_on_every_int8(tmp_path, op_name, qin, qout):
    model = unary_model(op_name, (1, 256), qin, qout)
    assert_reference_equals_micro(tmp_path, op_name.lower(), model, unary_runs(op_name, qin), min_distinct=8)


def test_rsqrt_below_zero_point_is_the_int8_max(tmp_path):
    """TFLite Micro fails on inputs below the zero point (negative reals); mcutool's table gives them 127, as TFLite
    gives q == zp."""
    graph = load(tmp_path, "rsqrt", unary_model("RSQRT", (1, 256), (0.05, -20), (0.05, -120)))
    y = reference.run(graph, {"x": EVERY_INT8})["y"].reshape(-1)
    assert np.all(y[:109] == 127) and y[108] == 127 and y[109] < 127


# ------------------------------------------------------------------------------------------ binary ops

def binary_model(op_name: str, shapes, quants, out_shape, options=None, **fields) -> bytes:
    b = ModelBuilder()
    x1 = b.tensor("x1", shapes[0], "int8", scale=quants[0][0], zero_point=quants[0][1])
    x2 = b.tensor("x2", shapes[1], "int8", scale=quants[1][0], zero_point=quants[1][1])
    y = b.tensor("y", out_shape, "int8", scale=quants[2][0], zero_point=quants[2][1])
    b.op(op_name, [x1, x2], [y], options, **fields)
    b.inputs, b.outputs = [x1, x2], [y]
    return b.build()


def binary_runs(rng, shapes, n=12, avoid=None) -> list[list[np.ndarray]]:
    """Uniform int8, both extremes, narrow ranges; `avoid` = (input index, value) never drawn there."""
    runs = [[np.full(s, -128, np.int8) for s in shapes], [np.full(s, 127, np.int8) for s in shapes]]
    for k in range(n):
        run = []
        for s in shapes:
            if k % 3 == 2:
                c = int(rng.integers(-100, 100))
                run.append(np.clip(rng.integers(c - 15, c + 15, size=s), -128, 127).astype(np.int8))
            else:
                run.append(rng.integers(-128, 128, size=s, dtype=np.int8))
        runs.append(run)
    if avoid is not None:
        i, v = avoid
        for run in runs:
            run[i] = np.where(run[i] == v, np.int8(v + 1 if v < 127 else v - 1), run[i]).astype(np.int8)
    return runs


BROADCASTS = [  # shape 1, shape 2, output shape
    ((1, 4, 5, 3), (1, 4, 5, 3), (1, 4, 5, 3)),
    ((1, 4, 5, 3), (1, 1, 1, 3), (1, 4, 5, 3)),
    ((2, 1, 6, 1), (1, 3, 1, 4), (2, 3, 6, 4)),
    ((7, 9), (9,), (7, 9)),
    ((1, 1, 1, 1), (2, 3, 2, 5), (2, 3, 2, 5)),
]


@pytest.mark.parametrize("op_name", ["MAXIMUM", "MINIMUM"])
@pytest.mark.parametrize("shapes", BROADCASTS, ids=str)
def test_minmax_reference_equals_tflite_micro(tmp_path, op_name, shapes):
    rng = np.random.default_rng(len(str(shapes)) + len(op_name))
    q = (0.05, -3)
    model = binary_model(op_name, shapes[:2], [q, q, q], shapes[2])
    assert_reference_equals_micro(tmp_path, op_name.lower(), model, binary_runs(rng, shapes[:2]), min_distinct=50)


def test_minmax_refuses_differing_quantization(tmp_path):
    graph = load(tmp_path, "max", binary_model("MAXIMUM", [(1, 4), (1, 4)], [(0.05, 0), (0.1, 0), (0.05, 0)], (1, 4)))
    x = np.zeros((1, 4), np.int8)
    with pytest.raises(UserError, match="share one scale and zero point"):
        reference.run(graph, {"x1": x, "x2": x})


# ---------------------------------------------------------------- runtime/ kernels on the host (ASan/UBSan)

def kernel_cases(tmp_path) -> list:
    """(Case, runs) for every op of this file: the one-op models above, imported; inputs as in the oracle tests
    (all 256 values for unary ops, which is every input a table can see)."""
    from test_runtime_kernels import Case

    specs = []
    for op_name, quants in UNARY.items():
        for i, (qi, qo) in enumerate(quants):
            runs = [[EVERY_INT8], [np.full((1, 256), qi[1], np.int8)]]
            specs.append((f"{op_name.lower()}_{i}", unary_model(op_name, (1, 256), qi, qo), runs))
    rng = np.random.default_rng(11)
    for op_name in ("MAXIMUM", "MINIMUM"):
        for i, shapes in enumerate(BROADCASTS):
            q = (0.05, -3)
            specs.append((f"{op_name.lower()}_{i}", binary_model(op_name, shapes[:2], [q, q, q], shapes[2]),
                          binary_runs(rng, shapes[:2], n=4)))
    specs += extra_kernel_specs(rng)
    cases = []
    for name, model, runs in specs:
        graph = load(tmp_path, name, model)
        cases.append(Case(name, graph, graph.ops[0], model, runs))
    return cases


def extra_kernel_specs(rng) -> list:
    """The binary ops' cases (defined below) for the host build: divisors at their zero point included (the C
    kernel must give the reference's saturated quotient), constant operands (PRELU's alpha, a MAXIMUM bound)."""
    specs = []
    for i, (shapes, quants) in enumerate(SQDIFF):
        specs.append((f"sqdiff_{i}", binary_model("SQUARED_DIFFERENCE", shapes[:2], quants, shapes[2]),
                      binary_runs(rng, shapes[:2], n=4)))
    for i, (shapes, quants, activation) in enumerate(DIV):
        model = binary_model("DIV", shapes[:2], quants, shapes[2], "DivOptions", FusedActivationFunction=activation)
        specs.append((f"div_{i}", model, binary_runs(rng, shapes[:2], n=4)))
    for i, (shape, alpha_shape, quants) in enumerate(PRELU):
        alpha = rng.integers(-128, 128, size=alpha_shape, dtype=np.int8)
        specs.append((f"prelu_{i}", prelu_model(shape, alpha_shape, quants), binary_runs(rng, [shape, alpha_shape], n=4)))
        specs.append((f"prelu_const_{i}", prelu_model(shape, alpha_shape, quants, alpha),
                      [run[:1] for run in binary_runs(rng, [shape], n=4)]))
    b = ModelBuilder()  # MAXIMUM(x, constant)
    q = (0.05, -3)
    x = b.tensor("x", (1, 6, 7, 4), "int8", scale=q[0], zero_point=q[1])
    c = b.tensor("c", (4,), "int8", scale=q[0], zero_point=q[1], data=np.array([-128, -3, 20, 127], np.int8))
    y = b.tensor("y", (1, 6, 7, 4), "int8", scale=q[0], zero_point=q[1])
    b.op("MAXIMUM", [x, c], [y])
    b.inputs, b.outputs = [x], [y]
    specs.append(("maximum_const", b.build(), [run[:1] for run in binary_runs(rng, [(1, 6, 7, 4)], n=4)]))
    for i, (shape, qin) in enumerate(L2NORM):
        specs.append((f"l2norm_{i}", unary_model("L2_NORMALIZATION", shape, qin, (1 / 128, 0), "L2NormOptions"),
                      l2norm_runs(rng, shape, qin[1])))
    return specs


def test_kernels_equal_reference_on_the_host(tmp_path, monkeypatch):
    """Every case also runs with its output written over its first input where the scheduler allows that
    (mcutool/schedule/inplace.py IN_PLACE_KINDS): the harness compares both results."""
    import test_runtime_kernels
    from test_runtime_kernels import CFLAGS, RUNTIME, SANITIZE, harness_source, kernel_sources

    from mcutool.schedule.inplace import IN_PLACE_KINDS
    monkeypatch.setattr(test_runtime_kernels, "IN_PLACE_KINDS", set(test_runtime_kernels.IN_PLACE_KINDS)
                        | set(IN_PLACE_KINDS))

    gcc = require_tool("gcc")
    cases = kernel_cases(tmp_path)
    (tmp_path / "harness.c").write_text(harness_source(cases))
    exe = tmp_path / "harness"
    proc = subprocess.run([gcc, *CFLAGS, *SANITIZE, "-I", str(RUNTIME), str(tmp_path / "harness.c"),
                           *map(str, kernel_sources()), "-o", str(exe)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-6000:]
    records = bytearray()
    for i, c in enumerate(cases):
        for run in c.inputs:
            records += struct.pack("<i", i) + b"".join(np.ascontiguousarray(x, np.int8).tobytes() for x in run)
    (tmp_path / "in.bin").write_bytes(bytes(records))
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=1", UBSAN_OPTIONS="print_stacktrace=1")
    proc = subprocess.run([str(exe), str(tmp_path / "in.bin"), str(tmp_path / "out.bin")], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    data = np.frombuffer((tmp_path / "out.bin").read_bytes(), dtype=np.int8)
    pos, kinds = 0, set()
    for c in cases:
        y = c.graph.tensor(c.op.outputs[0])
        for run in c.inputs:
            got = data[pos:pos + y.size].reshape(y.shape)
            pos += y.size
            want = reference.run(c.graph, dict(zip(c.graph.inputs, run)))[y.name]
            assert np.array_equal(got, want), f"{c.name}: the C kernel differs from mcutool.reference"
        kinds.add(c.op.kind)
    assert pos == data.size
    assert kinds >= {"abs", "relu", "relu6", "hard_swish", "tanh", "elu", "rsqrt", "maximum", "minimum",
                     "squared_difference", "div", "prelu", "l2_normalization"}


# (shapes, quantizations of x1, x2, y)
SQDIFF = [
    (BROADCASTS[0], [(0.05, 3), (0.05, 3), (0.1, -128)]),
    (BROADCASTS[1], [(0.02, -10), (0.07, 20), (0.3, -120)]),
    (BROADCASTS[2], [(0.1, 0), (0.03, -50), (0.5, -128)]),
    (BROADCASTS[3], [(0.01, 100), (0.01, -100), (0.02, -128)]),
]
DIV = [  # the last quantization is the output's; a zero point of the divisor is never drawn (see div.py)
    (BROADCASTS[0], [(0.05, 3), (0.05, 3), (0.1, -10)], "NONE"),
    (BROADCASTS[1], [(0.02, -10), (0.07, 20), (0.01, 5)], "RELU"),
    (BROADCASTS[2], [(0.1, 0), (0.03, -50), (0.5, -128)], "NONE"),
    (BROADCASTS[3], [(0.2, 100), (0.01, -100), (0.04, 0)], "RELU6"),
    (BROADCASTS[4], [(0.05, 3), (0.2, 7), (0.3, -1)], "NONE"),
]


@pytest.mark.parametrize("shapes,quants", SQDIFF, ids=str)
def test_squared_difference_reference_equals_tflite_micro(tmp_path, shapes, quants):
    rng = np.random.default_rng(len(str(quants)))
    model = binary_model("SQUARED_DIFFERENCE", shapes[:2], quants, shapes[2])
    assert_reference_equals_micro(tmp_path, "sqdiff", model, binary_runs(rng, shapes[:2]), min_distinct=30)


def _bit_length(v):
    return np.array([int(x).bit_length() for x in np.asarray(v).reshape(-1)]).reshape(np.shape(v))


def div_undefined_in_tflite(x1, x2, quants) -> np.ndarray:
    """Where TFLite's DivElementwise shifts an int32 right by 32 or more (undefined behaviour): output shift
    (frexp exponent of s1 / (s2 s_out)) - reciprocal shift (bit length of |v2| - 1) - headroom of v1 < -31."""
    (s1, z1), (s2, z2), (so, _) = quants
    v1, v2 = np.broadcast_arrays(x1.astype(np.int64) - z1, x2.astype(np.int64) - z2)
    v1 = np.where(v2 < 0, -v1, v1)
    shift = np.frexp(np.float32(np.float32(s1) / np.float32(np.float32(s2) * np.float32(so))))[1]
    headroom = np.where(v1 >= 0, 31 - _bit_length(v1), 32 - _bit_length(2 * np.abs(v1) - 1))
    return shift - (_bit_length(np.abs(v2)) - 1) - headroom < -31


@pytest.mark.parametrize("shapes,quants,activation", DIV, ids=str)
def test_div_reference_equals_tflite_micro(tmp_path, shapes, quants, activation):
    """Bit-exact with TFLite Micro wherever its arithmetic is defined; where it shifts by 32 or more (a numerator
    small against the divisor) the real quotient is below half an output step, and mcutool gives the output zero
    point (clamped to the activation range) -- hand-derived, checked against the float quotient."""
    rng = np.random.default_rng(len(str(quants)))
    model = binary_model("DIV", shapes[:2], quants, shapes[2], "DivOptions", FusedActivationFunction=activation)
    runs = binary_runs(rng, shapes[:2], avoid=(1, quants[1][1]))
    graph = load(tmp_path, "div", model)
    want = micro_outputs(model, runs)
    (s1, z1), (s2, z2), (so, zo) = quants
    lo = {"NONE": -128, "RELU": max(-128, zo), "RELU6": max(-128, zo)}[activation]
    undefined_total, checked = 0, 0
    for run, w in zip(runs, want):
        got = reference.run(graph, {"x1": run[0], "x2": run[1]})["y"]
        undefined = div_undefined_in_tflite(run[0], run[1], quants)
        undefined_total += int(undefined.sum())
        assert np.array_equal(got[~undefined], w[~undefined]), "differs from TFLite Micro where it is defined"
        checked += int((~undefined).sum())
        real = (s1 * (run[0].astype(np.float64) - z1)) / (s2 * (run[1].astype(np.float64) - z2))
        real = np.broadcast_to(real, got.shape)
        assert np.all(np.abs(real[undefined] / so) < 0.5)
        assert np.all(got[undefined] == max(zo, lo))
    assert checked > 4 * undefined_total, (checked, undefined_total)
    assert len(np.unique(np.concatenate([w.reshape(-1) for w in want]))) >= 20


@pytest.mark.parametrize("quants", [
    [(0.05, -10), (0.02, -128), (0.1, 0)],      # exact ratios: many quotients are exact ties
    [(0.5, 0), (0.5, 0), (1.0, 0)],
    [(0.013, 40), (0.2, -100), (0.004, -20)],
    [(0.3, -5), (0.01, 0), (0.9, 10)],
], ids=str)
def test_div_every_int8_pair_equals_tflite_micro(tmp_path, quants):
    """All 256 x 255 (numerator, divisor) pairs: equal to TFLite Micro wherever its arithmetic is defined (this is
    what pins the multiplier's precision: s1 / (s2 s_out) in double), the output zero point elsewhere."""
    model = binary_model("DIV", [(1, 256), (1, 256)], quants, (1, 256), "DivOptions")
    runs = [[EVERY_INT8, np.full((1, 256), b, np.int8)] for b in range(-128, 128) if b != quants[1][1]]
    graph = load(tmp_path, "div", model)
    for run, w in zip(runs, micro_outputs(model, runs)):
        got = reference.run(graph, {"x1": run[0], "x2": run[1]})["y"]
        undefined = div_undefined_in_tflite(run[0], run[1], quants)
        assert np.array_equal(got[~undefined], w[~undefined]), f"divisor {run[1][0, 0]}"
        assert np.all(got[undefined] == quants[2][1])


def prelu_model(shape, alpha_shape, quants, alpha=None) -> bytes:
    """PRELU with a computed alpha, or a constant one (`alpha` given), as the converter writes it."""
    b = ModelBuilder()
    x = b.tensor("x", shape, "int8", scale=quants[0][0], zero_point=quants[0][1])
    a = b.tensor("alpha", alpha_shape, "int8", scale=quants[1][0], zero_point=quants[1][1], data=alpha)
    y = b.tensor("y", shape, "int8", scale=quants[2][0], zero_point=quants[2][1])
    b.op("PRELU", [x, a], [y])
    b.inputs, b.outputs = ([x] if alpha is not None else [x, a]), [y]
    return b.build()


PRELU = [  # x shape, alpha shape, quantizations of x, alpha, y
    ((1, 4, 5, 3), (1, 4, 5, 3), [(0.05, 3), (0.01, -10), (0.04, -20)]),
    ((1, 4, 5, 3), (1, 1, 3), [(0.1, -30), (0.004, 0), (0.08, -60)]),
    ((2, 3, 6, 4), (4,), [(0.02, 10), (0.02, 100), (0.03, 7)]),
]


@pytest.mark.parametrize("shape,alpha_shape,quants", PRELU, ids=str)
@pytest.mark.parametrize("const_alpha", [False, True])
def test_prelu_reference_equals_tflite_micro(tmp_path, shape, alpha_shape, quants, const_alpha):
    rng = np.random.default_rng(len(shape) + len(alpha_shape))
    alpha = rng.integers(-128, 128, size=alpha_shape, dtype=np.int8) if const_alpha else None
    model = prelu_model(shape, alpha_shape, quants, alpha)
    runs = binary_runs(rng, [shape, alpha_shape])
    if const_alpha:
        runs = [run[:1] for run in runs]
    assert_reference_equals_micro(tmp_path, "prelu", model, runs, min_distinct=30)


L2NORM = [  # shape, input quantization
    ((1, 8), (0.05, 3)), ((4, 16), (0.1, -128)), ((1, 3, 5, 24), (0.02, 40)), ((2, 1, 1), (0.3, -7)),
    ((3, 64), (0.004, 0)),
]


def l2norm_runs(rng, shape, zp) -> list[list[np.ndarray]]:
    """Random rows, rows at the zero point (a zero norm), single spikes, and nearly constant rows."""
    runs = binary_runs(rng, [shape], n=8)
    runs.append([np.full(shape, zp, np.int8)])
    spike = np.full(shape, zp, np.int8)
    spike[..., 0] = 127 if zp < 100 else -128
    runs.append([spike])
    runs.append([np.clip(zp + rng.integers(-1, 2, size=shape), -128, 127).astype(np.int8)])
    return runs


@pytest.mark.parametrize("shape,qin", L2NORM, ids=str)
def test_l2_normalization_reference_equals_tflite_micro(tmp_path, shape, qin):
    rng = np.random.default_rng(len(shape) * 13 + qin[1] + 128)
    model = unary_model("L2_NORMALIZATION", shape, qin, (1 / 128, 0), "L2NormOptions")
    assert_reference_equals_micro(tmp_path, "l2norm", model, l2norm_runs(rng, shape, qin[1]),
                                  min_distinct=3 if shape[-1] == 1 else 30)


INV_SQRT_HARNESS = r"""
#include <stdio.h>
#include "mcu_fixedpoint.h"
int main(int argc, char **argv)
{
    FILE *fi, *fo;
    int32_t x, r[2];
    int shift;
    if (argc != 3 || (fi = fopen(argv[1], "rb")) == NULL || (fo = fopen(argv[2], "wb")) == NULL) return 2;
    while (fread(&x, sizeof x, 1, fi) == 1) {
        mcu_fp_inv_sqrt(x, &r[0], &shift);
        r[1] = shift;
        fwrite(r, sizeof r[0], 2, fo);
    }
    fclose(fi);
    fclose(fo);
    return 0;
}
"""


def test_inv_sqrt_primitive_matches_reference(tmp_path):
    """mcu_fp_inv_sqrt (C) against fixedpoint.get_inv_sqrt_quantized_multiplier_exp on the whole int32 >= 0 range
    (the L2 sums of squares reach 2^31 - 1), and the reference against 1/sqrt(x) within 1e-5 relative."""
    from test_runtime_kernels import CFLAGS, RUNTIME, SANITIZE

    from mcutool.ops.fixedpoint import get_inv_sqrt_quantized_multiplier_exp

    gcc = require_tool("gcc")
    rng = np.random.default_rng(5)
    xs = np.concatenate([np.arange(0, 300), 1 << np.arange(0, 31), (1 << np.arange(1, 31)) - 1,
                         rng.integers(0, 1 << 31, 3000), np.exp(rng.uniform(0, 21, 2000)).astype(np.int64)])
    xs = xs.astype(np.int64)
    (tmp_path / "h.c").write_text(INV_SQRT_HARNESS)
    subprocess.run([gcc, *CFLAGS, *SANITIZE, "-I", str(RUNTIME), str(tmp_path / "h.c"), "-o", str(tmp_path / "h")],
                   check=True, capture_output=True)
    (tmp_path / "in.bin").write_bytes(xs.astype("<i4").tobytes())
    subprocess.run([str(tmp_path / "h"), str(tmp_path / "in.bin"), str(tmp_path / "out.bin")], check=True, timeout=60)
    got = np.frombuffer((tmp_path / "out.bin").read_bytes(), dtype="<i4").reshape(-1, 2)
    m, sh = get_inv_sqrt_quantized_multiplier_exp(xs, -1)
    assert np.array_equal(got[:, 0], m) and np.array_equal(got[:, 1], sh)
    big = xs >= 2
    real = m[big].astype(np.float64) / 2**31 * 2.0 ** sh[big]
    assert np.all(np.abs(real * np.sqrt(xs[big]) - 1) < 1e-5)


@pytest.mark.parametrize("op_name,quants", [
    ("SQUARED_DIFFERENCE", [(0.05, -10), (0.05, 3), (0.1, -128)]),
    ("SQUARED_DIFFERENCE", [(0.5, 0), (0.25, 0), (8.0, -128)]),
    ("SQUARED_DIFFERENCE", [(0.013, 40), (0.2, -100), (0.9, -128)]),
    ("PRELU", [(0.05, -10), (0.02, -128), (0.1, 0)]),
    ("PRELU", [(0.5, 0), (0.25, 0), (1.0, 0)]),
    ("PRELU", [(0.013, 40), (0.2, -100), (0.04, -20)]),
    ("MAXIMUM", [(0.05, -10), (0.05, -10), (0.05, -10)]),
    ("MINIMUM", [(0.05, -10), (0.05, -10), (0.05, -10)]),
], ids=str)
def test_binary_every_int8_pair_equals_tflite_micro(tmp_path, op_name, quants):
    """All 256 x 256 input pairs, scales whose ratios are exact (ties) and arbitrary."""
    if op_name == "PRELU":
        model = prelu_model((1, 256), (1, 256), quants)
    else:
        model = binary_model(op_name, [(1, 256), (1, 256)], quants, (1, 256))
    runs = [[EVERY_INT8, np.full((1, 256), b, np.int8)] for b in range(-128, 128)]
    assert_reference_equals_micro(tmp_path, op_name.lower(), model, runs, min_distinct=60)


def test_mul_multiplier_is_tflite_micros_double(tmp_path):
    """int8 MUL with s1 = 0.5, s2 = 0.25, s_out = 0.2 on all 65,536 input pairs. float32 0.2 is 13421773 * 2^-26,
    so the real multiplier 0.125 / s_out is 2^23 / 13421773 = 0.6249999907 (the scale products are exact).
    TFLite Micro (`mul_common.cc` CalculateOpDataMul) evaluates it in double: Q31 significand
    round(2^54 / 13421773) = round(1342177260.0000002) = 1342177260, shift 0. TFLite (`mul.cc`, tflite-runtime 2.14
    BUILTIN_REF) evaluates it in float32, where it rounds to 0.625 exactly: 1342177280. The two oracles disagree
    on ties; the oracle is the tflite-micro interpreter (DESIGN.md §6)."""
    from mcutool.ops.mul import mul_int8, mul_output_multiplier

    quants = [(0.5, -10), (0.25, 3), (0.2, -128)]
    assert mul_output_multiplier(0.5, 0.25, 0.2) == (1342177260, 0)
    model = binary_model("MUL", [(1, 256), (1, 256)], quants, (1, 256))
    runs = [[EVERY_INT8, np.full((1, 256), b, np.int8)] for b in range(-128, 128)]
    assert_reference_equals_micro(tmp_path, "mul", model, runs, min_distinct=200)
    float32_rule = np.stack([mul_int8(a, b, a_zp=-10, b_zp=3, out_zp=-128, multiplier=1342177280, shift=0,
                                      act_min=-128, act_max=127) for a, b in runs])
    assert (float32_rule != np.stack(micro_outputs(model, runs))).sum() > 100  # the case tells the two rules apart


# ------------------------------------------------------------------------------------------------- CAST

CAST_VALUES = {
    "int8": np.arange(-128, 128),
    "int16": np.array([-32768, -30000, -300, -129, -128, -1, 0, 1, 127, 128, 255, 256, 300, 32767]),
    "int32": np.array([-2**31, -70000, -32769, -32768, -129, -1, 0, 1, 127, 128, 255, 32768, 70000, 2**31 - 1]),
}
CAST_PAIRS = [(a, b) for a in CAST_VALUES for b in CAST_VALUES]


def cast_model(src: str, dst: str, n: int) -> bytes:
    b = ModelBuilder()
    x, y = b.tensor("x", (1, n), src), b.tensor("y", (1, n), dst)
    b.op("CAST", [x], [y])
    b.inputs, b.outputs = [x], [y]
    return b.build()


@pytest.mark.parametrize("src,dst", CAST_PAIRS, ids=str)
def test_cast_reference_equals_tflite_micro(tmp_path, src, dst):
    x = CAST_VALUES[src].astype(src).reshape(1, -1)
    model = cast_model(src, dst, x.shape[1])
    graph = load(tmp_path, "cast", model)
    want = micro_outputs(model, [[x]])[0]
    got = reference.run(graph, {"x": x})["y"]
    assert got.dtype == want.dtype == np.dtype(dst) and np.array_equal(got, want)


CAST_HARNESS = """#include <stdio.h>
#include <string.h>
#include "mcu_kernels.h"
{definitions}
int main(void)
{{
    {cases}
    return 0;
}}
"""


def test_cast_kernel_equals_reference_on_the_host(tmp_path):
    """mcu_cast_s8 for every pair, on exactly sized heap buffers under ASan/UBSan; it prints the output bytes."""
    from test_runtime_kernels import CFLAGS, RUNTIME, SANITIZE

    from mcutool.codegen import runtime_params as rp

    gcc = require_tool("gcc")
    definitions, cases, expected = [], [], b""
    for k, (src, dst) in enumerate(CAST_PAIRS):
        x = CAST_VALUES[src].astype(src).reshape(1, -1)
        graph = load(tmp_path, f"cast{k}", cast_model(src, dst, x.shape[1]))
        kp = rp.kernel_params(graph, graph.ops[0])
        definitions.append(rp.c_definitions(kp, f"C{k}"))
        data = ", ".join(str(v) for v in x.tobytes())
        call = rp.c_call(kp, f"C{k}", ["in"], "out", status="st")
        cases.append(f"{{ static const uint8_t bytes[] = {{{data}}}; int8_t *in = malloc(sizeof bytes); "
                     f"int8_t *out = malloc({x.size * np.dtype(dst).itemsize}); mcu_status st; "
                     f"memcpy(in, bytes, sizeof bytes); {call} if (st != MCU_OK) return 1; "
                     f"fwrite(out, 1, {x.size * np.dtype(dst).itemsize}, stdout); free(in); free(out); }}")
        expected += reference.run(graph, {"x": x})["y"].tobytes()
    src_c = CAST_HARNESS.format(definitions="#include <stdlib.h>\n" + "\n".join(definitions),
                                cases="\n    ".join(cases))
    (tmp_path / "cast.c").write_text(src_c)
    subprocess.run([gcc, *CFLAGS, *SANITIZE, "-I", str(RUNTIME), str(tmp_path / "cast.c"),
                    str(RUNTIME / "mcu_cast_s8.c"), "-o", str(tmp_path / "cast")], check=True, capture_output=True)
    out = subprocess.run([str(tmp_path / "cast")], capture_output=True, check=True, timeout=60).stdout
    assert out == expected


# ----------------------------------------------------- float models: calibrated, quantized, written, run by TFLM

def float_net() -> bytes:
    """A float32 network of the new operators, as a float model to be quantized by mcutool (MAXIMUM of two
    differently ranged tensors, constant operands, fixed-output-scale TANH and L2_NORMALIZATION)."""
    rng = np.random.default_rng(3)
    b = ModelBuilder()
    shape = (1, 6, 5, 8)

    def t(name, data=None, s=shape):
        return b.tensor(name, s if data is None else data.shape, "float32", data=data)

    x = t("x")
    names = ["hs", "th", "mx", "mn", "pr", "el", "sd", "out0", "ab", "r6", "out1", "out2"]
    hs, th, mx, mn, pr, el, sd, out0, ab, r6, out1, out2 = (t(n) for n in names)
    bound = t("bound", rng.uniform(0.5, 2.0, 8).astype(np.float32))
    alpha = t("alpha", rng.uniform(-0.3, 0.6, 8).astype(np.float32))
    divisor = t("divisor", rng.uniform(1.0, 3.0, 8).astype(np.float32))
    for op, ins, out in [("HARD_SWISH", [x], hs), ("TANH", [x], th), ("MAXIMUM", [hs, th], mx),
                         ("MINIMUM", [mx, bound], mn), ("PRELU", [mn, alpha], pr), ("ELU", [x], el),
                         ("SQUARED_DIFFERENCE", [pr, el], sd), ("L2_NORMALIZATION", [sd], out0), ("ABS", [x], ab),
                         ("RELU6", [ab], r6), ("RELU", [x], out2)]:
        b.op(op, ins, [out])
    b.op("DIV", [r6, divisor], [out1], "DivOptions")
    b.inputs, b.outputs = [x], [out0, out1, out2]
    return b.build()


def test_float_model_quantizes_and_the_written_model_runs_in_tflite_micro(tmp_path):
    from tflite_micro.python.tflite_micro import runtime

    from mcutool.export.tflite import write_tflite
    from mcutool.quantize.ptq import quantize_model

    graph = load(tmp_path, "float_net", float_net())
    rng = np.random.default_rng(0)
    calib = {"x": rng.normal(0, 2.0, (64, 6, 5, 8)).astype(np.float32)}
    qgraph, report = quantize_model(graph, calib)
    requantized = [op for op in qgraph.ops if op.kind == "quantize" and op.inputs[0] not in graph.inputs]
    assert requantized, "MAXIMUM's inputs have different ranges: one at least is requantized to the shared scale"
    for r in requantized:
        consumer = next(op for op in qgraph.ops if r.outputs[0] in op.inputs)
        assert consumer.kind in ("maximum", "minimum")
        assert all(qgraph.tensor(n).quant.scale[0] == qgraph.tensor(consumer.outputs[0]).quant.scale[0]
                   for n in consumer.inputs)
    tanh_out = qgraph.tensor(next(op.outputs[0] for op in qgraph.ops if op.kind == "tanh"))
    assert float(tanh_out.quant.scale[0]) == 1 / 128 and int(tanh_out.quant.zero_point[0]) == 0
    for row in report["outputs"]:
        assert row["sqnr_db"] > 15, report
    model = write_tflite(qgraph)
    micro = runtime.Interpreter.from_bytes(model)
    written = load(tmp_path, "written", model)
    div = next(op for op in written.ops if op.kind == "div")
    div_quants = [(float(written.tensor(n).quant.scale[0]), int(written.tensor(n).quant.zero_point[0]))
                  for n in (*div.inputs, div.outputs[0])]
    for _ in range(4):
        x = rng.normal(0, 2.0, (1, 6, 5, 8)).astype(np.float32)
        micro.set_input(x, 0)
        micro.invoke()
        got = reference.run(written, {written.inputs[0]: x}, keep=True)
        want = [micro.get_output(i) for i in range(3)]
        undefined = div_undefined_in_tflite(got[div.inputs[0]], written.tensor(div.inputs[1]).data, div_quants)
        for k, (name, w) in enumerate(zip(written.outputs, want)):
            same = got[name] == w
            assert np.all(same | undefined) if k == 1 else np.all(same), f"output {name} differs from TFLite Micro"


def test_int8_neg_is_refused_with_the_reason_and_float_neg_runs(tmp_path):
    """Neither TFLite Micro nor TFLite has an int8 NEG: compiling one names that cause (no traceback, no generic
    'no code generator'); a float NEG (float models, calibration) is numpy's negation."""
    from mcutool.compiler import Options, compile_model

    path = tmp_path / "neg.tflite"
    path.write_bytes(unary_model("NEG", (1, 8), (0.1, 0), (0.1, 0)))
    with pytest.raises(UserError, match="no int8 NEG"):
        compile_model(path, "stm32f746", tmp_path / "out", Options(build=False))
    b = ModelBuilder()
    x, y = b.tensor("x", (1, 4), "float32"), b.tensor("y", (1, 4), "float32")
    b.op("NEG", [x], [y])
    b.inputs, b.outputs = [x], [y]
    graph = load(tmp_path, "neg_float", b.build())
    v = np.array([[1.5, -2.0, 0.0, 3.25]], np.float32)
    assert np.array_equal(reference.run(graph, {"x": v})["y"], -v)


# ------------------------------------------------------------------------------------------------ TANH int16

TANH16_SCALES = [2**-12, 2**-11, 2**-13, 0.0003, 3 / 4096, 0.001, 7 * 2**-15]
EVERY_INT16 = np.arange(-32768, 32768, dtype=np.int16).reshape(1, 65536)


def tanh16_model(scale: float) -> bytes:
    b = ModelBuilder()
    x = b.tensor("x", (1, 65536), "int16", scale=scale, zero_point=0)
    y = b.tensor("y", (1, 65536), "int16", scale=2**-15, zero_point=0)
    b.op("TANH", [x], [y])
    b.inputs, b.outputs = [x], [y]
    return b.build()


@pytest.mark.parametrize("scale", TANH16_SCALES)
def test_tanh_int16_reference_equals_tflite_micro_on_every_int16(tmp_path, scale):
    """Power-of-two input scales (TFLite's fast path, multiplier 3 << shift) and others, all 65,536 inputs."""
    from tflite_micro.python.tflite_micro import runtime

    model = tanh16_model(scale)
    interp = runtime.Interpreter.from_bytes(model, arena_size=1 << 20)
    interp.set_input(EVERY_INT16, 0)
    interp.invoke()
    want = interp.get_output(0)
    got = reference.run(load(tmp_path, "tanh16", model), {"x": EVERY_INT16})["y"]
    assert got.dtype == np.int16 and np.array_equal(got, want)
    assert len(np.unique(want)) > 5000


BYTES_HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mcu_kernels.h"
%s
typedef struct { mcu_status (*run)(const int8_t *const *in, int8_t *out); int n; long in_bytes[4]; long out_bytes;
                 int in_place; } bcase;
static const bcase cases[] = {
%s
};
/* argv[1]: records (int32 case, then its inputs' bytes); each output's bytes to argv[2]; an in-place case runs
   again over its first input, which must give the same bytes */
int main(int argc, char **argv)
{
    FILE *fi, *fo;
    int32_t idx;
    if (argc != 3 || (fi = fopen(argv[1], "rb")) == NULL || (fo = fopen(argv[2], "wb")) == NULL) return 2;
    while (fread(&idx, sizeof idx, 1, fi) == 1) {
        const bcase *c = &cases[idx];
        int8_t *in[4], *out;
        int k;
        for (k = 0; k < c->n; k++) {
            in[k] = malloc((size_t)c->in_bytes[k]);
            if (in[k] == NULL || fread(in[k], 1, (size_t)c->in_bytes[k], fi) != (size_t)c->in_bytes[k]) return 3;
        }
        out = malloc((size_t)c->out_bytes);
        if (out == NULL || c->run((const int8_t *const *)in, out) != MCU_OK) return 4;
        fwrite(out, 1, (size_t)c->out_bytes, fo);
        if (c->in_place && (c->run((const int8_t *const *)in, in[0]) != MCU_OK
                            || memcmp(in[0], out, (size_t)c->out_bytes) != 0)) return 5;
        for (k = 0; k < c->n; k++) free(in[k]);
        free(out);
    }
    fclose(fi);
    fclose(fo);
    return 0;
}
"""


def assert_kernels_equal_reference(tmp_path, cases, kernel_sources: list[str]):
    """cases: (graph of one op, [runs: list of input arrays of any dtype]). Each op's runtime kernel runs every
    run on exactly sized heap buffers (ASan/UBSan) -- and once more over its first input where the output has that
    input's shape and dtype -- and must equal mcutool.reference."""
    from test_runtime_kernels import CFLAGS, RUNTIME, SANITIZE

    from mcutool.codegen import runtime_params as rp
    from mcutool.ir import DTYPE_BYTES

    gcc = require_tool("gcc")
    defs, table, records, expected = [], [], bytearray(), b""
    for k, (graph, runs) in enumerate(cases):
        op = graph.ops[0]
        kp = rp.kernel_params(graph, op)
        defs.append(rp.c_definitions(kp, f"C{k}"))
        ins = [f"in[{i}]" for i in range(len(graph.inputs))]
        defs.append(f"static mcu_status run{k}(const int8_t *const *in, int8_t *out)\n{{\n    mcu_status st;\n    "
                    f"{rp.c_call(kp, f'C{k}', ins, 'out', status='st')}\n    return st;\n}}\n")
        x, y = graph.tensor(graph.inputs[0]), graph.tensor(op.outputs[0])
        in_bytes = ", ".join(str(graph.tensor(n).nbytes) for n in graph.inputs)
        in_place = int(x.shape == y.shape and x.dtype == y.dtype)
        table.append(f"    {{run{k}, {len(graph.inputs)}, {{{in_bytes}}}, {y.nbytes}, {in_place}}},")
        for run in runs:
            records += struct.pack("<i", k) + b"".join(np.ascontiguousarray(v).tobytes() for v in run)
            expected += reference.run(graph, dict(zip(graph.inputs, run)))[y.name].tobytes()
        assert DTYPE_BYTES[y.dtype] * y.size == y.nbytes
    (tmp_path / "h.c").write_text(BYTES_HARNESS % ("\n".join(defs), "\n".join(table)))
    subprocess.run([gcc, *CFLAGS, *SANITIZE, "-I", str(RUNTIME), str(tmp_path / "h.c"),
                    *[str(RUNTIME / f) for f in kernel_sources], "-o", str(tmp_path / "h")], check=True,
                   capture_output=True)
    (tmp_path / "in.bin").write_bytes(bytes(records))
    subprocess.run([str(tmp_path / "h"), str(tmp_path / "in.bin"), str(tmp_path / "out.bin")], check=True,
                   timeout=120)
    assert (tmp_path / "out.bin").read_bytes() == expected


def assert_int16_kernels_equal_reference(tmp_path, graphs, kernel_source: str):
    """Each one-op int16 graph's kernel on all 65,536 inputs."""
    assert_kernels_equal_reference(tmp_path, [(g, [[EVERY_INT16]]) for g in graphs], [kernel_source])


def test_tanh_int16_kernel_equals_reference_on_the_host(tmp_path):
    graphs = [load(tmp_path, f"tanh16_{k}", tanh16_model(s)) for k, s in enumerate(TANH16_SCALES)]
    assert_int16_kernels_equal_reference(tmp_path, graphs, "mcu_tanh_s16.c")


# ------------------------------------------------------------------------------------ RELU, RELU6, ABS int16

UNARY16 = [  # op, input scale, output scale (zero points 0)
    ("RELU", 0.001, 0.001), ("RELU", 0.001, 0.0004), ("RELU", 0.0003, 0.002),
    ("RELU6", 0.0005, 0.0005), ("RELU6", 0.00003, 0.00003),
    ("ABS", 0.001, 0.001), ("ABS", 0.0007, 0.0002), ("ABS", 0.0002, 0.003),
    ("RSQRT", 0.001, 0.001), ("RSQRT", 0.0003, 0.0005), ("RSQRT", 0.01, 0.0001),
]


def unary16_model(op_name: str, s_in: float, s_out: float) -> bytes:
    b = ModelBuilder()
    x = b.tensor("x", (1, 65536), "int16", scale=s_in, zero_point=0)
    y = b.tensor("y", (1, 65536), "int16", scale=s_out, zero_point=0)
    b.op(op_name, [x], [y])
    b.inputs, b.outputs = [x], [y]
    return b.build()


@pytest.mark.parametrize("op_name,s_in,s_out", UNARY16, ids=str)
def test_unary_int16_reference_equals_tflite_micro_on_every_int16(tmp_path, op_name, s_in, s_out):
    from tflite_micro.python.tflite_micro import runtime

    model = unary16_model(op_name, s_in, s_out)
    interp = runtime.Interpreter.from_bytes(model, arena_size=1 << 20)
    # TFLite Micro refuses negative RSQRT inputs: there every value is taken twice, as |x| (-32768 as 32767)
    x = np.abs(np.maximum(EVERY_INT16, -32767)).astype(np.int16) if op_name == "RSQRT" else EVERY_INT16
    interp.set_input(x, 0)
    interp.invoke()
    want = interp.get_output(0)
    got = reference.run(load(tmp_path, op_name, model), {"x": x})["y"]
    assert got.dtype == np.int16 and np.array_equal(got, want)
    assert len(np.unique(want)) > 1000


def test_requant_clamp_int16_kernel_equals_reference_on_the_host(tmp_path):
    """mcu_requant_clamp_s16 runs the int16 RELU, RELU6 and ABS."""
    graphs = [load(tmp_path, f"u16_{k}", unary16_model(*case)) for k, case in enumerate(UNARY16) if case[0] != "RSQRT"]
    assert all(rp_function(g) == "mcu_requant_clamp_s16" for g in graphs)
    assert_int16_kernels_equal_reference(tmp_path, graphs, "mcu_requant_clamp_s16.c")


def test_rsqrt_int16_kernel_equals_reference_on_the_host(tmp_path):
    """mcu_rsqrt_s16 on all 65,536 inputs (negative ones give 32767, as 0 does)."""
    graphs = [load(tmp_path, f"r16_{k}", unary16_model(*case)) for k, case in enumerate(UNARY16) if case[0] == "RSQRT"]
    assert_int16_kernels_equal_reference(tmp_path, graphs, "mcu_rsqrt_s16.c")


def rp_function(graph) -> str:
    from mcutool.codegen import runtime_params as rp
    return rp.kernel_params(graph, graph.ops[0]).function


# ---------------------------------------------------------------------------------------- binary ops, int16

def binary16_model(op_name: str, shapes, quants, out_shape, alpha_int8=False, options=None, **fields) -> bytes:
    """A one-op model on int16 tensors (zero points 0); PRELU's alpha (second input) int8 when alpha_int8."""
    b = ModelBuilder()
    x1 = b.tensor("x1", shapes[0], "int16", scale=quants[0], zero_point=0)
    x2 = b.tensor("x2", shapes[1], "int8" if alpha_int8 else "int16", scale=quants[1], zero_point=0)
    y = b.tensor("y", out_shape, "int16", scale=quants[2], zero_point=0)
    b.op(op_name, [x1, x2], [y], options, **fields)
    b.inputs, b.outputs = [x1, x2], [y]
    return b.build()


def int16_runs(rng, shapes, dtypes=("int16", "int16"), n=6) -> list[list[np.ndarray]]:
    runs = []
    for k in range(n):
        run = []
        for s, dt in zip(shapes, dtypes):
            info = np.iinfo(dt)
            if k == 0:
                run.append(np.full(s, info.min, dt))
            elif k == 1:
                run.append(np.full(s, info.max, dt))
            elif k % 2:
                run.append(rng.integers(info.min, info.max + 1, size=s).astype(dt))
            else:
                run.append(np.clip(rng.normal(0, info.max / 20, size=s), info.min, info.max).astype(dt))
        runs.append(run)
    return runs


def micro16(model: bytes, runs) -> list[np.ndarray]:
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(model, arena_size=1 << 20)
    outs = []
    for run in runs:
        for i, x in enumerate(run):
            interp.set_input(x, i)
        interp.invoke()
        outs.append(interp.get_output(0).copy())
    return outs


BINARY16 = [  # op, shapes (x1, x2, y), scales (x1, x2, y), alpha int8
    ("MAXIMUM", BROADCASTS[0], (0.001, 0.001, 0.001), False),
    ("MINIMUM", BROADCASTS[2], (0.001, 0.001, 0.001), False),
    ("PRELU", BROADCASTS[0], (0.001, 0.01, 0.0008), True),
    ("PRELU", ((1, 4, 5, 3), (3,), (1, 4, 5, 3)), (0.0005, 0.004, 0.001), True),
    ("SQUARED_DIFFERENCE", BROADCASTS[0], (0.001, 0.001, 0.05), False),
    ("SQUARED_DIFFERENCE", BROADCASTS[2], (0.0003, 0.002, 0.4), False),
]


@pytest.mark.parametrize("op_name,shapes,scales,alpha8", BINARY16, ids=str)
def test_binary_int16_reference_equals_tflite_micro(tmp_path, op_name, shapes, scales, alpha8):
    rng = np.random.default_rng(len(op_name) + len(shapes[0]))
    model = binary16_model(op_name, shapes[:2], scales, shapes[2], alpha_int8=alpha8)
    runs = int16_runs(rng, shapes[:2], ("int16", "int8" if alpha8 else "int16"))
    graph = load(tmp_path, op_name.lower(), model)
    wants = micro16(model, runs)
    for run, want in zip(runs, wants):
        got = reference.run(graph, {"x1": run[0], "x2": run[1]})["y"]
        assert got.dtype == np.int16 and np.array_equal(got, want)
    assert len(np.unique(np.concatenate([w.reshape(-1) for w in wants]))) > 50


def test_binary_int16_kernels_equal_reference_on_the_host(tmp_path):
    rng = np.random.default_rng(16)
    cases = []
    for k, (op_name, shapes, scales, alpha8) in enumerate(BINARY16):
        graph = load(tmp_path, f"b16_{k}", binary16_model(op_name, shapes[:2], scales, shapes[2], alpha_int8=alpha8))
        cases.append((graph, int16_runs(rng, shapes[:2], ("int16", "int8" if alpha8 else "int16"))))
    assert_kernels_equal_reference(tmp_path, cases, BINARY16_SOURCES)


BINARY16_SOURCES = ["mcu_minmax_s8.c", "mcu_prelu_s8.c", "mcu_squared_difference_s8.c"]
