"""Post-training quantization: the arithmetic of the scheme (DESIGN.md §7), checked by hand-derived values; the
written TFLite file against tflite-runtime's reference kernels; ResNet-8's float-vs-int8 agreement.
"""
import subprocess
import sys
from pathlib import Path

import numpy as np

from conftest import shared_model
from host_build import build_host_program
from structured_images import structured_images
from tflite_builder import MicroInterpreter, ModelBuilder, RefInterpreter
from mcutool import reference
from mcutool.frontends import load_model
from mcutool.compiler import Options, compile_model, firmware_graph
from mcutool.export.tflite import write_tflite
from mcutool.quantize.ptq import (INT32_MAX, Range, activation_quant, agreement_report, bias_safe_scale, calibrate,
                                  integer_io, quantize_graph, quantize_model, weight_quant)

sys.path.insert(0, str(Path(__file__).parent))
import branched_models as nets  # noqa: E402


def test_activation_quant_makes_zero_exact_and_covers_the_range():
    q = activation_quant(Range(-1.0, 3.0))
    s, z = float(q.scale[0]), int(q.zero_point[0])
    assert abs(s - 4.0 / 255) < 1e-7
    assert z == round(-128 + 1.0 / s)            # real 0 maps to an integer exactly
    assert (-128 - z) * s <= -1.0 + s and (127 - z) * s >= 3.0 - s
    relu = activation_quant(Range(0.5, 6.0))      # ranges are widened to hold 0: ReLU outputs use zp = -128
    assert int(relu.zero_point[0]) == -128


def test_weights_are_symmetric_per_channel():
    w = np.array([[[[1.0, -2.0]]], [[[0.5, 0.25]]]], np.float32)  # (out=2, 1, 1, in=2)
    q, wq = weight_quant(w, axis=0)
    assert np.allclose(wq.scale, [2.0 / 127, 0.5 / 127])
    assert (wq.zero_point == 0).all() and wq.axis == 0
    assert q[0, 0, 0].tolist() == [64, -127] and q[1, 0, 0].tolist() == [127, 64]


def test_resnet8_quantizes_to_an_int8_graph_with_consistent_bias_scales():
    g = load_model(shared_model("resnet8_float.tflite"))
    rng = np.random.default_rng(0)
    cal = rng.uniform(0, 255, size=(8, 32, 32, 3)).astype(np.float32)
    qg = quantize_graph(g, calibrate(g, {g.inputs[0]: cal}))
    assert [op.kind for op in qg.ops][0] == "quantize" and qg.ops[-1].kind == "dequantize"
    inner = [op for op in qg.ops if op.kind not in ("quantize", "dequantize")]
    assert [op.kind for op in inner] == [op.kind for op in g.ops]
    for op in inner:
        for name in op.outputs:
            assert qg.tensor(name).dtype == "int8"
        if op.kind in ("conv2d", "fully_connected") and len(op.inputs) > 2:
            x, w, b = (qg.tensor(n) for n in op.inputs[:3])
            assert w.dtype == "int8" and b.dtype == "int32"
            np.testing.assert_allclose(b.quant.scale, x.quant.scale[0] * w.quant.scale, rtol=1e-6)
    softmax_out = qg.tensor([op for op in inner if op.kind == "softmax"][0].outputs[0])
    assert float(softmax_out.quant.scale[0]) == 1 / 256 and int(softmax_out.quant.zero_point[0]) == -128
    y = reference.run(qg, {g.inputs[0]: cal[:1]})[g.outputs[0]]
    assert y.dtype == np.float32 and abs(float(y.sum()) - 1.0) < 0.05


def test_quantize_cli_writes_a_tflite_file_that_tflite_runtime_runs_bit_exactly(tmp_path):
    """Must-show 3: `mcutool quantize` output (float I/O, QUANTIZE/DEQUANTIZE at the border, as the TFLite
    converter writes it; default calibration, auto) in tflite-runtime 2.14 BUILTIN_REF and in TFLite Micro's
    interpreter equals mcutool.reference on the int8 graph."""
    model = shared_model("resnet8_float.tflite")
    np.savez(tmp_path / "cal.npz", input_1=structured_images(32, 1))
    out = tmp_path / "r8_int8.tflite"
    done = subprocess.run([sys.executable, "-m", "mcutool", "quantize", str(model), "--calib", str(tmp_path / "cal.npz"),
                           "-o", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "top-1 agreement" in done.stdout and "SQNR" in done.stdout
    g = load_model(model)
    qg, _ = quantize_model(g, {"input_1": structured_images(32, 1)})  # the default (auto), as the CLI ran it
    written = load_model(out)
    assert [op.kind for op in written.ops] == [op.kind for op in qg.ops]
    oracle, micro = RefInterpreter(out), MicroInterpreter(out.read_bytes())
    test = structured_images(12, 2)
    outs = []
    for i in range(len(test)):
        want = oracle(test[i:i + 1])[0]
        got = reference.run(qg, {"input_1": test[i:i + 1]})["Identity"]
        assert got.dtype == want.dtype == np.float32
        assert np.array_equal(got, want), f"image {i}: {got} != {want}"
        assert np.array_equal(micro(test[i:i + 1])[0], want), f"image {i}: TFLite Micro differs"
        outs.append(int(np.argmax(want)))
    assert len(set(outs)) >= 3  # the outputs vary: the comparison is not between constants


def test_integer_io_graph_is_the_quantized_graph_without_its_border():
    g = load_model(shared_model("resnet8_float.tflite"))
    qg = quantize_graph(g, calibrate(g, {"input_1": structured_images(8, 1)}))
    fw = integer_io(qg)
    x = structured_images(3, 2)
    spec_in, spec_out = fw.tensor("input_1").quant, fw.tensor("Identity").quant
    assert fw.tensor("input_1").dtype == fw.tensor("Identity").dtype == "int8"
    for i in range(3):
        xq = reference.quantize_float(x[i:i + 1], scale=spec_in.scale[0], zero_point=int(spec_in.zero_point[0]),
                                      out_dtype="int8").astype(np.int8)
        y = reference.run(fw, {"input_1": xq})["Identity"]
        deq = reference.dequantize(y, scale=spec_out.scale[0], zero_point=int(spec_out.zero_point[0]))
        assert np.array_equal(deq, reference.run(qg, {"input_1": x[i:i + 1]})["Identity"])


def test_resnet8_agreement_on_structured_images():
    """Issue 15 must-show 4 (issue 4 must-show 1, measured): 200 calibration and 500 held-apart test images
    (tests/structured_images.py). TFLite 2.14's converter, calibrated on the same 200 images, reaches 90.4 %
    top-1 agreement and 16.6 dB output SQNR on the 500 (benchmarks/tflite_converter_int8.py, then
    benchmarks/ptq_agreement.py --tflite-int8: stored in the README, as CI has no TensorFlow). mcutool's default
    calibration must beat it by >= 1 dB at no less agreement, and do better than min/max on the same images.

    (Issue 4 asked for >= 97 % and >= 20 dB: the float model's top-2 logit gap on these images is below 0.11 for
    5 % of them (logit rms ~8), so any int8 noise flips them.)"""
    g = load_model(shared_model("resnet8_float.tflite"))
    cal, test = {"input_1": structured_images(200, 1)}, {"input_1": structured_images(500, 2)}
    qg, report = quantize_model(g, cal)
    assert report["method"] == "auto" and report["bias_corrected_layers"] == 10
    (row,) = agreement_report(g, qg, test)
    (minmax,) = agreement_report(g, quantize_graph(g, calibrate(g, cal)), test)
    assert row["float_classes"] >= 5
    assert row["sqnr_db"] >= 16.6 + 1.0 and row["top1_agreement"] >= 0.904, row
    assert row["sqnr_db"] > minmax["sqnr_db"], (row, minmax)


# ------------------------------------------------------------------------- dead channels (issue 10)

def test_bias_safe_scale_is_tflites_adjust_weights_for_bias_scale():
    """TFLite's own case (quantization_utils_test.cc, AdjustWeightScaleForBiasPerChannel): weight ranges +-1e-7
    and [-7, 1], input scale 0.05, biases 4 and 4. Channel 0's bias would be 4 / (0.05 * 1e-7/127) ~ 1e11: its
    scale becomes 2 * 4 / (0.05 * (2^31 - 1)) (hand-derived), putting the bias at (2^31 - 1) / 2; channel 1's
    bias 4 / (0.05 * 7/127) ~ 1451 needs nothing. Per tensor, the largest |bias| decides."""
    scales = np.array([1e-7 / 127, 7.0 / 127], np.float32)
    got = bias_safe_scale(scales, np.array([4.0, 4.0], np.float32), 0.05)
    assert abs(float(got[0]) - 8.0 / (0.05 * INT32_MAX)) <= 1e-6 * float(got[0]) and got[1] == scales[1]
    assert abs(4.0 / (0.05 * float(got[0])) - INT32_MAX / 2) <= 1e-6 * INT32_MAX
    per_tensor = bias_safe_scale(np.array([1e-9], np.float32), np.array([4.0, -1e4]), 0.05)
    want = 2e4 / (0.05 * INT32_MAX)
    assert per_tensor.shape == (1,) and abs(float(per_tensor[0]) - want) <= 1e-6 * want


def _dead_channel_net() -> nets.Net:
    """A float CNN whose 1x1 conv (after a RELU6, so its input zero point is -128) has a dead output channel 5:
    weights 1e-30, bias 0.5. Its float output is relu6(0.5 + ~1e-30 x) = 0.5 for every input."""
    n = nets.Net("dead_channel", (1, 12, 12, 4), seed=61)
    h = n.conv(n.dw(n.conv("x", 16, k=3)), 16)
    n.classifier(n.global_pool(n.conv(h, 16, act="NONE")))
    pointwise = n.layers[2]
    pointwise["w"][5], pointwise["b"][5] = 1e-30, 0.5
    return n


def test_a_dead_channel_gets_tflites_weight_scale_and_the_model_stays_bit_exact(tmp_path):
    """Issue 10: PTQ used to overflow the dead channel's int32 bias (0.5 / (s_in * 1e-30 / 127)). Now its weight
    scale is raised as TFLite's converter does: the bias is ~2^30, its weights quantize to 0, the channel's int8
    output is 0.5 within half an LSB on every test input, the written .tflite runs in tflite-runtime exactly as the
    reference runs the int8 graph, and the compiled library equals the reference under AddressSanitizer."""
    net = _dead_channel_net()
    calib, test = nets.inputs((1, 12, 12, 4), 32, seed=1), nets.inputs((1, 12, 12, 4), 16, seed=2)
    path = net.write_float(tmp_path / "dead.tflite", calib)
    g = load_model(path)
    qg, _ = quantize_model(g, {"x": calib})
    conv = next(op for op in qg.ops if op.name == "conv2d_1")
    w, b, y = (qg.tensor(n) for n in (*conv.inputs[1:3], conv.outputs[0]))
    assert abs(int(b.data[5]) - 2**30) <= 2**30 * 1e-6 and not w.data[5].any()
    s_out, zp_out = float(y.quant.scale[0]), int(y.quant.zero_point[0])
    for x in test[:4]:
        dead = reference.run(qg, {"x": x[None]}, keep=True)[y.name][..., 5]
        assert np.all(np.abs((dead.astype(np.float64) - zp_out) * s_out - 0.5) <= s_out / 2)
    (row,) = agreement_report(g, qg, {"x": test})
    assert row["float_classes"] >= 5 and row["sqnr_db"] >= 12.0, row  # the dead channel broke it: -1.5 dB
    # the written int8 model in tflite-runtime == the reference
    (tmp_path / "dead_int8.tflite").write_bytes(write_tflite(qg))
    oracle = RefInterpreter(tmp_path / "dead_int8.tflite")
    for x in test[:4]:
        assert np.array_equal(oracle(x[None])[0], reference.run(qg, {"x": x[None]})[g.outputs[0]])
    # compiled (library, host gcc + ASan) == the reference on the firmware's int8 graph
    np.savez(tmp_path / "cal.npz", x=calib)
    opts = Options(calib=str(tmp_path / "cal.npz"), emit="library")
    compile_model(path, "stm32f746", tmp_path / "lib", opts)
    fw, _ = firmware_graph(path, opts)
    exe = build_host_program(tmp_path / "lib", tmp_path / "dead.exe")
    scale, zp = fw.tensor("x").quant.scale[0], int(fw.tensor("x").quant.zero_point[0])
    classes = set()
    for x in test:
        xq = reference.quantize_float(x[None], scale=scale, zero_point=zp, out_dtype="int8").astype(np.int8)
        (tmp_path / "x.bin").write_bytes(xq.tobytes())
        done = subprocess.run([str(exe), str(tmp_path / "x.bin"), str(tmp_path / "y.bin")], capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stderr
        want = reference.run(fw, {"x": xq})[fw.outputs[0]]
        assert np.array_equal(np.frombuffer((tmp_path / "y.bin").read_bytes(), np.int8), want.reshape(-1))
        classes.add(int(np.argmax(want)))
    assert len(classes) >= 5, classes


def test_an_int8_bias_that_overflows_once_the_input_offset_is_folded_names_the_layer(tmp_path):
    """An imported int8 model whose bias sits at the edge of int32: the kernels fold -zp * sum(w) into it
    (2^31 - 1000 + 128 * 400 is past int32); the error names the layer and the cause, not an internal error."""
    b = ModelBuilder()
    x = b.tensor("x", (1, 4, 4, 4), "int8", scale=0.02, zero_point=-128)
    w = b.tensor("w", (4, 1, 1, 4), "int8", scale=[0.01] * 4, zero_point=0, axis=0, data=np.full((4, 1, 1, 4), 100))
    bias = b.tensor("b", (4,), "int32", scale=[0.0002] * 4, zero_point=0, data=np.full(4, 2**31 - 1000))
    y = b.tensor("y", (1, 4, 4, 4), "int8", scale=0.1, zero_point=0)
    b.op("CONV_2D", [x, w, bias], [y], "Conv2DOptions", Padding="VALID", StrideH=1, StrideW=1)
    b.inputs, b.outputs = [x], [y]
    done = subprocess.run([sys.executable, "-m", "mcutool", "compile", str(b.write(tmp_path / "edge.tflite")),
                           "--board", "stm32f746", "--emit", "library", "-o", str(tmp_path / "lib")],
                          capture_output=True, text=True)
    assert done.returncode == 1 and "internal error" not in done.stderr, done.stderr
    assert "layer 'conv2d_0'" in done.stderr and "outside int32" in done.stderr
