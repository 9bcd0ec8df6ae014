"""TFLite's 16x8 scheme (int16 activations with zero point 0, int8 weights, int64 bias) for DEPTHWISE_CONV_2D,
FULLY_CONNECTED, MEAN, SOFTMAX, LOGISTIC, MUL, AVERAGE_POOL_2D, MAX_POOL_2D, CONCATENATION, TRANSPOSE and RESHAPE
on single-op models built with tests/tflite_builder.py: mcutool's reference equals TFLite Micro's own interpreter
(the tflite-micro pip package) bit for bit, and the runtime/ kernels (host build, ASan/UBSan) equal the
reference; a 16x8 layer too large for internal flash runs from ext_flash in QEMU."""
from __future__ import annotations

import numpy as np
import pytest

from host_build import build_host_program, run_host_program
from mcutool import reference as R
from mcutool.compiler import Options, compile_model
from mcutool.errors import UserError
from mcutool.frontends.tflite import load_tflite
from tflite_builder import MicroInterpreter, ModelBuilder

X_SCALE = 0.0005


def depthwise16_model(rng, *, in_hw=(7, 6), cin=3, mult=1, k=(3, 3), stride=(1, 1), dilation=(1, 1),
                      padding="SAME", bias=True, act="NONE") -> bytes:
    cout = cin * mult
    wscale = rng.uniform(0.005, 0.02, cout).astype(np.float32)
    span = [(kk - 1) * d + 1 for kk, d in zip(k, dilation)]
    out_hw = tuple((i + s - 1) // s if padding == "SAME" else (i - e) // s + 1
                   for i, s, e in zip(in_hw, stride, span))
    out_scale = X_SCALE * 16384 * 127 * float(wscale.mean()) * np.sqrt(k[0] * k[1]) / 2 / 15000
    b = ModelBuilder()
    x = b.tensor("x", (1, *in_hw, cin), "int16", scale=X_SCALE, zero_point=0)
    w = b.tensor("w", (1, *k, cout), "int8", scale=wscale, zero_point=0, axis=3,
                 data=rng.integers(-127, 128, size=(1, *k, cout)))
    bias_t = b.tensor("bias", (cout,), "int64", scale=X_SCALE * wscale, zero_point=0,
                      data=rng.integers(-200000, 200000, size=cout)) if bias else -1
    y = b.tensor("y", (1, *out_hw, cout), "int16", scale=out_scale, zero_point=0)
    b.op("DEPTHWISE_CONV_2D", [x, w, bias_t], [y], "DepthwiseConv2DOptions", version=5, Padding=padding,
         StrideH=stride[0], StrideW=stride[1], DepthMultiplier=mult, DilationHFactor=dilation[0],
         DilationWFactor=dilation[1], FusedActivationFunction=act)
    b.inputs, b.outputs = [x], [y]
    return b.build()


def fc16_model(rng, *, batches=2, in_c=24, out_c=7, bias=True, act="NONE") -> bytes:
    wscale = np.float32(0.01)
    out_scale = X_SCALE * 16384 * 127 * float(wscale) * np.sqrt(in_c) / 2 / 15000
    b = ModelBuilder()
    x = b.tensor("x", (batches, in_c), "int16", scale=X_SCALE, zero_point=0)
    w = b.tensor("w", (out_c, in_c), "int8", scale=wscale, zero_point=0,
                 data=rng.integers(-127, 128, size=(out_c, in_c)))
    bias_t = b.tensor("bias", (out_c,), "int64", scale=X_SCALE * wscale, zero_point=0,
                      data=rng.integers(-500000, 500000, size=out_c)) if bias else -1
    y = b.tensor("y", (batches, out_c), "int16", scale=out_scale, zero_point=0)
    b.op("FULLY_CONNECTED", [x, w, bias_t], [y], "FullyConnectedOptions", version=7, FusedActivationFunction=act)
    b.inputs, b.outputs = [x], [y]
    return b.build()


def mean16_model(*, shape=(1, 5, 6, 4), axes=(1, 2), keep_dims=False, out_scale=X_SCALE * 0.37) -> bytes:
    out_shape = tuple(1 if i in axes else d for i, d in enumerate(shape)) if keep_dims else \
        tuple(d for i, d in enumerate(shape) if i not in axes)
    b = ModelBuilder()
    x = b.tensor("x", shape, "int16", scale=X_SCALE, zero_point=0)
    y = b.tensor("y", out_shape, "int16", scale=out_scale, zero_point=0)
    b.op("MEAN", [x, b.const("axes", np.array(axes, np.int32))], [y], "ReducerOptions", KeepDims=keep_dims)
    b.inputs, b.outputs = [x], [y]
    return b.build()


def softmax16_model(*, shape=(3, 10), in_scale=0.0004, beta=1.0) -> bytes:
    b = ModelBuilder()
    x = b.tensor("x", shape, "int16", scale=in_scale, zero_point=0)
    y = b.tensor("y", shape, "int16", scale=1.0 / 32768, zero_point=0)
    b.op("SOFTMAX", [x], [y], "SoftmaxOptions", version=3, Beta=beta)
    b.inputs, b.outputs = [x], [y]
    return b.build()


def unary16_model(opname: str, options: str | None, *, shape=(2, 9, 11), in_scale=X_SCALE,
                  out_scale=1.0 / 32768, **fields) -> bytes:
    b = ModelBuilder()
    x = b.tensor("x", shape, "int16", scale=in_scale, zero_point=0)
    y = b.tensor("y", shape, "int16", scale=out_scale, zero_point=0)
    b.op(opname, [x], [y], options, **fields)
    b.inputs, b.outputs = [x], [y]
    return b.build()


def mul16_model(*, shape1=(1, 4, 5, 6), shape2=(1, 4, 5, 6), scales=(0.0007, 0.0003), out_scale=0.004,
                act="NONE") -> bytes:
    """x * x2 (two graph inputs) -> y."""
    out_shape = tuple(np.broadcast_shapes(shape1, shape2))
    b = ModelBuilder()
    x = b.tensor("x", shape1, "int16", scale=scales[0], zero_point=0)
    x2 = b.tensor("x2", shape2, "int16", scale=scales[1], zero_point=0)
    y = b.tensor("y", out_shape, "int16", scale=out_scale, zero_point=0)
    b.op("MUL", [x, x2], [y], "MulOptions", FusedActivationFunction=act)
    b.inputs, b.outputs = [x, x2], [y]
    return b.build()


def pool16_model(opname: str, *, shape=(1, 7, 9, 3), filter=(3, 3), stride=(2, 2), padding="SAME",
                 act="NONE") -> bytes:
    out_hw = tuple((i + s - 1) // s if padding == "SAME" else (i - f) // s + 1
                   for i, s, f in zip(shape[1:3], stride, filter))
    b = ModelBuilder()
    x = b.tensor("x", shape, "int16", scale=X_SCALE, zero_point=0)
    y = b.tensor("y", (shape[0], *out_hw, shape[3]), "int16", scale=X_SCALE, zero_point=0)
    b.op(opname, [x], [y], "Pool2DOptions", Padding=padding, StrideH=stride[0], StrideW=stride[1],
         FilterHeight=filter[0], FilterWidth=filter[1], FusedActivationFunction=act)
    b.inputs, b.outputs = [x], [y]
    return b.build()


def transpose16_model(*, shape=(2, 3, 4, 5), perm=(0, 2, 3, 1), reshape_to=None) -> bytes:
    """x -> TRANSPOSE(perm) [-> RESHAPE(reshape_to)] -> y."""
    b = ModelBuilder()
    x = b.tensor("x", shape, "int16", scale=X_SCALE, zero_point=0)
    t_shape = tuple(shape[p] for p in perm)
    t = b.tensor("t" if reshape_to else "y", t_shape, "int16", scale=X_SCALE, zero_point=0)
    b.op("TRANSPOSE", [x, b.const("perm", np.array(perm, np.int32))], [t])
    y = t
    if reshape_to:
        y = b.tensor("y", reshape_to, "int16", scale=X_SCALE, zero_point=0)
        b.op("RESHAPE", [t, b.const("shape", np.array(reshape_to, np.int32))], [y], "ReshapeOptions",
             NewShape=list(reshape_to))
    b.inputs, b.outputs = [x], [y]
    return b.build()


def concat16_model(*, shapes=((1, 3, 4, 2), (1, 3, 4, 5)), axis=3) -> bytes:
    """x ++ x2 along axis -> y (both quantized as the output)."""
    out_shape = list(shapes[0])
    out_shape[axis] = sum(sh[axis] for sh in shapes)
    b = ModelBuilder()
    x = b.tensor("x", shapes[0], "int16", scale=X_SCALE, zero_point=0)
    x2 = b.tensor("x2", shapes[1], "int16", scale=X_SCALE, zero_point=0)
    y = b.tensor("y", tuple(out_shape), "int16", scale=X_SCALE, zero_point=0)
    b.op("CONCATENATION", [x, x2], [y], "ConcatenationOptions", Axis=axis)
    b.inputs, b.outputs = [x, x2], [y]
    return b.build()


def _inputs(shape, n, seed, spread=16384):
    """int16 inputs around +-spread (some at the extremes), so outputs neither vanish nor saturate."""
    rng = np.random.default_rng(seed)
    xs = [np.clip(rng.normal(0, spread, size=shape), -32768, 32767).astype(np.int16) for _ in range(n - 1)]
    return xs + [rng.integers(-32768, 32768, size=shape).astype(np.int16)]


CASES = {
    "depthwise_same": lambda rng: depthwise16_model(rng),
    "depthwise_mult2_relu": lambda rng: depthwise16_model(rng, mult=2, act="RELU"),
    "depthwise_stride2_valid": lambda rng: depthwise16_model(rng, stride=(2, 2), padding="VALID", in_hw=(9, 8)),
    # (no bias-less case: the tflite-micro interpreter crashes on a 16x8 depthwise conv without bias)
    "depthwise_dilation": lambda rng: depthwise16_model(rng, dilation=(2, 1)),
    "depthwise_stride1_inplace_shape": lambda rng: depthwise16_model(rng, cin=8),
    "fc": lambda rng: fc16_model(rng),
    "fc_relu_no_bias": lambda rng: fc16_model(rng, bias=False, act="RELU", batches=1),
    "mean_hw": lambda rng: mean16_model(),
    "mean_hw_keep_dims": lambda rng: mean16_model(keep_dims=True),
    "mean_same_quant": lambda rng: mean16_model(axes=(2,), out_scale=X_SCALE),
    "mean_hw_keep_dims_same_quant": lambda rng: mean16_model(keep_dims=True, out_scale=X_SCALE),
    "mean_c_keep_dims": lambda rng: mean16_model(axes=(3,), keep_dims=True),
    "mean_batch_hw": lambda rng: mean16_model(shape=(2, 3, 4, 5), axes=(0, 1, 2), out_scale=X_SCALE * 0.5),
    "softmax": lambda rng: softmax16_model(),
    "softmax_beta_wide": lambda rng: softmax16_model(shape=(2, 3, 40), in_scale=0.002, beta=0.6),
    "softmax_narrow_scale": lambda rng: softmax16_model(shape=(4, 5), in_scale=0.00003),
    # LOGISTIC: the power-of-two input scale 2^-12 (multiplier 0) and two general ones
    "logistic_pot": lambda rng: unary16_model("LOGISTIC", None, in_scale=2.0 ** -12),
    "logistic_scale": lambda rng: unary16_model("LOGISTIC", None, in_scale=0.00037),
    "logistic_small_scale": lambda rng: unary16_model("LOGISTIC", None, in_scale=0.0000213),
    "mul": lambda rng: mul16_model(),
    "mul_broadcast_relu": lambda rng: mul16_model(shape2=(1, 1, 5, 1), act="RELU"),
    "mul_broadcast_channels": lambda rng: mul16_model(shape1=(2, 3, 1, 6), shape2=(1, 1, 4, 6), out_scale=0.002),
    "avg_pool_same": lambda rng: pool16_model("AVERAGE_POOL_2D"),
    "avg_pool_valid_relu6_2x4": lambda rng: pool16_model("AVERAGE_POOL_2D", padding="VALID", filter=(2, 4),
                                                         stride=(1, 2), act="RELU6"),
    "avg_pool_global": lambda rng: pool16_model("AVERAGE_POOL_2D", shape=(2, 5, 6, 4), filter=(5, 6), padding="VALID"),
    "max_pool_same": lambda rng: pool16_model("MAX_POOL_2D"),
    "max_pool_valid_relu": lambda rng: pool16_model("MAX_POOL_2D", padding="VALID", filter=(2, 2), act="RELU"),
    "transpose": lambda rng: transpose16_model(),
    "transpose_3d_reshape": lambda rng: transpose16_model(shape=(3, 4, 5), perm=(2, 0, 1), reshape_to=(5, 12)),
    "concat_channels": lambda rng: concat16_model(),
    "concat_height": lambda rng: concat16_model(shapes=((1, 2, 4, 3), (1, 5, 4, 3)), axis=1),
}


def _samples(graph, n, seed):
    """n input sets: one list of int16 arrays (_inputs) per sample, an array per graph input."""
    per_input = [_inputs(graph.tensor(name).shape, n, seed + k) for k, name in enumerate(graph.inputs)]
    return [list(xs) for xs in zip(*per_input)]


def _model(tmp_path, case):
    path = tmp_path / f"{case}.tflite"
    path.write_bytes(CASES[case](np.random.default_rng(len(case))))
    return path


@pytest.mark.parametrize("case", CASES)
def test_reference_matches_tflite_micro(case, tmp_path):
    path = _model(tmp_path, case)
    graph = load_tflite(path)
    oracle = MicroInterpreter(path)
    outputs = []
    for xs in _samples(graph, 4, seed=5):
        want = oracle(*xs)[0]
        got = R.run(graph, dict(zip(graph.inputs, xs)))["y"]
        assert want.dtype == np.int16 and got.shape == want.shape
        assert np.array_equal(got, want), f"{int((got != want).sum())} of {got.size} values differ"
        outputs.append(want)
    values = np.stack(outputs)
    assert np.unique(values).size >= min(16, values.size // 4), "the outputs are nearly constant"
    assert np.mean(np.abs(values.astype(np.int32)) == 32767) < 0.2, "most outputs saturate"


@pytest.mark.parametrize("case", CASES)
def test_host_build_matches_reference(case, tmp_path):
    path = _model(tmp_path, case)
    graph = load_tflite(path)
    lib = tmp_path / "lib"
    compile_model(path, "stm32f746", lib, Options(emit="library"))
    assert "int16_t *mcu_model_input(uint8_t *arena, int index);" in (lib / "model.h").read_text()
    exe = build_host_program(lib, tmp_path / "host")
    y_t = graph.tensor("y")
    for xs in _samples(graph, 3, seed=9):
        want = R.run(graph, dict(zip(graph.inputs, xs)))["y"]
        got = run_host_program(exe, xs, y_t.shape, np.int16)
        assert np.array_equal(got, want), f"{int((got != want).sum())} of {got.size} values differ"


def test_depthwise_16x8_with_an_int32_bias_is_refused(tmp_path):
    """TFLite Micro reads a 16x8 depthwise conv's bias as int64 whatever it is; an int32 one is refused."""
    rng = np.random.default_rng(1)
    b = ModelBuilder()
    x = b.tensor("x", (1, 4, 4, 2), "int16", scale=X_SCALE, zero_point=0)
    w = b.tensor("w", (1, 3, 3, 2), "int8", scale=[0.01, 0.01], zero_point=0, axis=3,
                 data=rng.integers(-127, 128, size=(1, 3, 3, 2)))
    bias = b.tensor("bias", (2,), "int32", scale=[X_SCALE * 0.01] * 2, zero_point=0, data=[5, 6])
    y = b.tensor("y", (1, 4, 4, 2), "int16", scale=0.001, zero_point=0)
    b.op("DEPTHWISE_CONV_2D", [x, w, bias], [y], "DepthwiseConv2DOptions", Padding="SAME", StrideH=1, StrideW=1,
         DepthMultiplier=1)
    b.inputs, b.outputs = [x], [y]
    path = tmp_path / "dw32.tflite"
    path.write_bytes(b.build())
    graph = load_tflite(path)
    with pytest.raises(UserError, match="int32 bias"):
        R.run(graph, {"x": np.zeros((1, 4, 4, 2), np.int16)})


@pytest.mark.qemu
def test_16x8_weights_beyond_internal_flash_go_to_ext_flash_in_qemu(tmp_path):
    """A 16x8 fully connected layer with 1.1 MB of weights (more than stm32f746's 1 MB internal flash): its
    runtime/ kernel's weight array is placed in ext_flash like a TVM kernel's, and the firmware equals the
    reference, which equals the tflite-micro interpreter."""
    from conftest import require_board_tools
    from mcutool.compiler import run_build

    require_board_tools("stm32f746")
    rng = np.random.default_rng(16)
    in_c, out_c = 1024, 1100
    b = ModelBuilder()
    x = b.tensor("x", (1, in_c), "int16", scale=X_SCALE, zero_point=0)
    w = b.tensor("w", (out_c, in_c), "int8", scale=0.01, zero_point=0, data=rng.integers(-127, 128, (out_c, in_c)))
    bias = b.tensor("bias", (out_c,), "int64", scale=X_SCALE * 0.01, zero_point=0,
                    data=rng.integers(-10 ** 6, 10 ** 6, out_c))
    out_scale = X_SCALE * 0.01 * 16384 * 127 * np.sqrt(in_c) / 2 / 15000
    y = b.tensor("y", (1, out_c), "int16", scale=out_scale, zero_point=0)
    b.op("FULLY_CONNECTED", [x, w, bias], [y], "FullyConnectedOptions", version=7)
    b.inputs, b.outputs = [x], [y]
    path = b.write(tmp_path / "fc16_big.tflite")
    graph = load_tflite(path)
    out = tmp_path / "proj"
    report = compile_model(path, "stm32f746", out, Options())
    assert report["flash"]["ext_flash_weights_bytes"] >= in_c * out_c
    assert '__attribute__((section(".ext_flash")))' in (out / "model.c").read_text()
    oracle = MicroInterpreter(path)
    for (xv,) in _samples(graph, 2, seed=3):
        want = oracle(xv)[0]
        assert np.array_equal(R.run(graph, {"x": xv})["y"], want)
        (got,), _ = run_build(out, [xv])
        assert np.array_equal(got, want), f"{int((got != want).sum())} of {got.size} values differ"
