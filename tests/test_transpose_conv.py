"""TRANSPOSE_CONV (int8 and 16x8) and CONV_2D in the 16x8 scheme on small models built here with
tests/tflite_builder.py: mcutool's reference against TFLite Micro's own interpreter (the tflite-micro pip
package), bit for bit, over the options the SEANet models do not exercise (SAME padding, strides, a fused
activation, no bias, int16 / int32 biases, a non-zero int8 input zero point, the output shape given as a
graph input)."""
from __future__ import annotations

import numpy as np
import pytest

from mcutool import reference as R
from mcutool.frontends.tflite import load_tflite

from conftest import SHARED_MODELS
from tflite_builder import ModelBuilder


def micro_run(data: bytes, inputs: list[np.ndarray]) -> np.ndarray:
    from tflite_micro.python.tflite_micro import runtime

    micro = runtime.Interpreter.from_bytes(data, arena_size=1 << 20)
    for i, x in enumerate(inputs):
        micro.set_input(x, i)
    micro.invoke()
    return micro.get_output(0)


def transpose_conv_model(rng, *, dtype="int8", in_hw=(5, 6), cin=3, cout=4, k=(3, 3), stride=(2, 2),
                         padding="SAME", bias="int32", act="NONE", x_zp=3, shape_input=False) -> bytes:
    """x (1, *in_hw, cin) -> TRANSPOSE_CONV -> y; the output scale puts typical outputs near +-60 LSB (int8) or
    +-15000 (int16), so few saturate."""
    out_hw = tuple(i * s if padding == "SAME" else (i - 1) * s + kk for i, s, kk in zip(in_hw, stride, k))
    wscale = rng.uniform(0.005, 0.02, cout).astype(np.float32)
    wq = rng.integers(-127, 128, size=(cout, *k, cin))
    x_scale = 0.02 if dtype == "int8" else 0.0005
    typical = x_scale * (128 if dtype == "int8" else 16384) * 127 * float(wscale.mean()) * np.sqrt(cin * k[0] * k[1] / (stride[0] * stride[1])) / 2
    out_scale = typical / (60 if dtype == "int8" else 15000)
    b = ModelBuilder()
    shape = (b.tensor("shape", (4,), "int32") if shape_input
             else b.const("shape", np.array([1, *out_hw, cout], np.int32)))
    w = b.tensor("w", (cout, *k, cin), "int8", scale=wscale, zero_point=0, axis=0, data=wq)
    x = b.tensor("x", (1, *in_hw, cin), dtype, scale=x_scale, zero_point=x_zp if dtype == "int8" else 0)
    ins = [shape, w, x]
    if bias:
        limit = {"int32": 2000, "int16": 20000, "int64": 200000}[bias]
        ins.append(b.tensor("bias", (cout,), bias, scale=x_scale * wscale, zero_point=0,
                            data=rng.integers(-limit, limit, size=cout)))
    y = b.tensor("y", (1, *out_hw, cout), dtype, scale=out_scale, zero_point=-5 if dtype == "int8" else 0)
    b.op("TRANSPOSE_CONV", ins, [y], "TransposeConvOptions", version=3 if dtype == "int16" else 2,
         Padding=padding, StrideH=stride[0], StrideW=stride[1], FusedActivationFunction=act)
    b.inputs, b.outputs = ([shape, x] if shape_input else [x]), [y]
    return b.build()


def conv16_model(rng, *, in_hw=(6, 7), cin=3, cout=4, k=(3, 3), stride=(1, 1), dilation=(1, 1), padding="SAME",
                 bias="int64", act="NONE") -> bytes:
    """x int16 (1, *in_hw, cin) -> CONV_2D (int8 weights) -> y int16."""
    wscale = rng.uniform(0.005, 0.02, cout).astype(np.float32)
    wq = rng.integers(-127, 128, size=(cout, *k, cin))
    x_scale = 0.0005
    span = [(kk - 1) * d + 1 for kk, d in zip(k, dilation)]
    out_hw = tuple((i + s - 1) // s if padding == "SAME" else (i - e) // s + 1
                   for i, s, e in zip(in_hw, stride, span))
    out_scale = x_scale * 16384 * 127 * float(wscale.mean()) * np.sqrt(cin * k[0] * k[1]) / 2 / 15000
    b = ModelBuilder()
    x = b.tensor("x", (1, *in_hw, cin), "int16", scale=x_scale, zero_point=0)
    w = b.tensor("w", (cout, *k, cin), "int8", scale=wscale, zero_point=0, axis=0, data=wq)
    bias_t = -1
    if bias:
        bias_t = b.tensor("bias", (cout,), bias, scale=x_scale * wscale, zero_point=0,
                          data=rng.integers(-200000, 200000, size=cout))
    y = b.tensor("y", (1, *out_hw, cout), "int16", scale=out_scale, zero_point=0)
    b.op("CONV_2D", [x, w, bias_t], [y], "Conv2DOptions", version=4, Padding=padding, StrideH=stride[0],
         StrideW=stride[1], DilationHFactor=dilation[0], DilationWFactor=dilation[1], FusedActivationFunction=act)
    b.inputs, b.outputs = [x], [y]
    return b.build()


TRANSPOSE_CASES = {
    "int8_same_s2": dict(),
    "int8_valid_s2": dict(padding="VALID"),
    "int8_valid_1x2_k3x4": dict(stride=(1, 2), k=(3, 4), padding="VALID"),
    "int8_relu": dict(act="RELU"),
    "int8_no_bias": dict(bias=None),
    "int8_k4_s2": dict(k=(4, 4), in_hw=(4, 4)),
    "int8_s3x1_k2x5": dict(stride=(3, 1), k=(2, 5)),
    "int8_shape_input": dict(shape_input=True),
    "16x8_int64_bias": dict(dtype="int16", bias="int64"),
    "16x8_int16_bias": dict(dtype="int16", bias="int16"),
    "16x8_no_bias": dict(dtype="int16", bias=None),
    "16x8_valid_1x3": dict(dtype="int16", bias="int64", padding="VALID", stride=(1, 3)),
    "16x8_relu": dict(dtype="int16", bias="int64", act="RELU"),
}

CONV16_CASES = {
    "int64_bias": dict(),
    "int32_bias": dict(bias="int32"),
    "no_bias": dict(bias=None),
    "relu": dict(act="RELU"),
    "stride2": dict(stride=(2, 2)),
    "dilation2_valid": dict(dilation=(2, 1), padding="VALID"),
    "1x1": dict(k=(1, 1)),
}


def _check_against_micro(tmp_path, data: bytes, feed_shape: bool = False, samples: int = 3) -> None:
    """The reference equals the interpreter on `samples` random inputs; `feed_shape`: the interpreter's first
    input is the output shape (mcutool's graph drops it)."""
    path = tmp_path / "m.tflite"
    path.write_bytes(data)
    graph = load_tflite(path)
    assert graph.inputs == ["x"], "the output-shape operand is not a graph input of mcutool's graph"
    x_t = graph.tensor("x")
    info = np.iinfo(x_t.dtype)
    rng = np.random.default_rng(3)
    outputs = []
    for _ in range(samples):
        x = rng.integers(info.min, info.max + 1, size=x_t.shape).astype(x_t.dtype)
        feed = [np.array(graph.tensor("y").shape, np.int32), x] if feed_shape else [x]
        expected = micro_run(data, feed)
        got = R.run(graph, {"x": x})["y"]
        assert got.dtype == expected.dtype and got.shape == expected.shape
        assert np.array_equal(got, expected), f"{int((got != expected).sum())} of {got.size} values differ"
        outputs.append(expected)
    values = np.stack(outputs)
    lo, hi = np.iinfo(values.dtype).min, np.iinfo(values.dtype).max
    assert np.unique(values).size >= min(64, values.size // 4), "the outputs are nearly constant"
    assert np.mean((values == lo) | (values == hi)) < 0.2, "most outputs saturate"


@pytest.mark.parametrize("case", TRANSPOSE_CASES)
def test_transpose_conv_reference_matches_tflite_micro(case, tmp_path):
    spec = TRANSPOSE_CASES[case]
    data = transpose_conv_model(np.random.default_rng(len(case)), **spec)
    _check_against_micro(tmp_path, data, feed_shape=spec.get("shape_input", False))


@pytest.mark.parametrize("case", CONV16_CASES)
def test_conv2d_16x8_reference_matches_tflite_micro(case, tmp_path):
    _check_against_micro(tmp_path, conv16_model(np.random.default_rng(len(case)), **CONV16_CASES[case]))


def test_transpose_conv_shape_operand_must_match_output(tmp_path):
    """A constant output-shape operand that contradicts the output tensor is a user error, not a guess."""
    from mcutool.errors import UserError
    b = ModelBuilder()
    shape = b.const("shape", np.array([1, 9, 9, 2], np.int32))
    w = b.tensor("w", (2, 3, 3, 1), "int8", scale=[0.01, 0.01], zero_point=0, axis=0, data=np.ones((2, 3, 3, 1)))
    x = b.tensor("x", (1, 4, 4, 1), "int8", scale=0.1, zero_point=0)
    y = b.tensor("y", (1, 8, 8, 2), "int8", scale=0.1, zero_point=0)
    b.op("TRANSPOSE_CONV", [shape, w, x], [y], "TransposeConvOptions", Padding="SAME", StrideH=2, StrideW=2)
    b.inputs, b.outputs = [x], [y]
    path = tmp_path / "bad.tflite"
    path.write_bytes(b.build())
    with pytest.raises(UserError, match="output shape operand"):
        load_tflite(path)


FIRMWARE_CASES = ["int8_same_s2", "int8_relu", "int8_no_bias", "16x8_int16_bias", "16x8_no_bias"]


def _compiled(tmp_path, case: str, emit: str):
    from mcutool.compiler import Options, compile_model

    spec = TRANSPOSE_CASES[case]
    path = tmp_path / f"{case}.tflite"
    path.write_bytes(transpose_conv_model(np.random.default_rng(len(case)), **spec))
    out = tmp_path / emit
    compile_model(path, "stm32f746", out, Options(emit=emit))
    return load_tflite(path), out


def _samples(graph, n=3):
    x_t = graph.tensor("x")
    info = np.iinfo(x_t.dtype)
    rng = np.random.default_rng(11)
    return [rng.integers(info.min, info.max + 1, size=x_t.shape).astype(x_t.dtype) for _ in range(n)]


@pytest.mark.parametrize("case", FIRMWARE_CASES)
def test_transpose_conv_host_build_matches_reference(case, tmp_path):
    """The runtime/ kernels (gather form, no scratch) under ASan/UBSan equal the reference (scatter form)."""
    from host_build import build_host_program, run_host_program

    graph, lib = _compiled(tmp_path, case, "library")
    exe = build_host_program(lib, tmp_path / "host")
    y_t = graph.tensor("y")
    for x in _samples(graph):
        want = R.run(graph, {"x": x})["y"]
        got = run_host_program(exe, [x], y_t.shape, np.dtype(y_t.dtype))
        assert np.array_equal(got, want), f"{int((got != want).sum())} of {got.size} values differ"


@pytest.mark.qemu
def test_int8_transpose_conv_in_qemu_matches_reference(tmp_path):
    from conftest import require_board_tools
    from mcutool.compiler import run_build

    require_board_tools("stm32f746")
    graph, out = _compiled(tmp_path, "int8_same_s2", "firmware")
    for x in _samples(graph):
        (y,), _ = run_build(out, [x])
        want = R.run(graph, {"x": x})["y"]
        assert y.dtype == np.int8 and np.array_equal(y, want), f"{int((y != want).sum())} values differ"


def test_transpose_conv_macs_count_the_taps_inside_the_output():
    """transpose_conv2: input 1x1x20x32, kernel 3x4, stride (1, 2), output 1x3x42x32. Rows: the one input row meets
    all 3 kernel rows inside the 3 output rows; columns: 20 inputs x 4 taps, the last landing on column
    19 * 2 + 3 = 41 < 42, so 80. MACs = 3 * 80 * 32 out * 32 in = 245,760 (hand-derived)."""
    from mcutool.ir import op_macs

    graph = load_tflite(SHARED_MODELS / "tflm_seanet" / "transpose_conv" / "transpose_conv2.tflite")
    (op,) = graph.ops
    assert op_macs(graph, op) == 245_760


def test_float_transpose_conv_quantizes_and_its_firmware_equals_the_reference(tmp_path):
    """Post-training quantization takes TRANSPOSE_CONV like CONV_2D (weights int8 per output channel, axis 0; bias
    int32 at s_in * s_w): the int8 graph stays within a few output steps of float, and the --emit library build
    of the float model (calibrated on the same samples) equals the reference on the int8 graph."""
    from host_build import build_host_program, run_host_program
    from mcutool.compiler import Options, compile_model
    from mcutool.quantize.ptq import calibrate, integer_io, quantize_graph, quantize_model

    rng = np.random.default_rng(21)
    b = ModelBuilder()
    shape = b.const("shape", np.array([1, 10, 12, 3], np.int32))
    w = b.tensor("w", (3, 3, 4, 2), "float32", data=rng.normal(0, 0.5, size=(3, 3, 4, 2)))
    x = b.tensor("x", (1, 5, 6, 2), "float32")
    bias = b.tensor("bias", (3,), "float32", data=np.array([0.3, -0.2, 0.1]))
    y = b.tensor("y", (1, 10, 12, 3), "float32")
    b.op("TRANSPOSE_CONV", [shape, w, x, bias], [y], "TransposeConvOptions", Padding="SAME", StrideH=2, StrideW=2)
    b.inputs, b.outputs = [x], [y]
    path = tmp_path / "float_tconv.tflite"
    path.write_bytes(b.build())
    graph = load_tflite(path)
    calib = rng.normal(0, 1, size=(32, 5, 6, 2)).astype(np.float32)
    qg = quantize_graph(graph, calibrate(graph, {"x": calib}))
    (w_q,) = [qg.tensor(n) for op in qg.ops if op.kind == "transpose_conv2d" for n in op.inputs[1:2]]
    assert w_q.dtype == "int8" and w_q.quant.scale.size == 3 and w_q.quant.axis == 0
    test = rng.normal(0, 1, size=(4, 5, 6, 2)).astype(np.float32)
    for sample in test:
        want = R.run(graph, {"x": sample[None]})["y"]
        got = R.run(qg, {"x": sample[None]})["y"]
        assert np.abs(got - want).max() < 0.03 * np.abs(want).max()
    np.savez(tmp_path / "calib.npz", x=calib)
    lib = tmp_path / "lib"
    compile_model(path, "stm32f746", lib, Options(emit="library", calib=str(tmp_path / "calib.npz")))
    assert "mcu_transpose_conv2d_s8(" in (lib / "model.c").read_text()
    fw = integer_io(quantize_model(graph, {"x": calib})[0])  # what compile quantizes: the default calibration
    x_t, y_t = fw.tensor(fw.inputs[0]), fw.tensor(fw.outputs[0])
    exe = build_host_program(lib, tmp_path / "host")
    for _ in range(3):
        xq = rng.integers(-128, 128, size=x_t.shape).astype(np.int8)
        want = R.run(fw, {x_t.name: xq})[y_t.name]
        assert np.array_equal(run_host_program(exe, [xq], y_t.shape, np.int8), want)
