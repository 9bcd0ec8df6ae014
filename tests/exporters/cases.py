"""The exporter suite's models, inputs and oracles (issue 14), shared by tests/test_exporters.py and
benchmarks/exports.py.

Forms: `keras` (c) TFLiteConverter int8 (tests/exporters/keras/), `torchscript` and `dynamo` (a) float ONNX from
the two PyTorch exporters, `qdq_per_channel` and `qdq_per_tensor` (b) onnxruntime quantize_static QDQ int8
(tests/exporters/onnx/). make_keras.py and make_torch.py make them; the float exports not checked in are made
into build/exporters/ (make_torch.py --out).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
EXTRA = ROOT / "build" / "exporters"
sys.path.insert(0, str(HERE.parent))
from structured_images import structured_images  # noqa: E402

MODELS = ["mobilenet_v3_small", "shufflenet_v2_x05", "efficientnet_b0_64", "mobilenet_v2_035", "mnasnet_05",
          "tiny_vit", "kws_conv1d_lstm"]
FORMS = ["keras", "torchscript", "dynamo", "qdq_per_channel", "qdq_per_tensor"]
TRAINED = ("mobilenet_v2_035", "efficientnet_b0_64")  # top-1 agreement is measured on these
SIZES = {"efficientnet_b0_64": 64, "tiny_vit": 32}
KERAS_RANGE = {"mobilenet_v3_small": (0, 255), "efficientnet_b0_64": (0, 255)}  # others: [-1, 1]


def model_path(form: str, name: str) -> Path | None:
    """The file of `name` in `form`, checked in or made into build/exporters; None when it does not exist."""
    if form == "keras":
        candidates = [HERE / "keras" / f"{name}.tflite"]
    else:
        candidates = [d / f"{name}_{form}.onnx" for d in (HERE / "onnx", EXTRA)]
    return next((p for p in candidates if p.exists()), None)


def float_inputs(form: str, name: str, n: int, seed: int = 2000) -> np.ndarray:
    """n float32 inputs (batch 1 each, stacked on axis 0) in the form's layout and the model's own range:
    structured images (NHWC for Keras, NCHW in [-1, 1] for PyTorch) or normal MFCC-like features."""
    if name == "kws_conv1d_lstm":
        return np.random.default_rng(seed).normal(0, 1, (n, 1, 49, 10)).astype(np.float32)
    size = SIZES.get(name, 96)
    if form == "keras":
        lo, hi = KERAS_RANGE.get(name, (-1, 1))
        x = structured_images(n, seed, size, 1.0) * (hi - lo) + lo
    else:
        x = (structured_images(n, seed, size, 1.0) * 2 - 1).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x[:, None], dtype=np.float32)


def quantize_input(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return np.clip(np.round(x / scale) + zero_point, -128, 127).astype(np.int8)


def write_calibration(path: Path, input_name: str, form: str, name: str, n: int = 32) -> Path:
    """Calibration samples for --calib (structured images of another seed than the tests')."""
    np.savez(path, **{input_name: float_inputs(form, name, n, seed=1000)[:, 0]})
    return path


def onnxruntime_outputs(path: Path, xs: np.ndarray) -> np.ndarray:
    import onnxruntime as ort
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.stack([sess.run(None, {name: x})[0] for x in xs])


def tflite_micro_outputs(path: Path, xs: list[np.ndarray]) -> list[np.ndarray]:
    """TFLite Micro's interpreter, a fresh one per input (an LSTM's state is not carried over)."""
    from tflite_micro.python.tflite_micro import runtime
    outs = []
    for x in xs:
        it = runtime.Interpreter.from_file(str(path), arena_size=1 << 23)
        it.set_input(x, 0)
        it.invoke()
        outs.append(it.get_output(0).copy())
    return outs
