"""int4 weights (issue 15): TFLite's INT4 tensors in the IR, importer, writer and reference, and the per-layer
width choice. Oracles: the tflite-micro interpreter (TFLite Micro unpacks INT4 weights in Prepare and runs its
int8 kernels) and tflite-runtime 2.14's reference kernels; the knapsack against brute force."""
import subprocess
import sys

import numpy as np
import pytest

from conftest import shared_model
from structured_images import structured_images
from tflite_builder import MicroInterpreter, ModelBuilder, RefInterpreter
from mcutool import reference
from mcutool.frontends import load_model
from mcutool.ir import pack_int4, unpack_int4
from mcutool.quantize import mixed
from mcutool.quantize.ptq import calibrate, quantize_graph, weight_quant


def test_int4_packing_is_two_values_a_byte_low_nibble_first():
    # 1 -> 0x1, -1 -> 0xF, 7 -> 0x7, -8 -> 0x8, 3 -> 0x3: bytes 0xF1, 0x87, 0x03 (the odd count pads a 0 nibble)
    assert pack_int4(np.array([1, -1, 7, -8, 3])).tolist() == [0xF1, 0x87, 0x03]
    assert unpack_int4(np.array([0xF1, 0x87, 0x03], np.uint8), 5).tolist() == [1, -1, 7, -8, 3]
    with pytest.raises(ValueError):
        pack_int4(np.array([8]))


def test_int4_weight_quant_is_symmetric_within_minus7_to_7():
    w = np.random.default_rng(0).normal(size=(6, 3, 3, 4)).astype(np.float32)
    q, quant = weight_quant(w, 0, bits=4)
    assert q.dtype == np.int8 and q.min() >= -7 and q.max() <= 7
    assert quant.scale.size == 6 and not quant.zero_point.any()
    # the chosen clip is never worse (squared error per channel) than max |w| / 7
    plain = np.abs(w).reshape(6, -1).max(axis=1) / 7
    for c in range(6):
        err = np.sum((q[c] * quant.scale[c] - w[c]) ** 2)
        err_plain = np.sum((np.clip(np.round(w[c] / plain[c]), -7, 7) * plain[c] - w[c]) ** 2)
        assert err <= err_plain * (1 + 1e-6)


def _single_op_model(kind: str, rng) -> bytes:
    """One int4-weight CONV_2D / DEPTHWISE_CONV_2D (per channel) or FULLY_CONNECTED (per tensor), written by
    mcutool's ModelBuilder; odd weight counts so a row of weights starts mid-byte."""
    b = ModelBuilder()
    if kind == "fc":
        x = b.tensor("x", (2, 13), "int8", scale=0.05, zero_point=-3)
        w = b.tensor("w", (7, 13), "int4", scale=0.1, zero_point=0, data=rng.integers(-8, 8, (7, 13)))
        bias = b.const("b", rng.integers(-300, 300, 7), "int32", scale=0.005, zero_point=0)
        y = b.tensor("y", (2, 7), "int8", scale=0.3, zero_point=1)
        b.op("FULLY_CONNECTED", [x, w, bias], [y], "FullyConnectedOptions", FusedActivationFunction="RELU")
    elif kind == "conv":
        x = b.tensor("x", (1, 7, 6, 3), "int8", scale=0.05, zero_point=-3)
        s = [0.1, 0.2, 0.05, 0.3, 0.07]
        w = b.tensor("w", (5, 3, 3, 3), "int4", scale=s, zero_point=[0] * 5, axis=0,
                     data=rng.integers(-8, 8, (5, 3, 3, 3)))
        bias = b.const("b", rng.integers(-300, 300, 5), "int32", scale=[0.05 * v for v in s], zero_point=[0] * 5)
        y = b.tensor("y", (1, 4, 3, 5), "int8", scale=0.4, zero_point=1)
        b.op("CONV_2D", [x, w, bias], [y], "Conv2DOptions", Padding="SAME", StrideH=2, StrideW=2)
    else:
        x = b.tensor("x", (1, 7, 6, 3), "int8", scale=0.05, zero_point=-3)
        s = [0.1, 0.2, 0.05, 0.3, 0.07, 0.09]
        w = b.tensor("w", (1, 3, 3, 6), "int4", scale=s, zero_point=[0] * 6, axis=3,
                     data=rng.integers(-8, 8, (1, 3, 3, 6)))
        bias = b.const("b", rng.integers(-300, 300, 6), "int32", scale=[0.05 * v for v in s], zero_point=[0] * 6)
        y = b.tensor("y", (1, 7, 6, 6), "int8", scale=0.2, zero_point=-5)
        b.op("DEPTHWISE_CONV_2D", [x, w, bias], [y], "DepthwiseConv2DOptions", Padding="SAME", StrideH=1,
             StrideW=1, DepthMultiplier=2, FusedActivationFunction="RELU6")
    b.inputs, b.outputs = [x], [y]
    return b.build()


@pytest.mark.parametrize("kind", ["conv", "depthwise", "fc"])
def test_int4_layer_equals_tflite_micro_and_tflite_runtime(kind, tmp_path):
    """The imported int4 layer (weights unpacked on import) in mcutool's reference equals the tflite-micro
    interpreter and tflite-runtime 2.14 BUILTIN_REF, which run the same flatbuffer, on every input tried."""
    rng = np.random.default_rng({"conv": 1, "depthwise": 2, "fc": 3}[kind])
    data = _single_op_model(kind, rng)
    path = tmp_path / f"{kind}_int4.tflite"
    path.write_bytes(data)
    g = load_model(path)
    w = g.tensor(g.ops[0].inputs[1])
    assert w.dtype == "int4" and w.data.min() >= -8 and w.data.max() <= 7 and w.nbytes == (w.size + 1) // 2
    micro, ref = MicroInterpreter(data), RefInterpreter(path)
    x_t = g.tensor(g.inputs[0])
    distinct = set()
    for _ in range(6):
        x = rng.integers(-128, 128, x_t.shape).astype(np.int8)
        got = reference.run(g, {g.inputs[0]: x})[g.outputs[0]]
        want = micro(x)[0]
        assert np.array_equal(got, want)
        assert np.array_equal(ref(x)[0], want)
        distinct.update(np.unique(got).tolist())
    assert len(distinct) > 10  # not saturated: the comparison is between varied outputs


def test_knapsack_equals_brute_force():
    rng = np.random.default_rng(5)
    for trial in range(40):
        n = int(rng.integers(1, 9))
        sizes = [int(v) for v in rng.integers(1, 60, n) * int(rng.choice([1, 2, 16]))]
        values = [float(v) for v in rng.exponential(1.0, n)]
        capacity = int(rng.integers(-5, sum(sizes) + 5))
        best, chosen = mixed.knapsack(sizes, values, capacity)
        want = mixed.knapsack_brute_force(sizes, values, capacity)
        if capacity < 0:
            assert best == want == float("-inf") and chosen == []
            continue
        assert sum(sizes[i] for i in chosen) <= capacity
        assert best == pytest.approx(want) and sum(values[i] for i in chosen) == pytest.approx(want)


def test_weights_auto_without_a_budget_is_a_clear_error(tmp_path):
    np.savez(tmp_path / "cal.npz", input_1=structured_images(4, 1))
    done = subprocess.run([sys.executable, "-m", "mcutool", "quantize", str(shared_model("resnet8_float.tflite")),
                           "--calib", str(tmp_path / "cal.npz"), "--weights", "auto", "-o", str(tmp_path / "x.tflite")],
                          capture_output=True, text=True)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "--flash-budget BYTES" in done.stderr and not (tmp_path / "x.tflite").exists()


def test_a_budget_below_all_int4_names_both_sizes():
    g = load_model(shared_model("resnet8_float.tflite"))
    cal = {g.inputs[0]: structured_images(4, 1)}
    with pytest.raises(Exception) as err:
        mixed.choose_widths(mixed.Calibration(g, cal, "minmax"), cal, 1000)
    # ResNet-8 by hand: weights 432 + 2,304 + 2,304 + 4,608 + 9,216 + 512 + 18,432 + 36,864 + 2,048 + 640 = 77,360
    # values, biases 346 int32 = 1,384 B: int8 78,744 B, every layer int4 (all counts even) 38,680 + 1,384 = 40,064 B
    assert "40,064 B" in str(err.value) and "78,744 B" in str(err.value)


@pytest.mark.parametrize("kind", ["conv", "depthwise", "fc"])
def test_int4_kernels_on_the_host_under_asan_equal_the_reference(kind, tmp_path):
    """The portable paths of mcu_conv2d_s4 / mcu_depthwise_conv2d_s4 (--emit library, host gcc with
    -fsanitize=address,undefined) equal the reference, which equals tflite-micro (above)."""
    from host_build import build_host_program, run_host_program
    from mcutool.compiler import Options, compile_model
    rng = np.random.default_rng({"conv": 11, "depthwise": 12, "fc": 13}[kind])
    path = tmp_path / f"{kind}_int4.tflite"
    path.write_bytes(_single_op_model(kind, rng))
    g = load_model(path)
    lib = tmp_path / "lib"
    compile_model(path, "stm32f746", lib, Options(emit="library"))
    assert "mcu_" + ("depthwise_conv2d" if kind == "depthwise" else "conv2d") + "_s4(" in (lib / "model.c").read_text()
    exe = build_host_program(lib, tmp_path / "host")
    x_t, y_t = g.tensor(g.inputs[0]), g.tensor(g.outputs[0])
    for _ in range(3):
        x = rng.integers(-128, 128, x_t.shape).astype(np.int8)
        got = run_host_program(exe, [x], y_t.shape, np.int8)
        assert np.array_equal(got, reference.run(g, {g.inputs[0]: x})[g.outputs[0]])


def test_int4_clip_is_the_one_of_least_output_error():
    """Under a diagonal Hessian GPTQ spreads no error (H^-1's Cholesky factor is diagonal), so each row is
    rounded to nearest; the clip kept is then, per row (per channel) or for all rows (per tensor), the fraction
    of max |w| among CLIP_FRACTIONS whose rounding has the least H-weighted squared error, found here by trying
    every one."""
    from mcutool.quantize.gptq import CLIP_FRACTIONS, gptq_clip_round
    rng = np.random.default_rng(3)
    w = rng.normal(0, 1, (6, 20))
    w[0, 3], w[4, 7] = 9.0, -7.5  # outliers: clipping them pays
    h = np.diag(rng.uniform(0.5, 2.0, 20))
    amax = np.abs(w).max(axis=1)

    def errors(a):
        out = []
        for f in CLIP_FRACTIONS:
            s = np.float32(a * f / 7).astype(np.float64).reshape(-1, 1)
            e = w - np.clip(np.round(w / s), -7, 7) * s
            out.append(np.einsum("ik,kl,il->i", e, h, e))
        return np.array(out)
    q, scale = gptq_clip_round(w, amax, h, 7)
    best = np.argmin(errors(amax), axis=0)
    expect_s = np.float32(amax * CLIP_FRACTIONS[best] / 7)
    assert np.array_equal(np.asarray(scale, np.float32), expect_s) and best[0] > 0
    assert np.array_equal(q, np.clip(np.round(w / expect_s.astype(np.float64)[:, None]), -7, 7))
    q1, s1 = gptq_clip_round(w, np.array([np.abs(w).max()]), h, 7)  # per tensor: one scale for all rows
    f = CLIP_FRACTIONS[int(np.argmin(errors(np.full(6, np.abs(w).max())).sum(axis=1)))]
    assert np.asarray(s1).size == 1 and np.float32(s1[0]) == np.float32(np.abs(w).max() * f / 7)


def test_each_bias_is_corrected_for_its_layers_weights_at_their_width():
    """A fully connected layer on inputs of mean 3: with int4 weights its bias is corrected by the mean error of
    the int4 weights, b - mean((W_4 - W) x) computed here from the int4 values and scale, with int8 weights by
    that of the int8 ones; the int4 model's mean output error per channel shrinks against the uncorrected one."""
    from mcutool.ir import FullyConnectedAttrs, Graph, Op, Tensor
    rng = np.random.default_rng(0)
    w, b = rng.normal(0, 0.05, (4, 16)), rng.normal(0, 1, 4)
    w[0, 0] = 3.0
    g = Graph(name="fc", inputs=["x"], outputs=["y"])
    g.add_tensor(Tensor("x", (1, 16), "float32"))
    g.add_tensor(Tensor("w", w.shape, "float32", None, w.astype(np.float32)))
    g.add_tensor(Tensor("b", b.shape, "float32", None, b.astype(np.float32)))
    g.add_tensor(Tensor("y", (1, 4), "float32"))
    g.ops.append(Op("fc", "fully_connected", ["x", "w", "b"], ["y"], FullyConnectedAttrs()))
    x = rng.normal(3, 1, (256, 16)).astype(np.float32)
    calib = mixed.Calibration(g, {"x": x})
    w32 = w.astype(np.float32).astype(np.float64)
    for bits in (4, 8):
        qw = calib.quantize({"fc": bits}).tensor("w")
        assert qw.dtype == f"int{bits}"
        real = qw.data.astype(np.float64) * float(qw.quant.scale[0])
        shift = ((real - w32) @ x.astype(np.float64).T).mean(axis=1)
        assert np.abs(shift).max() > 1e-3
        np.testing.assert_allclose(calib.corrected({"fc": bits}).tensor("b").data, b.astype(np.float32) - shift,
                                   rtol=0, atol=1e-5)
    y = x.astype(np.float64) @ w32.T + b.astype(np.float32)

    def mean_error(q):
        from mcutool.quantize.ptq import run_batches
        out = np.concatenate([v["y"] for v in run_batches(q, {"x": x})])
        return np.abs((out - y).mean(axis=0)).sum()
    plain = quantize_graph(g, calib.ranges, {"fc": 4}, calib.hessians)
    assert mean_error(calib.quantize({"fc": 4})) < 0.5 * mean_error(plain)
