"""mcutool.reference vs tflite-runtime 2.14's reference kernels (BUILTIN_REF), op by op, bit for bit.

Each case builds a one-op (or few-op) int8 .tflite in memory (tests/tflite_builder.py), imports it with
mcutool.frontends.tflite.load_tflite, runs N_INPUTS random inputs through both, and compares with
np.array_equal. Scales are chosen so outputs spread over many values (asserted), since a saturated or constant
output would make agreement trivial (DESIGN.md §11).
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest

from mcutool import reference as R
from mcutool.errors import UserError
from mcutool.frontends.tflite import load_tflite
from mcutool.ir import ConcatAttrs, Graph, Op, Quant, Tensor

from tflite_builder import MicroInterpreter, ModelBuilder, RefInterpreter

N_INPUTS = 20
NP_TYPES = {"int8": np.int8, "uint8": np.uint8, "float32": np.float32}


def seed(case) -> int:
    """A stable seed per test case (str hashes vary between processes)."""
    return zlib.crc32(repr(case).encode())


# ------------------------------------------------------------------------------------------------ helpers

def rand_q(rng, shape, dtype="int8"):
    lo, hi = R.dtype_range(dtype)
    return rng.integers(lo, hi + 1, shape).astype(NP_TYPES[dtype])


def calibrate(real, dtype="int8"):
    """(scale, zero_point) covering the central 99% of `real` values."""
    lo, hi = np.percentile(np.asarray(real, dtype=np.float64), [0.5, 99.5])
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    qmin, qmax = R.dtype_range(dtype)
    scale = np.float32((hi - lo) / (qmax - qmin)) if hi > lo else np.float32(1.0)
    zp = int(np.clip(round(qmin - lo / float(scale)), qmin, qmax))
    return float(scale), zp


def assert_varied(outputs, min_distinct=8, max_saturated=0.5, dtype="int8"):
    """Outputs must take many values and must not be mostly clamped at the ends of the range."""
    values = np.concatenate([np.asarray(o).ravel() for o in outputs])
    distinct = np.unique(values).size
    assert distinct >= min(min_distinct, values.size), f"outputs take only {distinct} distinct values"
    if dtype in ("int8", "uint8"):
        lo, hi = R.dtype_range(dtype)
        saturated = np.mean((values == lo) | (values == hi))
        assert saturated <= max_saturated, f"{saturated:.0%} of outputs are saturated"


def check_model(path, make_inputs, n=N_INPUTS, graph=None):
    """Run n input sets through BUILTIN_REF and mcutool.reference; assert bit-exact equality.

    Returns the stacked expected outputs (one array per graph output)."""
    graph = graph if graph is not None else load_tflite(path)
    oracle = RefInterpreter(path)
    collected = []
    for i in range(n):
        xs = make_inputs(i)
        expected = oracle(*xs)
        got = R.run(graph, dict(zip(graph.inputs, xs)))
        for name, e in zip(graph.outputs, expected):
            g = got[name]
            assert g.dtype == e.dtype and g.shape == e.shape, (name, g.dtype, g.shape, e.dtype, e.shape)
            if not np.array_equal(g, e):
                diff = np.abs(g.astype(np.float64) - e.astype(np.float64))
                raise AssertionError(f"input set {i}: output {name!r} differs from tflite-runtime in "
                                     f"{int((diff > 0).sum())} of {g.size} values (max {diff.max()})")
        collected.append(expected)
    return [np.stack([c[k] for c in collected]) for k in range(len(collected[0]))]


def same_pads_out(size, k, s, d, padding):
    eff = (k - 1) * d + 1
    return -(-size // s) if padding == "SAME" else -(-(size - eff + 1) // s)


def finish(b, tmp_path, ins, outs, name="model"):
    b.inputs, b.outputs = list(ins), list(outs)
    return b.write(tmp_path / f"{name}.tflite")


# ------------------------------------------------------------------------------------------------ conv

CONV_CASES = [
    # in_shape, out_c, kernel, stride, dilation, padding, activation, per_channel
    ((1, 9, 9, 3), 8, (3, 3), (2, 2), (1, 1), "SAME", "RELU", True),
    ((1, 10, 8, 4), 6, (3, 2), (1, 1), (2, 2), "VALID", "RELU6", True),
    ((2, 7, 7, 5), 4, (5, 5), (2, 1), (1, 1), "SAME", "NONE", True),
    ((1, 49, 10, 1), 16, (10, 4), (2, 2), (1, 1), "SAME", "RELU", True),
    ((1, 6, 6, 8), 12, (1, 1), (1, 1), (1, 1), "VALID", "NONE", False),
    ((1, 8, 8, 4), 4, (3, 3), (1, 1), (2, 3), "SAME", "RELU_N1_TO_1", True),
    ((1, 12, 11, 3), 5, (4, 3), (3, 2), (1, 1), "SAME", "NONE", False),
]


def build_conv(tmp_path, rng, in_shape, out_c, kernel, stride, dilation, padding, activation, per_channel,
               depthwise=False, depth_multiplier=1):
    n, h, w, c = in_shape
    x_scale, x_zp = float(np.float32(rng.uniform(0.01, 0.05))), int(rng.integers(-20, 20))
    if depthwise:
        out_c = c * depth_multiplier
        w_shape, axis = (1, kernel[0], kernel[1], out_c), 3
    else:
        w_shape, axis = (out_c, kernel[0], kernel[1], c), 0
    w_q = rng.integers(-127, 128, w_shape)
    w_scale = (rng.uniform(0.002, 0.02, out_c) if per_channel else np.full(1, rng.uniform(0.002, 0.02)))
    w_scale = w_scale.astype(np.float32)
    b_scale = (np.float32(x_scale) * w_scale).astype(np.float32)  # one scale for per-tensor weights
    bias_q = rng.integers(-3000, 3000, out_c)
    oh = same_pads_out(h, kernel[0], stride[0], dilation[0], padding)
    ow = same_pads_out(w, kernel[1], stride[1], dilation[1], padding)
    # calibrate the output on the float computation of a few random inputs
    pads = _pads(h, w, kernel, stride, dilation, padding, oh, ow)
    wf = (w_q * np.broadcast_to(w_scale, (out_c,)).reshape((1, 1, 1, -1) if depthwise else (-1, 1, 1, 1)))
    reals = []
    for _ in range(3):
        xf = (rand_q(rng, in_shape).astype(np.float32) - x_zp) * np.float32(x_scale)
        geometry = dict(stride=stride, dilation=dilation, pads=pads, out_hw=(oh, ow))
        if depthwise:
            reals.append(R.depthwise_conv2d_float(xf, wf, bias_q * b_scale, depth_multiplier=depth_multiplier,
                                                  **geometry))
        else:
            reals.append(R.conv2d_float(xf, wf, bias_q * b_scale, **geometry))
    o_scale, o_zp = calibrate(np.concatenate([r.ravel() for r in reals]))
    if activation in ("RELU", "RELU6"):
        o_zp = int(rng.integers(-128, -100))  # an output range that actually starts near 0
        hi = 6.0 if activation == "RELU6" else np.percentile(np.concatenate([r.ravel() for r in reals]), 99)
        o_scale = float(np.float32(hi / 200))
    if activation == "RELU_N1_TO_1":
        o_scale, o_zp = float(np.float32(1.5 / 128)), int(rng.integers(-5, 5))

    b = ModelBuilder()
    xt = b.tensor("x", in_shape, "int8", scale=x_scale, zero_point=x_zp)
    wt = b.tensor("w", w_shape, "int8", scale=w_scale, zero_point=0, axis=axis, data=w_q)
    bt = b.tensor("bias", (out_c,), "int32", scale=b_scale, zero_point=0, data=bias_q)
    yt = b.tensor("y", (n, oh, ow, out_c), "int8", scale=o_scale, zero_point=o_zp)
    fields = dict(Padding=padding, StrideH=stride[0], StrideW=stride[1], DilationHFactor=dilation[0],
                  DilationWFactor=dilation[1], FusedActivationFunction=activation)
    if depthwise:
        b.op("DEPTHWISE_CONV_2D", [xt, wt, bt], [yt], "DepthwiseConv2DOptions", version=2,
             DepthMultiplier=depth_multiplier, **fields)
    else:
        b.op("CONV_2D", [xt, wt, bt], [yt], "Conv2DOptions", **fields)
    return finish(b, tmp_path, [xt], [yt])


def _pads(h, w, kernel, stride, dilation, padding, oh, ow):
    if padding == "VALID":
        return (0, 0, 0, 0)
    out = []
    for size, k, s, d, o in ((h, kernel[0], stride[0], dilation[0], oh), (w, kernel[1], stride[1], dilation[1], ow)):
        total = max((o - 1) * s + (k - 1) * d + 1 - size, 0)
        out.append((total // 2, total - total // 2))
    return (out[0][0], out[1][0], out[0][1], out[1][1])


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"{c[0]}-k{c[2]}-s{c[3]}-d{c[4]}-{c[5]}-{c[6]}")
def test_conv2d(tmp_path, case):
    rng = np.random.default_rng(seed(case))
    path = build_conv(tmp_path, rng, *case)
    in_shape = case[0]
    outs = check_model(path, lambda i: [rand_q(rng, in_shape)])
    assert_varied(outs, max_saturated=0.6)


DW_CASES = [
    # in_shape, kernel, stride, dilation, padding, activation, depth_multiplier
    ((1, 9, 9, 8), (3, 3), (2, 2), (1, 1), "SAME", "RELU", 1),
    ((1, 25, 5, 16), (3, 3), (1, 1), (1, 1), "SAME", "RELU6", 1),
    ((1, 10, 10, 3), (3, 3), (1, 1), (2, 2), "VALID", "NONE", 2),
    ((2, 8, 7, 4), (5, 3), (2, 1), (1, 2), "SAME", "NONE", 3),
    ((1, 49, 40, 1), (10, 8), (2, 2), (1, 1), "SAME", "RELU", 8),
]


@pytest.mark.parametrize("case", DW_CASES, ids=lambda c: f"{c[0]}-k{c[1]}-s{c[2]}-d{c[3]}-{c[4]}-m{c[6]}")
def test_depthwise_conv2d(tmp_path, case):
    in_shape, kernel, stride, dilation, padding, activation, dm = case
    rng = np.random.default_rng(seed(case))
    path = build_conv(tmp_path, rng, in_shape, None, kernel, stride, dilation, padding, activation, True,
                      depthwise=True, depth_multiplier=dm)
    outs = check_model(path, lambda i: [rand_q(rng, in_shape)])
    assert_varied(outs, max_saturated=0.6)


# ------------------------------------------------------------------------------------------------ fully connected

FC_CASES = [
    # in_shape, out_c, per_channel, activation, bias
    ((1, 64), 16, False, "NONE", True),
    ((3, 40), 10, False, "RELU", True),
    ((1, 2, 2, 8), 12, False, "NONE", True),
    ((2, 33), 7, True, "RELU6", True),
    ((4, 16), 5, False, "NONE", False),
]


@pytest.mark.parametrize("case", FC_CASES, ids=lambda c: f"{c[0]}-{c[1]}-pc{c[2]}-{c[3]}-bias{c[4]}")
def test_fully_connected(tmp_path, case):
    in_shape, out_c, per_channel, activation, has_bias = case
    rng = np.random.default_rng(seed(case))
    in_c = in_shape[-1] if len(in_shape) == 2 else int(np.prod(in_shape[1:]))
    batches = int(np.prod(in_shape)) // in_c
    x_scale, x_zp = float(np.float32(rng.uniform(0.01, 0.05))), int(rng.integers(-30, 30))
    w_q = rng.integers(-127, 128, (out_c, in_c))
    w_scale = (rng.uniform(0.002, 0.02, out_c) if per_channel else np.full(1, rng.uniform(0.002, 0.02))
               ).astype(np.float32)
    b_scale = (np.float32(x_scale) * w_scale).astype(np.float32)  # one scale for per-tensor weights
    bias_q = rng.integers(-3000, 3000, out_c)
    reals = []
    for _ in range(3):
        xf = (rand_q(rng, in_shape).astype(np.float32) - x_zp) * np.float32(x_scale)
        reals.append(R.fully_connected_float(xf, w_q * np.broadcast_to(w_scale, (out_c,))[:, None],
                                             bias_q * b_scale if has_bias else None))
    o_scale, o_zp = calibrate(np.concatenate([r.ravel() for r in reals]))
    if activation != "NONE":
        o_scale, o_zp = float(np.float32(6.0 / 220)), -120
    b = ModelBuilder()
    xt = b.tensor("x", in_shape, "int8", scale=x_scale, zero_point=x_zp)
    wt = b.tensor("w", (out_c, in_c), "int8", scale=w_scale, zero_point=0, axis=0, data=w_q)
    ins = [xt, wt]
    if has_bias:
        ins.append(b.tensor("bias", (out_c,), "int32", scale=b_scale, zero_point=0, data=bias_q))
    yt = b.tensor("y", (batches, out_c), "int8", scale=o_scale, zero_point=o_zp)
    b.op("FULLY_CONNECTED", ins, [yt], "FullyConnectedOptions", FusedActivationFunction=activation)
    path = finish(b, tmp_path, [xt], [yt])
    outs = check_model(path, lambda i: [rand_q(rng, in_shape)])
    assert_varied(outs, max_saturated=0.6)


# ------------------------------------------------------------------------------------------------ pools

POOL_CASES = [
    # op, in_shape, filter, stride, padding, activation
    ("AVERAGE_POOL_2D", (1, 9, 9, 4), (3, 3), (2, 2), "SAME", "NONE"),
    ("AVERAGE_POOL_2D", (1, 8, 8, 3), (2, 2), (2, 2), "VALID", "NONE"),
    ("AVERAGE_POOL_2D", (2, 7, 6, 5), (3, 2), (1, 2), "SAME", "RELU6"),
    ("AVERAGE_POOL_2D", (1, 25, 5, 8), (25, 5), (1, 1), "VALID", "NONE"),
    ("AVERAGE_POOL_2D", (1, 10, 10, 2), (4, 4), (3, 3), "SAME", "RELU"),
    ("MAX_POOL_2D", (1, 9, 9, 4), (3, 3), (2, 2), "SAME", "NONE"),
    ("MAX_POOL_2D", (1, 8, 7, 3), (2, 3), (2, 1), "SAME", "RELU"),
    ("MAX_POOL_2D", (2, 6, 6, 6), (2, 2), (2, 2), "VALID", "RELU6"),
]


@pytest.mark.parametrize("case", POOL_CASES, ids=lambda c: f"{c[0]}-{c[1]}-f{c[2]}-s{c[3]}-{c[4]}-{c[5]}")
def test_pool(tmp_path, case):
    opname, in_shape, filt, stride, padding, activation = case
    rng = np.random.default_rng(seed(case))
    scale, zp = (0.05, -20) if activation != "NONE" else (float(np.float32(rng.uniform(0.01, 0.1))),
                                                          int(rng.integers(-50, 50)))
    n, h, w, c = in_shape
    oh, ow = same_pads_out(h, filt[0], stride[0], 1, padding), same_pads_out(w, filt[1], stride[1], 1, padding)
    b = ModelBuilder()
    xt = b.tensor("x", in_shape, "int8", scale=scale, zero_point=zp)
    yt = b.tensor("y", (n, oh, ow, c), "int8", scale=scale, zero_point=zp)
    b.op(opname, [xt], [yt], "Pool2DOptions", Padding=padding, StrideH=stride[0], StrideW=stride[1],
         FilterHeight=filt[0], FilterWidth=filt[1], FusedActivationFunction=activation)
    path = finish(b, tmp_path, [xt], [yt])
    outs = check_model(path, lambda i: [rand_q(rng, in_shape)])
    assert_varied(outs, min_distinct=5, max_saturated=0.9)


def test_avg_pool_rounding_of_negative_sums(tmp_path):
    """Sums that are exact halves, positive and negative, exercise the (acc +- count/2) / count rounding."""
    b = ModelBuilder()
    xt = b.tensor("x", (1, 2, 8, 1), "int8", scale=0.1, zero_point=0)
    yt = b.tensor("y", (1, 1, 4, 1), "int8", scale=0.1, zero_point=0)
    b.op("AVERAGE_POOL_2D", [xt], [yt], "Pool2DOptions", Padding="VALID", StrideH=2, StrideW=2,
         FilterHeight=2, FilterWidth=2)
    path = finish(b, tmp_path, [xt], [yt])
    x = np.array([[-1, 0, -2, 0, 1, 0, 2, 0], [0, 0, -1, -2, 0, 0, 1, 2]], dtype=np.int8).reshape(1, 2, 8, 1)
    outs = check_model(path, lambda i: [x], n=1)
    assert outs[0].ravel().tolist() == [0, -1, 0, 1]


# ------------------------------------------------------------------------------------------------ add / mul

BINARY_CASES = [
    # shape1, shape2, activation
    ((1, 5, 5, 8), (1, 5, 5, 8), "NONE"),
    ((1, 5, 5, 8), (1, 1, 1, 8), "RELU"),
    ((1, 4, 6, 3), (1, 4, 1, 1), "RELU6"),
    ((2, 3, 4), (4,), "NONE"),
    ((1, 1, 1, 8), (1, 5, 5, 8), "RELU_N1_TO_1"),
    ((3, 1, 5), (1, 4, 1), "NONE"),
]


def _binary_model(tmp_path, rng, opname, s1_shape, s2_shape, activation):
    s1, z1 = float(np.float32(rng.uniform(0.01, 0.1))), int(rng.integers(-40, 40))
    s2, z2 = float(np.float32(rng.uniform(0.01, 0.1))), int(rng.integers(-40, 40))
    out_shape = np.broadcast_shapes(s1_shape, s2_shape)
    rank = len(out_shape)
    a = (rand_q(rng, (64,) + (1,) * (rank - len(s1_shape)) + s1_shape).astype(np.float64) - z1) * s1
    c = (rand_q(rng, (64,) + (1,) * (rank - len(s2_shape)) + s2_shape).astype(np.float64) - z2) * s2
    real = a + c if opname == "ADD" else a * c
    so, zo = calibrate(real)
    if activation == "RELU":
        so, zo = float(np.float32(np.percentile(real, 99) / 230)), -125
    elif activation == "RELU6":
        so, zo = float(np.float32(6.0 / 230)), -118
    elif activation == "RELU_N1_TO_1":
        so, zo = float(np.float32(1.2 / 127)), 3
    b = ModelBuilder()
    xa = b.tensor("a", s1_shape, "int8", scale=s1, zero_point=z1)
    xb = b.tensor("b", s2_shape, "int8", scale=s2, zero_point=z2)
    yt = b.tensor("y", out_shape, "int8", scale=so, zero_point=zo)
    b.op(opname, [xa, xb], [yt], "AddOptions" if opname == "ADD" else "MulOptions",
         FusedActivationFunction=activation)
    return finish(b, tmp_path, [xa, xb], [yt])


@pytest.mark.parametrize("opname", ["ADD", "MUL"])
@pytest.mark.parametrize("case", BINARY_CASES, ids=lambda c: f"{c[0]}+{c[1]}-{c[2]}")
def test_add_mul(tmp_path, opname, case):
    s1_shape, s2_shape, activation = case
    rng = np.random.default_rng(seed((opname, case)))
    path = _binary_model(tmp_path, rng, opname, s1_shape, s2_shape, activation)
    outs = check_model(path, lambda i: [rand_q(rng, s1_shape), rand_q(rng, s2_shape)])
    assert_varied(outs, max_saturated=0.6)


# ------------------------------------------------------------------------------------------------ softmax / logistic

SOFTMAX_CASES = [
    # shape, input scale, beta
    ((1, 10), 0.1, 1.0),
    ((2, 12), 0.0625, 1.0),
    ((3, 7), 0.02, 2.0),
    ((1, 33), 0.3, 0.5),
    ((2, 3, 9), 0.05, 1.7),
    ((1, 2, 2, 12), 0.15, 0.1),
    ((4, 5), 1.0, 1.0),
    ((1, 1000), 0.1, 1.0),
    ((2, 256), 0.0117, 1.0),
]


@pytest.mark.parametrize("case", SOFTMAX_CASES, ids=lambda c: f"{c[0]}-s{c[1]}-b{c[2]}")
def test_softmax(tmp_path, case):
    shape, scale, beta = case
    rng = np.random.default_rng(seed(case))
    b = ModelBuilder()
    xt = b.tensor("x", shape, "int8", scale=scale, zero_point=int(rng.integers(-30, 30)))
    yt = b.tensor("y", shape, "int8", scale=1 / 256, zero_point=-128)
    b.op("SOFTMAX", [xt], [yt], "SoftmaxOptions", Beta=beta)
    path = finish(b, tmp_path, [xt], [yt])
    # a narrower input spread keeps several classes away from zero probability; with many classes, a few
    # "hot" ones stand out so that probabilities are not all ~0
    spread = int(np.clip(6 / (scale * beta), 4, 127))
    depth = shape[-1]

    def inputs(i):
        x = rng.integers(-spread, spread + 1, shape) + rng.integers(-60, 60)
        if depth >= 100 and 8 / (scale * beta) < 200:
            rows = x.reshape(-1, depth)
            rows[:] = rng.integers(-128, 127 - int(8 / (scale * beta)), rows.shape)
            for row in rows:
                row[rng.choice(depth, 5, replace=False)] = 127 - rng.integers(0, int(2.5 / (scale * beta)) + 1, 5)
        return [np.clip(x, -128, 127).astype(np.int8)]

    outs = check_model(path, inputs)
    # with hundreds of classes most probabilities round to 0 (qmin), so only the distinct values are asserted
    assert_varied(outs, min_distinct=10 if depth < 200 or scale > 0.05 else 4,
                  max_saturated=1.0 if depth >= 100 else 0.8)


def test_softmax_many_classes_equal_inputs(tmp_path):
    """256 equal inputs: probabilities 1/256 exactly (the largest exponential sum TFLite's kernel handles).
    1000 equal inputs sum past 256, where TFLite's kernel shifts by 32 (undefined in C; tflite-runtime
    returns 127 everywhere, TFLite Micro aborts): mcutool gives the intended rounding of 1/1000, i.e. 0."""
    b = ModelBuilder()
    xt = b.tensor("x", (3, 256), "int8", scale=0.05, zero_point=0)
    yt = b.tensor("y", (3, 256), "int8", scale=1 / 256, zero_point=-128)
    b.op("SOFTMAX", [xt], [yt], "SoftmaxOptions", Beta=1.0)
    path = finish(b, tmp_path, [xt], [yt])
    x = np.stack([np.full(256, v, np.int8) for v in (-128, 0, 127)])
    outs = check_model(path, lambda i: [x], n=1)
    assert np.all(outs[0] == -127)
    g = Graph("softmax1000")
    g.add_tensor(Tensor("x", (1, 1000), "int8", Quant(0.05, 0)))
    g.add_tensor(Tensor("y", (1, 1000), "int8", Quant(1 / 256, -128)))
    g.ops.append(Op("sm", "softmax", ["x"], ["y"]))
    g.inputs, g.outputs = ["x"], ["y"]
    assert np.all(R.run(g, {"x": np.full((1, 1000), 3, np.int8)})["y"] == -128)


@pytest.mark.parametrize("scale,zp", [(0.05, 0), (0.1, -20), (0.02, 40), (0.2, 10),
                                      (0.1495981514453888, 46), (0.02918124385178089, -86)])
def test_logistic(tmp_path, scale, zp):
    rng = np.random.default_rng(int(scale * 1e6) + zp)
    b = ModelBuilder()
    xt = b.tensor("x", (1, 4, 4, 16), "int8", scale=scale, zero_point=zp)
    yt = b.tensor("y", (1, 4, 4, 16), "int8", scale=1 / 256, zero_point=-128)
    b.op("LOGISTIC", [xt], [yt])
    path = finish(b, tmp_path, [xt], [yt])
    every_value = np.arange(-128, 128, dtype=np.int8).reshape(1, 4, 4, 16)
    # inputs spread over the non-saturating part of the curve (|x| < 6), and once over every int8 value
    def inputs(i):
        if i == 0:
            return [every_value]
        q = zp + rng.normal(0, 3.0 / scale, (1, 4, 4, 16))
        return [np.clip(np.round(q), -128, 127).astype(np.int8)]

    outs = check_model(path, inputs)
    assert_varied(outs, min_distinct=30, max_saturated=0.5)


def test_logistic_lut_vs_tflite_micro_fixed_point(tmp_path):
    """tflite-runtime's reference LOGISTIC uses a float-built lookup table; TFLite Micro uses gemmlowp fixed
    point. They differ on rare inputs; mcutool.reference follows tflite-runtime, and its fixed-point
    function reproduces TFLite Micro."""
    from tflite_micro.python.tflite_micro import runtime

    scale, zp = 0.1495981514453888, 46
    b = ModelBuilder()
    xt = b.tensor("x", (1, 256), "int8", scale=scale, zero_point=zp)
    yt = b.tensor("y", (1, 256), "int8", scale=1 / 256, zero_point=-128)
    b.op("LOGISTIC", [xt], [yt])
    path = finish(b, tmp_path, [xt], [yt])
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    micro = runtime.Interpreter.from_file(str(path))
    micro.set_input(x, 0)
    micro.invoke()
    fixed = R.logistic_int8_fixed_point(x, zp, R.logistic_params(scale))
    assert np.array_equal(micro.get_output(0), fixed)
    lut = R.run(load_tflite(path), {"x": x})["y"]
    assert np.array_equal(lut, RefInterpreter(path)(x)[0])
    assert int((lut != fixed).sum()) == 2  # x = 39 and 53


# ------------------------------------------------------------------------------------------------ data movement

@pytest.mark.parametrize("shape,paddings", [
    ((1, 4, 4, 3), [[0, 0], [1, 2], [2, 1], [0, 0]]),
    ((3, 5), [[1, 0], [0, 2]]),
    ((1, 5, 6, 2), [[0, 0], [0, 0], [3, 0], [0, 1]]),
])
def test_pad(tmp_path, shape, paddings):
    rng = np.random.default_rng(len(shape) * 7 + sum(map(sum, paddings)))
    out_shape = tuple(d + p[0] + p[1] for d, p in zip(shape, paddings))
    b = ModelBuilder()
    xt = b.tensor("x", shape, "int8", scale=0.05, zero_point=-17)
    pt = b.const("paddings", np.array(paddings, dtype=np.int32))
    yt = b.tensor("y", out_shape, "int8", scale=0.05, zero_point=-17)
    b.op("PAD", [xt, pt], [yt], "PadOptions")
    path = finish(b, tmp_path, [xt], [yt])
    outs = check_model(path, lambda i: [rand_q(rng, shape)])
    assert_varied(outs)
    assert np.sum(outs[0] == -17) >= (np.prod(out_shape) - np.prod(shape)) * N_INPUTS


@pytest.mark.parametrize("shape,perm", [((1, 4, 5, 6), (0, 3, 1, 2)), ((1, 4, 5, 6), (0, 2, 1, 3)),
                                        ((2, 3, 4), (2, 0, 1)), ((6, 7), (1, 0))])
def test_transpose(tmp_path, shape, perm):
    rng = np.random.default_rng(sum(shape) + sum(perm))
    b = ModelBuilder()
    xt = b.tensor("x", shape, "int8", scale=0.05, zero_point=3)
    pt = b.const("perm", np.array(perm, dtype=np.int32))
    yt = b.tensor("y", tuple(shape[p] for p in perm), "int8", scale=0.05, zero_point=3)
    b.op("TRANSPOSE", [xt, pt], [yt], "TransposeOptions")
    path = finish(b, tmp_path, [xt], [yt])
    assert_varied(check_model(path, lambda i: [rand_q(rng, shape)]))


@pytest.mark.parametrize("shape,new_shape", [((1, 4, 4, 3), (1, 48)), ((2, 6), (1, 3, 4)), ((1, 49, 40), (1, 49, 40, 1))])
def test_reshape(tmp_path, shape, new_shape):
    rng = np.random.default_rng(sum(shape))
    b = ModelBuilder()
    xt = b.tensor("x", shape, "int8", scale=0.05, zero_point=3)
    st = b.const("shape", np.array(new_shape, dtype=np.int32))
    yt = b.tensor("y", new_shape, "int8", scale=0.05, zero_point=3)
    b.op("RESHAPE", [xt, st], [yt])
    path = finish(b, tmp_path, [xt], [yt])
    assert_varied(check_model(path, lambda i: [rand_q(rng, shape)]))


MEAN_CASES = [
    # shape, axes, keep_dims, out scale factor, out zp (in scale 0.05, zp -10); the output scale is
    # factor * 0.05 * 2 / sqrt(n), which spreads a mean of n uniform int8 values over about +-40 steps;
    # factor None keeps the input's quantization
    ((1, 6, 7, 8), (1, 2), True, 1.0, 5),
    ((1, 6, 7, 8), (1, 2), False, 1.3, -20),
    ((1, 6, 7, 8), (1, 2), True, None, -10),
    ((1, 5, 5, 16), (2, 1), True, 0.8, 0),
    ((1, 6, 7, 8), (3,), True, 1.1, 12),
    ((2, 5, 6), (1,), False, 0.9, -3),
    ((1, 4, 4, 4), (1, 2, 3), True, 1.0, 0),
    ((1, 25, 5, 64), (1, 2), True, 1.0, 1),
    ((1, 3, 3, 5), (1, 2), True, 3.0, 2),
]


@pytest.mark.parametrize("case", MEAN_CASES, ids=lambda c: f"{c[0]}-ax{c[1]}-keep{c[2]}-x{c[3]}")
def test_mean(tmp_path, case):
    shape, axes, keep, factor, out_zp = case
    rng = np.random.default_rng(seed(case))
    out_shape = tuple(1 if i in axes else d for i, d in enumerate(shape)) if keep else tuple(
        d for i, d in enumerate(shape) if i not in axes)
    b = ModelBuilder()
    xt = b.tensor("x", shape, "int8", scale=0.05, zero_point=-10)
    at = b.const("axes", np.array(axes, dtype=np.int32))
    n = int(np.prod([shape[a] for a in axes]))
    out_scale = 0.05 if factor is None else float(np.float32(0.05 * factor * 2 / np.sqrt(n)))
    yt = b.tensor("y", out_shape, "int8", scale=out_scale, zero_point=out_zp)
    b.op("MEAN", [xt, at], [yt], "ReducerOptions", KeepDims=keep)
    path = finish(b, tmp_path, [xt], [yt])
    outs = check_model(path, lambda i: [rand_q(rng, shape)])
    assert_varied(outs, min_distinct=5, max_saturated=0.1)


def test_concatenation_same_quantization(tmp_path):
    rng = np.random.default_rng(3)
    b = ModelBuilder()
    a = b.tensor("a", (1, 4, 4, 3), "int8", scale=0.05, zero_point=5)
    c = b.tensor("c", (1, 4, 4, 5), "int8", scale=0.05, zero_point=5)
    d = b.tensor("d", (1, 4, 4, 1), "int8", scale=0.05, zero_point=5)
    y = b.tensor("y", (1, 4, 4, 9), "int8", scale=0.05, zero_point=5)
    b.op("CONCATENATION", [a, c, d], [y], "ConcatenationOptions", Axis=3)
    e = b.tensor("e", (1, 2, 4, 9), "int8", scale=0.05, zero_point=5)
    z = b.tensor("z", (1, 6, 4, 9), "int8", scale=0.05, zero_point=5)
    b.op("CONCATENATION", [y, e], [z], "ConcatenationOptions", Axis=1)
    path = finish(b, tmp_path, [a, c, d, e], [z])
    shapes = [(1, 4, 4, 3), (1, 4, 4, 5), (1, 4, 4, 1), (1, 2, 4, 9)]
    assert_varied(check_model(path, lambda i: [rand_q(rng, s) for s in shapes]))


@pytest.mark.parametrize("axis", [3, 1])
def test_concatenation_of_differently_quantized_inputs(tmp_path, axis):
    """TFLite's int8 CONCATENATION refuses inputs quantized unlike the output; mcutool's concat rescales each
    such input as TFLite's QUANTIZE (int8 -> int8) does. The oracle is QUANTIZE per input, then CONCATENATION."""
    rng = np.random.default_rng(11 + axis)
    quants = [(0.05, 5), (0.11, -7), (0.02, 30)]
    out_q = (0.08, -3)
    shapes = [(1, 3, 4, 2), (1, 3, 4, 3), (1, 3, 4, 4)] if axis == 3 else [(1, 2, 4, 3), (1, 3, 4, 3), (1, 1, 4, 3)]
    out_shape = (1, 3, 4, 9) if axis == 3 else (1, 6, 4, 3)
    b = ModelBuilder()
    ins, requantized = [], []
    for k, (shape, (s, z)) in enumerate(zip(shapes, quants)):
        t = b.tensor(f"in{k}", shape, "int8", scale=s, zero_point=z)
        r = b.tensor(f"rq{k}", shape, "int8", scale=out_q[0], zero_point=out_q[1])
        b.op("QUANTIZE", [t], [r])
        ins.append(t)
        requantized.append(r)
    y = b.tensor("y", out_shape, "int8", scale=out_q[0], zero_point=out_q[1])
    b.op("CONCATENATION", requantized, [y], "ConcatenationOptions", Axis=axis)
    path = finish(b, tmp_path, ins, [y])
    # the same computation as one mcutool concat op over differently quantized inputs
    g = Graph("concat")
    for k, (shape, (s, z)) in enumerate(zip(shapes, quants)):
        g.add_tensor(Tensor(f"in{k}", shape, "int8", Quant(np.float32(s), z)))
    g.add_tensor(Tensor("y", out_shape, "int8", Quant(np.float32(out_q[0]), out_q[1])))
    g.ops.append(Op("concat_0", "concat", [f"in{k}" for k in range(3)], ["y"], ConcatAttrs(axis=axis)))
    g.inputs, g.outputs = [f"in{k}" for k in range(3)], ["y"]
    g.validate()
    outs = check_model(path, lambda i: [rand_q(rng, s) for s in shapes], graph=g)
    assert_varied(outs)
    # and the imported QUANTIZE + CONCATENATION model agrees as well
    check_model(path, lambda i: [rand_q(rng, s) for s in shapes], n=5)


# ------------------------------------------------------------------------------------------------ quantize / dequantize

@pytest.mark.parametrize("scale,zp,dtype", [(0.05, -3, "int8"), (0.0123, 17, "int8"), (0.5, 0, "int8"),
                                            (0.02, 128, "uint8")])
def test_quantize_float(tmp_path, scale, zp, dtype):
    rng = np.random.default_rng(int(scale * 1e4) + zp)
    b = ModelBuilder()
    xt = b.tensor("x", (2, 64), "float32")
    yt = b.tensor("y", (2, 64), dtype, scale=scale, zero_point=zp)
    b.op("QUANTIZE", [xt], [yt])
    path = finish(b, tmp_path, [xt], [yt])
    s = np.float32(scale)

    def inputs(i):
        ties = (rng.integers(-300, 300, (2, 64)) * np.float32(0.5) * s).astype(np.float32)  # x / scale = k + 1/2
        noise = (rng.normal(0, 60, (2, 64)) * s).astype(np.float32)
        return [np.where(rng.random((2, 64)) < 0.5, ties, noise).astype(np.float32)]

    outs = check_model(path, inputs)
    assert_varied(outs, min_distinct=50, max_saturated=0.4, dtype=dtype)


@pytest.mark.parametrize("in_q,out_q", [
    (("int8", 0.05, 3), ("int8", 0.1, -5)),
    (("int8", 0.1, -20), ("int8", 0.03, 7)),  # multiplier > 1
    (("int8", 0.05, 3), ("int8", 0.05, 3)),
    (("uint8", 0.04, 128), ("int8", 0.04, 0)),  # the xor-0x80 fast path
    (("uint8", 0.02, 100), ("int8", 0.05, -10)),
    (("int8", 0.03, -4), ("uint8", 0.06, 131)),
])
def test_quantize_requantize(tmp_path, in_q, out_q):
    rng = np.random.default_rng(int(in_q[1] * 1e4) + int(out_q[1] * 1e3))
    b = ModelBuilder()
    xt = b.tensor("x", (1, 8, 8, 4), in_q[0], scale=in_q[1], zero_point=in_q[2])
    yt = b.tensor("y", (1, 8, 8, 4), out_q[0], scale=out_q[1], zero_point=out_q[2])
    b.op("QUANTIZE", [xt], [yt])
    path = finish(b, tmp_path, [xt], [yt])
    lo, hi = R.dtype_range(in_q[0])

    spread = 45 * min(1.0, out_q[1] / in_q[1])

    def inputs(i):
        q = in_q[2] + rng.normal(0, spread, (1, 8, 8, 4))
        return [np.clip(np.round(q), lo, hi).astype(NP_TYPES[in_q[0]])]

    outs = check_model(path, inputs)
    assert_varied(outs, min_distinct=50, max_saturated=0.3, dtype=out_q[0])


@pytest.mark.parametrize("dtype,scale,zp", [("int8", 0.05, -3), ("int8", 0.0078125, 0), ("uint8", 0.1234, 131)])
def test_dequantize(tmp_path, dtype, scale, zp):
    rng = np.random.default_rng(int(scale * 1e4))
    b = ModelBuilder()
    xt = b.tensor("x", (3, 50), dtype, scale=scale, zero_point=zp)
    yt = b.tensor("y", (3, 50), "float32")
    b.op("DEQUANTIZE", [xt], [yt])
    path = finish(b, tmp_path, [xt], [yt])
    outs = check_model(path, lambda i: [rand_q(rng, (3, 50), dtype)])
    assert_varied(outs, min_distinct=100, dtype="float32")


# ------------------------------------------------------------------------------------------------ uint8 models

def test_uint8_conv_fc_pool_softmax(tmp_path):
    """uint8 tensors (TFLite's legacy quantization: uint8 weights with a non-zero zero point)."""
    rng = np.random.default_rng(8)
    b = ModelBuilder()
    x = b.tensor("x", (1, 8, 8, 3), "uint8", scale=0.02, zero_point=120)
    w = b.tensor("w", (6, 3, 3, 3), "uint8", scale=0.01, zero_point=131, data=rng.integers(0, 256, (6, 3, 3, 3)))
    bias = b.tensor("bias", (6,), "int32", scale=np.float32(0.02) * np.float32(0.01), zero_point=0,
                    data=rng.integers(-2000, 2000, 6))
    c = b.tensor("c", (1, 4, 4, 6), "uint8", scale=0.05, zero_point=100)
    b.op("CONV_2D", [x, w, bias], [c], "Conv2DOptions", Padding="SAME", StrideH=2, StrideW=2)
    dw = b.tensor("dw", (1, 3, 3, 6), "uint8", scale=0.02, zero_point=125, data=rng.integers(0, 256, (1, 3, 3, 6)))
    dwb = b.tensor("dwb", (6,), "int32", scale=np.float32(0.05) * np.float32(0.02), zero_point=0,
                   data=rng.integers(-500, 500, 6))
    d = b.tensor("d", (1, 4, 4, 6), "uint8", scale=0.1, zero_point=128)
    b.op("DEPTHWISE_CONV_2D", [c, dw, dwb], [d], "DepthwiseConv2DOptions", Padding="SAME", StrideH=1, StrideW=1,
         DepthMultiplier=1)
    p = b.tensor("p", (1, 2, 2, 6), "uint8", scale=0.1, zero_point=128)
    b.op("AVERAGE_POOL_2D", [d], [p], "Pool2DOptions", Padding="VALID", StrideH=2, StrideW=2, FilterHeight=2,
         FilterWidth=2)
    r = b.tensor("r", (1, 24), "uint8", scale=0.1, zero_point=128)
    b.op("RESHAPE", [p, b.const("shape", np.array([1, 24], np.int32))], [r])
    fw = b.tensor("fw", (10, 24), "uint8", scale=0.01, zero_point=127, data=rng.integers(0, 256, (10, 24)))
    fb = b.tensor("fb", (10,), "int32", scale=np.float32(0.1) * np.float32(0.01), zero_point=0,
                  data=rng.integers(-300, 300, 10))
    f = b.tensor("f", (1, 10), "uint8", scale=0.05, zero_point=128)
    b.op("FULLY_CONNECTED", [r, fw, fb], [f], "FullyConnectedOptions")
    s = b.tensor("s", (1, 10), "uint8", scale=1 / 256, zero_point=0)
    b.op("SOFTMAX", [f], [s], "SoftmaxOptions", Beta=1.0)
    path = finish(b, tmp_path, [x], [s, d])
    outs = check_model(path, lambda i: [rand_q(rng, (1, 8, 8, 3), "uint8")])
    assert_varied(outs[1], dtype="uint8")
    assert_varied(outs[0], min_distinct=5, max_saturated=0.9, dtype="uint8")


def test_uint8_add_mul_logistic_mean(tmp_path):
    rng = np.random.default_rng(9)
    b = ModelBuilder()
    x = b.tensor("x", (1, 5, 5, 4), "uint8", scale=0.03, zero_point=110)
    y = b.tensor("y", (1, 1, 1, 4), "uint8", scale=0.05, zero_point=140)
    a = b.tensor("a", (1, 5, 5, 4), "uint8", scale=0.07, zero_point=128)
    b.op("ADD", [x, y], [a], "AddOptions")
    m = b.tensor("m", (1, 5, 5, 4), "uint8", scale=0.03, zero_point=128)
    b.op("MUL", [a, x], [m], "MulOptions")
    lg = b.tensor("lg", (1, 5, 5, 4), "uint8", scale=1 / 256, zero_point=0)
    b.op("LOGISTIC", [m], [lg])
    mn = b.tensor("mn", (1, 1, 1, 4), "uint8", scale=0.02, zero_point=128)
    b.op("MEAN", [m, b.const("axes", np.array([1, 2], np.int32))], [mn], "ReducerOptions", KeepDims=True)
    path = finish(b, tmp_path, [x, y], [lg, mn])
    outs = check_model(path, lambda i: [rand_q(rng, (1, 5, 5, 4), "uint8"), rand_q(rng, (1, 1, 1, 4), "uint8")])
    assert_varied(outs[0], dtype="uint8")
    assert_varied(outs[1], min_distinct=5, dtype="uint8")


# ------------------------------------------------------------------------------------------------ multiplier precision

def _multiplier_pairs(rng, make_scales, compute_a, compute_b, tries=20000):
    """Scale triples whose Q31 multipliers differ between two ways of computing them in float."""
    for _ in range(tries):
        scales = make_scales(rng)
        ma, mb = R.quantize_multiplier(compute_a(*scales)), R.quantize_multiplier(compute_b(*scales))
        if ma != mb:
            yield scales, ma, mb


PRECISION_VARIANTS = {
    # variant: (rule tflite-runtime 2.14 follows, rule it does not)
    "fully_connected_per_tensor": ("float_product", "double"),
    "fully_connected_per_channel": ("double", "float_product"),
    "conv2d_int8": ("double", "float_product"),
    "depthwise_conv2d_int8": ("double", "float_product"),
    "conv2d_uint8": ("float_product", "double"),
}
_RULES = {
    "double": lambda si, sw, so: float(si) * float(sw) / float(so),
    "float_product": lambda si, sw, so: float(np.float32(si * sw)) / float(so),
}


def _one_pixel_layer(b, variant, rng, si, sw, so, bias_fn):
    """A layer with one output pixel of 4 channels; returns (input, accumulators, bias, zero point, range)."""
    uint8 = variant == "conv2d_uint8"
    dtype, x_zp, w_zp, o_zp = ("uint8", 120, 128, 126) if uint8 else ("int8", 3, 0, -2)
    w_scales = np.array([sw] * 4 if variant != "fully_connected_per_channel" else [sw, sw * 1.1, sw * 0.9, sw * 1.3],
                        np.float32)
    if variant.startswith("fully_connected"):
        x_shape, w_shape, out_shape = (1, 64), (4, 64), (1, 4)
    elif variant.startswith("depthwise"):
        x_shape, w_shape, out_shape = (1, 3, 3, 4), (1, 3, 3, 4), (1, 1, 1, 4)
    else:
        x_shape, w_shape, out_shape = (1, 3, 3, 2), (4, 3, 3, 2), (1, 1, 1, 4)
    x = rand_q(rng, x_shape, dtype)
    wq = rand_q(rng, w_shape, dtype) if uint8 else rng.integers(-127, 128, w_shape)
    if variant.startswith("fully_connected"):
        acc = R.fully_connected_accumulate(x, x_zp, wq, w_zp)[0]
    elif variant.startswith("depthwise"):
        acc = R.depthwise_conv2d_accumulate(x, x_zp, wq, w_zp, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1).reshape(4)
    else:
        acc = R.conv2d_accumulate(x, x_zp, wq, w_zp, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1)).reshape(4)
    bias = bias_fn(acc)
    per_channel = variant in ("fully_connected_per_channel", "conv2d_int8", "depthwise_conv2d_int8")
    xt = b.tensor("x", x_shape, dtype, scale=si, zero_point=x_zp)
    wt = b.tensor("w", w_shape, dtype, scale=w_scales if per_channel else sw, zero_point=w_zp,
                  axis=3 if variant.startswith("depthwise") else 0, data=wq)
    bt = b.tensor("bias", (4,), "int32", scale=(np.float32(si) * w_scales) if per_channel else np.float32(si * sw),
                  zero_point=0, data=bias)
    yt = b.tensor("y", out_shape, dtype, scale=so, zero_point=o_zp)
    if variant.startswith("fully_connected"):
        b.op("FULLY_CONNECTED", [xt, wt, bt], [yt], "FullyConnectedOptions")
    elif variant.startswith("depthwise"):
        b.op("DEPTHWISE_CONV_2D", [xt, wt, bt], [yt], "DepthwiseConv2DOptions", Padding="VALID", StrideH=1,
             StrideW=1, DepthMultiplier=1)
    else:
        b.op("CONV_2D", [xt, wt, bt], [yt], "Conv2DOptions", Padding="VALID", StrideH=1, StrideW=1)
    b.inputs, b.outputs = [xt], [yt]
    return x, acc, bias, o_zp, R.dtype_range(dtype)


@pytest.mark.parametrize("variant", list(PRECISION_VARIANTS))
def test_requantization_multiplier_precision(tmp_path, variant):
    """Which float precision TFLite computes each layer's multiplier in matters in the multiplier's last bit.
    Channel 0's bias is crafted so the other rule would change its output; mcutool must match tflite-runtime
    (FULLY_CONNECTED per tensor and uint8 conv: float32 scale product; per-channel layers and int8 conv: double)."""
    rng = np.random.default_rng(zlib.crc32(variant.encode()))
    followed, other_rule = (_RULES[r] for r in PRECISION_VARIANTS[variant])
    candidates = np.arange(-400000, 400000)
    checked = 0
    for _ in range(20000):
        si, sw = np.float32(rng.uniform(0.001, 0.1)), np.float32(rng.uniform(0.0005, 0.01))
        so = np.float32(si * sw * rng.uniform(1000, 30000))
        ours, other = R.quantize_multiplier(followed(si, sw, so)), R.quantize_multiplier(other_rule(si, sw, so))
        if ours == other:
            continue
        out_ours = R.multiply_by_quantized_multiplier(candidates, *ours)
        hit = np.nonzero((out_ours != R.multiply_by_quantized_multiplier(candidates, *other))
                         & (np.abs(out_ours) < 100))[0]
        if not hit.size:
            continue

        def bias_fn(acc):
            bias = rng.integers(-1000, 1000, 4)
            bias[0] = candidates[hit[0]] - acc[0]  # channel 0's accumulator lands on a differing value
            return bias

        b = ModelBuilder()
        x, acc, bias, o_zp, (lo, hi) = _one_pixel_layer(b, variant, rng, si, sw, so, bias_fn)
        path = b.write(tmp_path / f"m{checked}.tflite")
        expected = RefInterpreter(path)(x)[0].reshape(4)
        assert np.array_equal(R.run(load_tflite(path), {"x": x})["y"].reshape(4), expected)
        assert R.requantize_accumulator(acc[0] + bias[0], *other, o_zp, lo, hi) != expected[0]
        checked += 1
        if checked == 2:
            break
    assert checked == 2


def test_mul_multiplier_is_computed_in_double(tmp_path):
    """MUL's real multiplier is (double)s1 * s2 / s_out (then QuantizeMultiplier), as TFLite Micro's
    `mul_common.cc` computes it. The oracle here is the tflite-micro interpreter, not BUILTIN_REF: tflite-runtime
    2.14's `mul.cc` evaluates it in float32 and differs on exactly these inputs (DESIGN.md §6: TFLite Micro's
    arithmetic is the oracle)."""
    rng = np.random.default_rng(5)
    values = np.arange(-128, 128)
    all_float = lambda s1, s2, so: float(np.float32(np.float32(s1 * s2) / so))  # noqa: E731
    double = lambda s1, s2, so: float(s1) * float(s2) / float(so)  # noqa: E731

    def make_scales(rng):
        s1, s2 = np.float32(rng.uniform(0.01, 0.2)), np.float32(rng.uniform(0.01, 0.2))
        return s1, s2, np.float32(s1 * s2 * rng.uniform(50, 500))

    prod, first = np.unique((values[:, None] - 5) * (values[None, :] + 7), return_index=True)
    checked = 0
    for (s1, s2, so), m_double, m_float in _multiplier_pairs(rng, make_scales, double, all_float):
        out_double = R.multiply_by_quantized_multiplier(prod, *m_double)
        hit = np.nonzero((out_double != R.multiply_by_quantized_multiplier(prod, *m_float))
                         & (np.abs(out_double) < 120))[0]
        if not len(hit):
            continue
        diff = np.stack(np.unravel_index(first[hit], (256, 256)), axis=1)
        b = ModelBuilder()
        xa = b.tensor("a", (1, len(diff)), "int8", scale=s1, zero_point=5)
        xb = b.tensor("b", (1, len(diff)), "int8", scale=s2, zero_point=-7)
        yt = b.tensor("y", (1, len(diff)), "int8", scale=so, zero_point=3)
        b.op("MUL", [xa, xb], [yt], "MulOptions")
        path = finish(b, tmp_path, [xa, xb], [yt], name=f"mul{checked}")
        a, c = values[diff[:, 0]].astype(np.int8)[None], values[diff[:, 1]].astype(np.int8)[None]
        (want,) = MicroInterpreter(path)(a, c)
        assert np.array_equal(R.run(load_tflite(path), {"a": a, "b": c})["y"], want)
        # every value compared is one where the float32 rule gives another output
        assert np.all(R.multiply_by_quantized_multiplier(prod[hit], *m_float) + 3 != want.ravel())
        checked += 1
        if checked == 3:
            break
    assert checked == 3


def test_uint8_mul_multiplier_is_tflites_float32(tmp_path):
    """uint8 MUL, which TFLite Micro does not run (its MUL takes int8, int16, int32, float32): tflite-runtime
    2.14 is the only oracle, and its `mul.cc` evaluates s1 * s2 / s_out in float32. With s1 = 0.5, s2 = 0.25,
    s_out = 0.2 that is 2^23 / 13421773 rounded to float32, 0.625 exactly (multiplier 1342177280), where the int8
    rule's double gives 1342177260 (test_ops_elementwise.py test_mul_multiplier_is_tflite_micros_double); all
    65,536 input pairs."""
    assert R.mul_output_multiplier(0.5, 0.25, 0.2, "uint8") == (1342177280, 0)
    b = ModelBuilder()
    xa = b.tensor("a", (1, 256), "uint8", scale=0.5, zero_point=118)
    xb = b.tensor("b", (1, 256), "uint8", scale=0.25, zero_point=131)
    yt = b.tensor("y", (1, 256), "uint8", scale=0.2, zero_point=0)
    b.op("MUL", [xa, xb], [yt], "MulOptions")
    path = finish(b, tmp_path, [xa, xb], [yt])
    every = np.arange(256, dtype=np.uint8).reshape(1, 256)
    check_model(path, lambda i: [every, np.full((1, 256), i, np.uint8)], n=256)


# ------------------------------------------------------------------------------------------------ building blocks

def _srdhm_scalar(a, b):
    if a == b == R.INT32_MIN:
        return R.INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else (1 - (1 << 30))
    s = ab + nudge
    return int(s / (1 << 31)) if abs(s) < 2**52 else (abs(s) >> 31) * (1 if s >= 0 else -1)


def _rdbp_scalar(x, e):
    mask = (1 << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if remainder > threshold else 0)


def _wrap(v):
    return ((v + 2**31) % 2**32) - 2**31


def _mbqm_scalar(x, m, shift):
    left, right = max(shift, 0), max(-shift, 0)
    return _rdbp_scalar(_srdhm_scalar(_wrap(x * (1 << left)), m), right)


def test_multiply_by_quantized_multiplier_matches_scalar_port():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.integers(-2**31, 2**31, 3000), rng.integers(-70000, 70000, 3000),
                        [0, 1, -1, R.INT32_MIN, R.INT32_MAX]])
    m = rng.integers(2**30, 2**31, x.size)
    m[:5] = [2**30, R.INT32_MAX, 2**30, R.INT32_MIN, R.INT32_MAX]
    shift = rng.integers(-31, 8, x.size)
    got = R.multiply_by_quantized_multiplier(x, m, shift)
    want = [_mbqm_scalar(int(a), int(b), int(c)) for a, b, c in zip(x, m, shift)]
    assert got.tolist() == want
    assert R.saturating_rounding_doubling_high_mul(R.INT32_MIN, R.INT32_MIN) == R.INT32_MAX
    assert R.rounding_divide_by_pot(np.array([-5, -6, 5, 6, -7]), 1).tolist() == [-3, -3, 3, 3, -4]


def test_quantize_multiplier():
    assert R.quantize_multiplier(0.5) == (1 << 30, 0)
    assert R.quantize_multiplier(0.0) == (0, 0)
    assert R.quantize_multiplier(1.0) == (1 << 30, 1)
    assert R.quantize_multiplier(0.75) == (3 << 29, 0)
    # a significand that rounds up to 2^31 is halved and the shift incremented
    assert R.quantize_multiplier(1.0 - 2.0**-34) == (1 << 30, 1)
    # shifts below -31 become (0, 0)
    assert R.quantize_multiplier(2.0**-40) == (0, 0)
    m, s = R.quantize_multiplier(0.0123)
    assert abs(m * 2.0 ** (s - 31) - 0.0123) < 1e-11


def test_activation_range():
    assert R.activation_range("none", 0.1, 3, "int8") == (-128, 127)
    assert R.activation_range("relu", 0.1, 3, "int8") == (3, 127)
    assert R.activation_range("relu6", 0.05, -20, "int8") == (-20, 100)
    assert R.activation_range("relu_n1_to_1", 0.01, 0, "int8") == (-100, 100)
    assert R.activation_range("relu6", 0.01, 0, "uint8") == (0, 255)


def test_unsupported_combinations_raise_user_error():
    g = Graph("bad")
    g.add_tensor(Tensor("x", (1, 4), "int16", Quant(0.1, 0)))
    g.add_tensor(Tensor("y", (1, 4), "int16", Quant(1 / 256, 0)))
    g.ops.append(Op("sm", "softmax", ["x"], ["y"]))
    g.inputs, g.outputs = ["x"], ["y"]
    with pytest.raises(UserError, match="softmax"):
        R.run(g, {"x": np.zeros((1, 4), np.int16)})
    g2 = Graph("bad_input")
    g2.add_tensor(Tensor("x", (1, 4), "int8", Quant(0.1, 0)))
    g2.add_tensor(Tensor("y", (1, 4), "int8", Quant(0.1, 0)))
    g2.ops.append(Op("r", "reshape", ["x"], ["y"]))
    g2.inputs, g2.outputs = ["x"], ["y"]
    with pytest.raises(UserError, match="must be int8"):
        R.run(g2, {"x": np.zeros((1, 4), np.float32)})
    assert R.run(g2, {"x": np.ones((1, 4), np.int8)}, keep=True)["y"].tolist() == [[1, 1, 1, 1]]


def test_add_multipliers_are_computed_in_double(tmp_path):
    """ADD's input and output multipliers come from double arithmetic on the float32 scales."""
    rng = np.random.default_rng(17)
    values = np.arange(-128, 128)

    def float_params(s1, s2, so):
        twice_max = np.float32(2) * max(s1, s2)
        reals = (s1 / twice_max, s2 / twice_max, twice_max / (np.float32(1 << 20) * so))
        pairs = [R.quantize_multiplier(float(np.float32(r))) for r in reals]
        return R.AddParams(20, *pairs[0], *pairs[1], *pairs[2])

    def outputs(p):
        return R.add_int8(values[:, None], values[None, :], a_zp=5, b_zp=-7, out_zp=3, params=p,
                          act_min=-128, act_max=127)

    checked = 0
    for _ in range(5000):
        s1, s2 = np.float32(rng.uniform(0.01, 0.2)), np.float32(rng.uniform(0.01, 0.2))
        so = np.float32(max(s1, s2) * rng.uniform(0.5, 3))
        ours, other = R.add_params(s1, s2, so), float_params(s1, s2, so)
        if ours == other:
            continue
        diff = np.argwhere(outputs(ours) != outputs(other))
        if not len(diff):
            continue
        b = ModelBuilder()
        xa = b.tensor("a", (1, len(diff)), "int8", scale=s1, zero_point=5)
        xb = b.tensor("b", (1, len(diff)), "int8", scale=s2, zero_point=-7)
        yt = b.tensor("y", (1, len(diff)), "int8", scale=so, zero_point=3)
        b.op("ADD", [xa, xb], [yt], "AddOptions")
        path = finish(b, tmp_path, [xa, xb], [yt], name=f"add{checked}")
        a, c = values[diff[:, 0]].astype(np.int8)[None], values[diff[:, 1]].astype(np.int8)[None]
        check_model(path, lambda i: [a, c], n=1)
        checked += 1
        if checked == 2:
            break
    assert checked == 2


# ------------------------------------------------------------------------------------------------ ONNX integer ops
# ONNX's own conformance cases (../shared/models/onnx_node): raw int32 accumulators with non-zero weight zero
# points, and uint8 tensors. The graphs are built by hand (NCHW -> NHWC) since they test the reference only.

def _onnx_case(name):
    import onnx
    from onnx import numpy_helper

    from conftest import SHARED_MODELS

    folder = SHARED_MODELS / "onnx_node" / name
    if not folder.exists():
        pytest.fail(f"{folder} is missing: the tests expect ../shared/models beside the checkout")
    model = onnx.load(str(folder / "model.onnx"))

    def load(kind):
        arrays = []
        for f in sorted((folder / "test_data_set_0").glob(f"{kind}_*.pb")):
            t = onnx.TensorProto()
            t.ParseFromString(f.read_bytes())
            arrays.append(numpy_helper.to_array(t))
        return arrays

    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in model.graph.node[0].attribute}
    return load("input"), load("output")[0], attrs


def _graph(tensors, ops, inputs, outputs):
    g = Graph("onnx_case")
    for t in tensors:
        g.add_tensor(t)
    g.ops.extend(ops)
    g.inputs, g.outputs = inputs, outputs
    g.validate()
    return g


@pytest.mark.parametrize("case", ["test_convinteger_with_padding", "test_convinteger_without_padding"])
def test_onnx_convinteger_raw_int32_accumulator(case):
    from mcutool.ir import Conv2DAttrs

    (x, w, x_zp, *rest), expected, attrs = _onnx_case(case)
    w_zp = rest[0] if rest else np.zeros(1, np.uint8)
    pads = attrs.get("pads", [0, 0, 0, 0])  # ONNX: top, left, bottom, right
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    w_ohwi = np.ascontiguousarray(w.transpose(0, 2, 3, 1))
    out_shape = tuple(expected.transpose(0, 2, 3, 1).shape)
    g = _graph([Tensor("x", x_nhwc.shape, "uint8", Quant(1.0, int(x_zp))),
                Tensor("w", w_ohwi.shape, "uint8",
                       Quant(np.ones(w.shape[0]), np.broadcast_to(w_zp, (w.shape[0],)), axis=0), w_ohwi),
                Tensor("y", out_shape, "int32")],
               [Op("conv", "conv2d", ["x", "w"], ["y"], Conv2DAttrs(pads=tuple(pads)))], ["x"], ["y"])
    got = R.run(g, {"x": x_nhwc})["y"]
    assert got.dtype == np.int32
    assert np.array_equal(got, expected.transpose(0, 2, 3, 1))


def test_onnx_matmulinteger_raw_int32_accumulator():
    (a, b, a_zp, b_zp), expected, _ = _onnx_case("test_matmulinteger")
    w = np.ascontiguousarray(b.T)  # (out, in)
    g = _graph([Tensor("a", a.shape, "uint8", Quant(1.0, int(a_zp.reshape(-1)[0]))),
                Tensor("w", w.shape, "uint8", Quant(1.0, int(b_zp.reshape(-1)[0])), w),
                Tensor("y", expected.shape, "int32")],
               [Op("mm", "fully_connected", ["a", "w"], ["y"])], ["a"], ["y"])
    got = R.run(g, {"a": a})["y"]
    assert got.dtype == np.int32 and np.array_equal(got, expected)


def test_onnx_qlinearconv_within_one_lsb():
    """ONNX's expected QLinearConv outputs come from float requantization; the Q31 integer path agrees within
    one step (DESIGN.md §6)."""
    (x, xs, xz, w, ws, wz, ys, yz), expected, _ = _onnx_case("test_qlinearconv")
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    w_ohwi = np.ascontiguousarray(w.transpose(0, 2, 3, 1))
    g = _graph([Tensor("x", x_nhwc.shape, "uint8", Quant(xs, int(xz))),
                Tensor("w", w_ohwi.shape, "uint8", Quant(ws, wz, axis=0), w_ohwi),
                Tensor("y", x_nhwc.shape[:3] + (w.shape[0],), "uint8", Quant(ys, int(yz)))],
               [Op("conv", "conv2d", ["x", "w"], ["y"])], ["x"], ["y"])
    got = R.run(g, {"x": x_nhwc})["y"].astype(np.int64)
    want = expected.transpose(0, 2, 3, 1).astype(np.int64)
    assert np.abs(got - want).max() <= 1
    assert np.mean(got == want) > 0.9


@pytest.mark.parametrize("case,kind", [("test_averagepool_2d_pads", "avg_pool2d"), ("test_maxpool_2d_pads", "max_pool2d")])
def test_onnx_float_pools_with_pads(case, kind):
    from mcutool.ir import Pool2DAttrs

    (x,), expected, attrs = _onnx_case(case)
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    want = expected.transpose(0, 2, 3, 1)
    attr = Pool2DAttrs(filter=tuple(attrs["kernel_shape"]), stride=tuple(attrs.get("strides", (1, 1))),
                       pads=tuple(attrs["pads"]), count_include_pad=bool(attrs.get("count_include_pad", 0)))
    g = _graph([Tensor("x", x_nhwc.shape, "float32"), Tensor("y", want.shape, "float32")],
               [Op("pool", kind, ["x"], ["y"], attr)], ["x"], ["y"])
    np.testing.assert_allclose(R.run(g, {"x": x_nhwc})["y"], want, rtol=1e-6, atol=1e-6)


def _avg_pool_brute_force(x, zp, filt, stride, pads, out_hw, include_pad):
    n, h, w, c = x.shape
    out = np.zeros((n,) + tuple(out_hw) + (c,), np.int64)
    for oy in range(out_hw[0]):
        for ox in range(out_hw[1]):
            acc, count = np.zeros((n, c), np.int64), 0
            for ky in range(filt[0]):
                for kx in range(filt[1]):
                    iy, ix = oy * stride[0] - pads[0] + ky, ox * stride[1] - pads[1] + kx
                    if 0 <= iy < h and 0 <= ix < w:
                        acc += x[:, iy, ix, :]
                        count += 1
                    elif include_pad and -pads[0] <= iy < h + pads[2] and -pads[1] <= ix < w + pads[3]:
                        acc += zp
                        count += 1
            half = count // 2
            out[:, oy, ox, :] = np.where(acc > 0, (acc + half) // count, -((-(acc - half)) // count))
    return out


@pytest.mark.parametrize("include_pad", [False, True])
def test_avg_pool_count_include_pad(include_pad):
    from mcutool.ir import Pool2DAttrs

    rng = np.random.default_rng(4)
    x = rand_q(rng, (2, 7, 6, 3))
    filt, stride, pads = (3, 3), (2, 2), (1, 2, 1, 1)
    out_hw = ((7 + 2 - 3) // 2 + 1, (6 + 3 - 3) // 2 + 1)
    g = _graph([Tensor("x", x.shape, "int8", Quant(0.1, -9)), Tensor("y", (2,) + out_hw + (3,), "int8", Quant(0.1, -9))],
               [Op("pool", "avg_pool2d", ["x"], ["y"], Pool2DAttrs(filt, stride, pads, count_include_pad=include_pad))],
               ["x"], ["y"])
    want = _avg_pool_brute_force(x.astype(np.int64), -9, filt, stride, pads, out_hw, include_pad)
    assert np.array_equal(R.run(g, {"x": x})["y"], want)


def test_float_ops_close_to_tflite_runtime(tmp_path):
    """The float32 path (used to calibrate float models) on the ops resnet8 does not cover: depthwise, mul,
    logistic, pad, max pool, transpose, mean, concatenation, softmax with beta."""
    rng = np.random.default_rng(21)
    b = ModelBuilder()
    f = "float32"
    x = b.tensor("x", (1, 8, 8, 3), f)
    dw = b.tensor("dw_w", (1, 3, 3, 6), f, data=rng.normal(0, 0.5, (1, 3, 3, 6)))
    dwb = b.tensor("dw_b", (6,), f, data=rng.normal(0, 0.1, 6))
    d = b.tensor("d", (1, 8, 8, 6), f)
    b.op("DEPTHWISE_CONV_2D", [x, dw, dwb], [d], "DepthwiseConv2DOptions", Padding="SAME", StrideH=1, StrideW=1,
         DepthMultiplier=2, FusedActivationFunction="RELU6")
    m = b.tensor("m", (1, 8, 8, 6), f)
    b.op("MUL", [d, b.tensor("c", (1, 1, 1, 6), f, data=rng.normal(0, 1, (1, 1, 1, 6)))], [m], "MulOptions")
    lg = b.tensor("lg", (1, 8, 8, 6), f)
    b.op("LOGISTIC", [m], [lg])
    p = b.tensor("p", (1, 10, 10, 6), f)
    b.op("PAD", [lg, b.const("pads", np.array([[0, 0], [1, 1], [0, 2], [0, 0]], np.int32))], [p], "PadOptions")
    mp = b.tensor("mp", (1, 5, 5, 6), f)
    b.op("MAX_POOL_2D", [p], [mp], "Pool2DOptions", Padding="VALID", StrideH=2, StrideW=2, FilterHeight=2,
         FilterWidth=2)
    t = b.tensor("t", (1, 6, 5, 5), f)
    b.op("TRANSPOSE", [mp, b.const("perm", np.array([0, 3, 1, 2], np.int32))], [t], "TransposeOptions")
    mn = b.tensor("mn", (1, 6), f)
    b.op("MEAN", [t, b.const("axes", np.array([2, 3], np.int32))], [mn], "ReducerOptions", KeepDims=False)
    mx = b.tensor("mx", (1, 3), f)
    b.op("MEAN", [x, b.const("axes2", np.array([1, 2], np.int32))], [mx], "ReducerOptions", KeepDims=False)
    cc = b.tensor("cc", (1, 9), f)
    b.op("CONCATENATION", [mn, mx], [cc], "ConcatenationOptions", Axis=1)
    s = b.tensor("s", (1, 9), f)
    b.op("SOFTMAX", [cc], [s], "SoftmaxOptions", Beta=0.7)
    path = finish(b, tmp_path, [x], [s, m])
    graph = load_tflite(path)
    oracle = RefInterpreter(path)
    for _ in range(5):
        xin = rng.normal(0, 2, (1, 8, 8, 3)).astype(np.float32)
        want = oracle(xin)
        got = R.run(graph, {"x": xin})
        for name, w in zip(graph.outputs, want):
            assert got[name].dtype == np.float32
            np.testing.assert_allclose(got[name], w, rtol=1e-5, atol=1e-6)
