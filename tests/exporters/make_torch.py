"""Make the PyTorch exports of issue 14: seven networks as torchvision (or a few lines of torch) define them,
    (a) exported to float ONNX by both exporters: `torch.onnx.export(..., dynamo=False)` (TorchScript, opset 13)
        and `dynamo=True` (asked for opset 13; it writes 18, weights in a side .onnx.data file);
    (b) the TorchScript export, through onnxruntime's `quant_pre_process`, quantized by `quantize_static` to QDQ
        int8 (float I/O, QInt8 activations and weights), per channel and per tensor, calibrated on structured
        images; MnasNet's dynamo export also, per channel (<name>_dynamo_qdq_per_channel.onnx).

    python3.11 -m venv /opt/torchvenv
    /opt/torchvenv/bin/pip install torch==2.14.1 torchvision==0.29.1 onnx==1.23.2 onnxruntime==1.32.0 \
        onnxscript==0.7.2
    /opt/torchvenv/bin/python tests/exporters/make_torch.py [--out DIR] [MODEL ...]

CI never runs this (it installs no torch). What is checked in (tests/exporters/onnx/, <= 40 MB with the Keras
models) is CHECKED_IN below: every QDQ model and the float exports the tests compile; `--out build/exporters` writes
the rest of the matrix (the larger float exports) for benchmarks/exports.py. Weights are torch's random
initialisation with fixed seeds; MobileNetV2-0.35 and EfficientNet-B0 (64 px) are trained briefly to tell the four
kinds of tests/structured_images.py apart, so top-1 agreement means something. Image inputs are NCHW in [-1, 1].
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import torch
import torchvision
from onnxruntime import quantization as ortq
from torch import nn

PINS = {"torch": (torch.__version__.split("+")[0], "2.14.1"), "torchvision": (torchvision.__version__.split("+")[0],
        "0.29.1"), "onnx": (onnx.__version__, "1.23.2"), "onnxruntime": (onnxruntime.__version__, "1.32.0")}
for _name, (_found, _pinned) in PINS.items():
    assert _found == _pinned, f"pinned to {_name} {_pinned}, found {_found}"

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from structured_images import structured_images  # noqa: E402

CLASSES = 4  # the four kinds of structured image
OPSET = 13
# name -> (builder, input shape without batch, trained?)
CHECKED_IN_FLOAT = {"mnasnet_05", "tiny_vit", "kws_conv1d_lstm"}  # the others: 40 MB in all
DYNAMO_QDQ = {"mnasnet_05"}  # also quantized from the dynamo export (tests/test_exporter_identity.py)


def images(n: int, seed: int, size: int) -> np.ndarray:
    """Structured images, NCHW float32 in [-1, 1]."""
    return (structured_images(n, seed, size, 1.0) * 2 - 1).transpose(0, 3, 1, 2).copy()


class TinyViT(nn.Module):
    """32x32 images, 8x8 patches (a strided conv) -> 16 tokens of 64, a learned position embedding, 2 pre-norm
    encoder blocks (multi-head attention with 2 heads, layer norm, a GELU MLP of 128), mean over tokens, a linear
    classifier."""

    def __init__(self):
        super().__init__()
        self.patch = nn.Conv2d(3, 64, 8, 8)
        self.pos = nn.Parameter(torch.randn(1, 16, 64) * 0.02)
        self.blocks = nn.ModuleList(
            nn.ModuleDict({"ln1": nn.LayerNorm(64), "attn": nn.MultiheadAttention(64, 2, batch_first=True),
                           "ln2": nn.LayerNorm(64),
                           "mlp": nn.Sequential(nn.Linear(64, 128), nn.GELU(), nn.Linear(128, 64))})
            for _ in range(2))
        self.norm = nn.LayerNorm(64)
        self.head = nn.Linear(64, CLASSES)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2) + self.pos
        for b in self.blocks:
            y = b["ln1"](x)
            x = x + b["attn"](y, y, y)[0]  # need_weights: the explicit path (SDPA needs opset 14)
            x = x + b["mlp"](b["ln2"](x))
        return self.head(self.norm(x).mean(1))


class KwsConv1dLstm(nn.Module):
    """Keyword spotting on 49 frames x 10 MFCCs: Conv1d(16, 3) + ReLU, LSTM(32), a linear layer over 4 words."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(10, 16, 3)
        self.lstm = nn.LSTM(16, 32, batch_first=True)
        self.head = nn.Linear(32, CLASSES)

    def forward(self, x):  # x: (1, 49, 10)
        y = torch.relu(self.conv(x.transpose(1, 2))).transpose(1, 2)
        out, _ = self.lstm(y)
        return self.head(out[:, -1])


tv = torchvision.models
MODELS = {
    "mobilenet_v3_small": (lambda: tv.mobilenet_v3_small(num_classes=CLASSES), (3, 96, 96), False),
    "shufflenet_v2_x05": (lambda: tv.shufflenet_v2_x0_5(num_classes=CLASSES), (3, 96, 96), False),
    "efficientnet_b0_64": (lambda: tv.efficientnet_b0(num_classes=CLASSES), (3, 64, 64), True),
    "mobilenet_v2_035": (lambda: tv.mobilenet_v2(width_mult=0.35, num_classes=CLASSES), (3, 96, 96), True),
    "mnasnet_05": (lambda: tv.mnasnet0_5(num_classes=CLASSES), (3, 96, 96), False),
    "tiny_vit": (TinyViT, (3, 32, 32), False),
    "kws_conv1d_lstm": (KwsConv1dLstm, (49, 10), False),
}


def calibration(name: str, shape, count: int = 32) -> np.ndarray:
    if name == "kws_conv1d_lstm":
        return np.random.default_rng(1000).normal(0, 1, (count, *shape)).astype(np.float32)
    return images(count, 1000, shape[-1])


def train(model: nn.Module, size: int, epochs: int = 8, n: int = 512) -> None:
    """A brief training on structured images labelled by their kind (image i is of kind i % 4)."""
    x = torch.from_numpy(images(n, 7, size))
    y = torch.arange(n) % CLASSES
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(n)
        for i in range(0, n, 32):
            idx = perm[i:i + 32]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        test = torch.from_numpy(images(128, 3000, size))
        acc = (model(test).argmax(1) == torch.arange(128) % CLASSES).float().mean()
    print(f"  trained: accuracy {acc:.2f} on 128 other images (eval mode)")


class _Reader(ortq.CalibrationDataReader):
    def __init__(self, name, data):
        self.items = iter([{name: d[None]} for d in data])

    def get_next(self):
        return next(self.items, None)


def export(name: str, out: Path, checked_in: Path) -> None:
    build, shape, trained = MODELS[name]
    torch.manual_seed(sum(map(ord, name)))
    model = build().eval()
    if trained:
        train(model, shape[-1])
    x = torch.from_numpy(calibration(name, shape, 1))
    float_dir = checked_in if name in CHECKED_IN_FLOAT else out
    float_dir.mkdir(parents=True, exist_ok=True)
    ts = float_dir / f"{name}_torchscript.onnx"
    torch.onnx.export(model, (x,), str(ts), dynamo=False, opset_version=OPSET, input_names=["input"],
                      output_names=["output"])
    torch.onnx.export(model, (x,), str(float_dir / f"{name}_dynamo.onnx"), dynamo=True, opset_version=OPSET,
                      input_names=["input"], output_names=["output"])
    if name == "kws_conv1d_lstm":  # (b) may leave the LSTM model out: onnxruntime keeps LSTM in float anyway
        return
    calib = calibration(name, shape)
    pre = out / f"{name}_preprocessed.onnx"  # onnxruntime's advice before quantize_static: shape inference,
    out.mkdir(parents=True, exist_ok=True)   # constants as initializers (else conv biases stay float)
    try:
        ortq.quant_pre_process(str(ts), str(pre))
    except AssertionError:  # its symbolic shape inference fails on the ViT's reshapes: the ONNX one only
        ortq.quant_pre_process(str(ts), str(pre), skip_symbolic_shape=True)
    for per_channel in (True, False):
        qdq = checked_in / f"{name}_qdq_{'per_channel' if per_channel else 'per_tensor'}.onnx"
        ortq.quantize_static(str(pre), str(qdq), _Reader("input", calib), quant_format=ortq.QuantFormat.QDQ,
                             per_channel=per_channel, activation_type=ortq.QuantType.QInt8,
                             weight_type=ortq.QuantType.QInt8)
    if name in DYNAMO_QDQ:  # the same quantization of the dynamo export: both must compile to one code
        dyn_pre = out / f"{name}_dynamo_preprocessed.onnx"
        ortq.quant_pre_process(str(float_dir / f"{name}_dynamo.onnx"), str(dyn_pre))
        ortq.quantize_static(str(dyn_pre), str(checked_in / f"{name}_dynamo_qdq_per_channel.onnx"),
                             _Reader("input", calib), quant_format=ortq.QuantFormat.QDQ, per_channel=True,
                             activation_type=ortq.QuantType.QInt8, weight_type=ortq.QuantType.QInt8)
    for f in sorted(set(float_dir.glob(f"{name}_*")) | set(checked_in.glob(f"{name}_*"))):
        print(f"  {f.relative_to(HERE.parents[1]) if f.is_relative_to(HERE.parents[1]) else f}: "
              f"{f.stat().st_size:,} bytes")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE.parents[1] / "build" / "exporters",
                    help="where the float exports that are not checked in go")
    ap.add_argument("models", nargs="*", default=list(MODELS))
    args = ap.parse_args()
    for name in args.models:
        print(name)
        export(name, args.out, HERE / "onnx")


if __name__ == "__main__":
    main()
