"""The VWW-shaped float network for the mixed-precision benchmark (tests/converter_models/vww_float.tflite, made
by make_vww_float.py with tensorflow-cpu 2.14.1): MLPerf Tiny's MobileNetV1-0.25 shape, float32, and trained --
it tells the two classes of its task apart on images it never saw, so SQNR and agreement measured on it mean
something (DESIGN.md §11)."""
from collections import Counter
from pathlib import Path

import numpy as np

from structured_images import structured_images
from tflite_builder import RefInterpreter
from mcutool.frontends import load_model
from mcutool.quantize.ptq import run_batches

MODEL = Path(__file__).resolve().parent / "converter_models" / "vww_float.tflite"


def test_vww_float_is_mobilenet_v1_025_and_its_reference_equals_tflite_runtime():
    g = load_model(MODEL)
    assert g.tensor(g.inputs[0]).shape == (1, 96, 96, 3) and g.tensor(g.outputs[0]).shape == (1, 2)
    assert Counter(op.kind for op in g.ops) == {"conv2d": 14, "depthwise_conv2d": 13, "avg_pool2d": 1,
                                                "reshape": 1, "fully_connected": 1, "softmax": 1}
    weights = sum(g.tensor(op.inputs[1]).data.size for op in g.ops if op.kind in ("conv2d", "depthwise_conv2d",
                                                                                 "fully_connected"))
    assert all(t.dtype == "float32" for t in g.tensors.values() if t.is_const and t.data.ndim > 1)
    assert 200_000 < weights < 230_000  # MLPerf Tiny's VWW model: 221,794 parameters with biases
    x = structured_images(40, 2, size=96, scale=1.0)
    ours = np.concatenate([v[g.outputs[0]] for v in run_batches(g, {g.inputs[0]: x})])
    oracle = RefInterpreter(MODEL)
    theirs = np.concatenate([oracle(x[i:i + 1])[0] for i in range(len(x))])
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    labels = (np.arange(len(x)) % 4 >= 2).astype(int)  # the task: shapes and textures vs smooth fields, gradients
    assert np.mean(theirs.argmax(1) == labels) >= 0.75
    assert 0.2 <= np.mean(theirs.argmax(1)) <= 0.8  # it predicts both classes, not one
