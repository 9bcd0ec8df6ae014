"""Post-training quantization: the arithmetic of the scheme (DESIGN.md §7), checked by hand-derived values; the
written TFLite file against tflite-runtime's reference kernels; ResNet-8's float-vs-int8 agreement.
"""
import subprocess
import sys

import numpy as np

from conftest import shared_model
from structured_images import structured_images
from tflite_builder import RefInterpreter
from mcutool import reference
from mcutool.frontends import load_model
from mcutool.quantize.ptq import (Range, activation_quant, agreement_report, calibrate, integer_io, quantize_graph,
                                  quantize_model, weight_quant)


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
    converter writes it) in tflite-runtime 2.14 BUILTIN_REF equals mcutool.reference on the int8 graph."""
    model = shared_model("resnet8_float.tflite")
    np.savez(tmp_path / "cal.npz", input_1=structured_images(32, 1))
    out = tmp_path / "r8_int8.tflite"
    done = subprocess.run([sys.executable, "-m", "mcutool", "quantize", str(model), "--calib", str(tmp_path / "cal.npz"),
                           "-o", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "top-1 agreement" in done.stdout and "SQNR" in done.stdout
    g = load_model(model)
    qg = quantize_graph(g, calibrate(g, {"input_1": structured_images(32, 1)}))
    written = load_model(out)
    assert [op.kind for op in written.ops] == [op.kind for op in qg.ops]
    oracle = RefInterpreter(out)
    test = structured_images(12, 2)
    outs = []
    for i in range(len(test)):
        want = oracle(test[i:i + 1])[0]
        got = reference.run(qg, {"input_1": test[i:i + 1]})["Identity"]
        assert got.dtype == want.dtype == np.float32
        assert np.array_equal(got, want), f"image {i}: {got} != {want}"
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
    """Issue 4 must-show 1, measured: 200 calibration and 500 test images (tests/structured_images.py).

    The issue asks for >= 97 % top-1 agreement and >= 20 dB output SQNR; what mcutool reaches with TFLite's
    scheme is ~91 % and ~17 dB (softmax output) / ~25 dB (logits). The float model's top-2 logit gap on these
    images is below 0.11 for 5 % of them (logit rms ~8), so any int8 noise flips them; this test pins the
    measured figures so a regression shows, and does not claim the issue's target."""
    g = load_model(shared_model("resnet8_float.tflite"))
    qg, report = quantize_model(g, {"input_1": structured_images(200, 1)})
    (row,) = agreement_report(g, qg, {"input_1": structured_images(500, 2)})
    assert row["float_classes"] >= 5
    assert row["top1_agreement"] >= 0.89 and row["sqnr_db"] >= 16.0, row
