"""Post-training quantization: the arithmetic of the scheme (DESIGN.md §7), checked by hand-derived values.

The end-to-end agreement goal of issue 4 (ResNet-8 ≥ 97 % top-1, ≥ 20 dB) is not met yet and not asserted here.
"""
import numpy as np

from conftest import shared_model
from mcutool import reference
from mcutool.frontends import load_model
from mcutool.quantize.ptq import Range, activation_quant, calibrate, quantize_graph, weight_quant


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
