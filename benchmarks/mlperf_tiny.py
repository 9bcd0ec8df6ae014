"""MLPerf Tiny's four networks on stm32f746 beside TFLite Micro + CMSIS-NN (issue 11, must-show 1).

    python benchmarks/mlperf_tiny.py [--board stm32f746] [--models kws,ad,vww,resnet8] [--layers]

KWS and AD are MLPerf Tiny's own int8 models (../shared/models). VWW is a network of MobileNetV1-0.25's shape
at 96x96x3 (MLPerf Tiny's VWW: 7,489,664 MACs) with random weights scaled per DESIGN.md section 11
(tests/patch_nets.py build_net; its classifier head fitted to the int8 features). ResNet-8 is MLPerf Tiny's
float ResNet-8 (../shared/models/resnet8_float.tflite) quantized by mcutool on 200 structured images
(tests/structured_images.py, seed 1). Each is compiled for the board, run once in QEMU (-icount shift=0) on a
random input, and printed with: instructions, MACs/instruction, code bytes (the ELF's functions: harness,
runtime and kernels; the constants are not code) and flash bytes (everything the image stores in flash:
code, weights, requantization constants). The TFLite Micro + CMSIS-NN figures are DESIGN.md section 6's and
the issue's (.text: code and harness, its weights being in the flatbuffer in .rodata).
`--layers` also prints each layer's instructions, grouped by kernel class, and per model the totals of each
kernel class (class MACs / class instructions).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from mcutool.boards import load_board  # noqa: E402
from mcutool.compiler import Options, compile_model, function_sizes, profile_layers, run_build  # noqa: E402
from mcutool.frontends import load_model  # noqa: E402
from mcutool.quantize.ptq import integer_io, quantize_model  # noqa: E402

MODELS = ROOT.parent / "shared" / "models"
BUILD = ROOT / "build" / "mlperf_tiny"

# TFLite Micro (commit 90b983c2, release flags) + CMSIS-NN on mps2-an500 -icount shift=0: instructions of one
# warm Invoke() (DESIGN.md section 6) and .text bytes (the issue); and the targets for mcutool.
TFLM = {"kws": (7_643_120, 75_928), "vww": (24_025_560, 78_172), "resnet8": (30_027_720, 72_958),
        "ad": (583_280, 25_826)}
TARGET_INSTR = {"kws": 3_821_560, "vww": 12_012_780, "resnet8": 15_013_860, "ad": 349_968}

# MobileNetV1-0.25 at 96x96x3 (MLPerf Tiny VWW's shape): conv 3x3/2 to 8 channels, 13 depthwise-separable
# blocks, global average pool, 2 classes
VWW = [("conv", 8, 3, 2, "SAME", "RELU6")]
for _c, _s in [(16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (128, 1), (128, 1), (128, 1),
               (128, 1), (256, 2), (256, 1)]:
    VWW += [("dwconv", 3, _s, "SAME", "RELU6"), ("conv", _c, 1, 1, "VALID", "RELU6")]
VWW += [("gap",), ("fc", 2)]


def vww_model(folder: Path):
    from patch_nets import build_net
    path = build_net(folder / "vww_mobilenetv1_025_96.tflite", VWW, (1, 96, 96, 3), seed=3, n_calib=8)
    return path, load_model(path)


def resnet8_model(_folder: Path):
    """(the float model, which names the project, and its int8 graph)."""
    from structured_images import structured_images
    path = MODELS / "resnet8_float.tflite"
    g = load_model(path)
    qg, _ = quantize_model(g, {g.inputs[0]: structured_images(200, 1)})
    return path, integer_io(qg)


def shared_model(name: str):
    return lambda _folder: (MODELS / name, load_model(MODELS / name))


SOURCES = {"kws": shared_model("kws_ref_model.tflite"), "ad": shared_model("ad01_int8.tflite"),
           "vww": vww_model, "resnet8": resnet8_model}
NAMES = {"kws": "KWS (DS-CNN)", "ad": "AD (FC autoencoder)", "vww": "VWW-shaped MobileNetV1-0.25 96x96x3",
         "resnet8": "ResNet-8 (CIFAR-10)"}


def code_bytes(board, elf: Path) -> int:
    """Bytes of the image's functions: code without the constant arrays."""
    return sum(function_sizes(board, elf).values())


def kernel_class(layer: dict, graph) -> str:
    """The class of a layer's kernel with its shape, e.g. 'depthwise 3x3 s2 48x48x8'."""
    op = next((o for o in graph.ops if o.name == layer["name"]), None)
    if op is None:
        return layer["op"]
    out = "x".join(str(d) for d in graph.tensor(op.outputs[0]).shape[1:])
    if op.kind in ("conv2d", "depthwise_conv2d"):
        w = graph.tensor(op.inputs[1]).shape
        kh, kw = w[1], w[2]
        cin = graph.tensor(op.inputs[0]).shape[3]
        s = op.attrs.stride[0]
        if op.kind == "depthwise_conv2d":
            return f"depthwise {kh}x{kw} s{s} -> {out}"
        if (kh, kw) == (1, 1):
            return f"pointwise 1x1 {cin}->{w[0]} -> {out}"
        if cin < 4:
            return f"first conv {kh}x{kw} s{s} over {cin} ch -> {out}"
        return f"conv {kh}x{kw} s{s} {cin}->{w[0]} -> {out}"
    if op.kind == "fully_connected":
        return f"fully connected {graph.tensor(op.inputs[1]).shape[1]}->{graph.tensor(op.inputs[1]).shape[0]}"
    return f"{op.kind} -> {out}"


def class_of(layer_class: str) -> str | None:
    """The issue's kernel class of a layer label of `kernel_class` (None: a layer without MACs)."""
    for prefix in ("depthwise 3x3 s1", "depthwise 3x3 s2", "pointwise 1x1", "first conv", "conv 3x3",
                   "fully connected"):
        if layer_class.startswith(prefix):
            if prefix == "first conv":  # over 3 channels (VWW, ResNet-8) or 1 (KWS)
                return "first conv over " + layer_class.split(" over ")[1].split(" -> ")[0]
            return {"conv 3x3": "regular 3x3 conv"}.get(prefix, prefix)
    return None


def class_totals(layers) -> dict[str, tuple[int, int, int]]:
    """{kernel class: (layers, MACs, instructions)} over the layers with MACs."""
    out: dict[str, tuple[int, int, int]] = {}
    for label, macs, n in layers:
        cls = class_of(label)
        if cls is not None and macs and n:
            count, m, i = out.get(cls, (0, 0, 0))
            out[cls] = (count + 1, m + macs, i + n)
    return out


def bench(key: str, board_name: str, layers: bool) -> dict:
    out = BUILD / f"{key}-{board_name}"
    out.parent.mkdir(parents=True, exist_ok=True)
    path, graph = SOURCES[key](out.parent)
    report = compile_model(path, board_name, out, Options(), graph=graph)
    rng = np.random.default_rng(0)
    x = [rng.integers(-128, 128, s["shape"]).astype(s["dtype"]) for s in report["io"]["inputs"]]
    _, info = run_build(out, x)
    board = load_board(board_name)
    row = {"key": key, "macs": report["macs"], "instructions": info["instructions"],
           "code": code_bytes(board, out / "board.elf"), "flash": report["flash"]["used_bytes"]}
    if layers:
        row["layers"] = [(kernel_class(r, graph), next((x["macs"] for x in report["layers"] if x["name"] == r["name"]), 0),
                          r["instructions"]) for r in profile_layers(out, x)]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--board", default="stm32f746")
    ap.add_argument("--models", default="kws,vww,resnet8,ad")
    ap.add_argument("--layers", action="store_true", help="instructions per layer, by kernel class")
    args = ap.parse_args()
    rows = [bench(k, args.board, args.layers) for k in args.models.split(",")]
    tflm = args.board == "stm32f746"
    print(f"\n{args.board} (QEMU, -icount shift=0: instructions, not cycles)\n")
    head = "| model | MACs | instructions | MAC/instr | code B | flash B |"
    sep = "|---|---:|---:|---:|---:|---:|"
    if tflm:
        head += " TFLM+CMSIS-NN instr | ratio | target instr | TFLM+CMSIS-NN .text B | code ratio |"
        sep += "---:|---:|---:|---:|---:|"
    print(head)
    print(sep)
    for r in rows:
        line = (f"| {NAMES[r['key']]} | {r['macs']:,} | {r['instructions']:,} | {r['macs'] / r['instructions']:.3f} "
                f"| {r['code']:,} | {r['flash']:,} |")
        if tflm:
            ti, tt = TFLM[r["key"]]
            line += (f" {ti:,} | {r['instructions'] / ti:.2f} | {TARGET_INSTR[r['key']]:,} | {tt:,} "
                     f"| {r['code'] / tt:.2f} |")
        print(line)
    for r in rows:
        if "layers" not in r:
            continue
        print(f"\n{NAMES[r['key']]}: instructions per layer\n\n| layer class | MACs | instructions | MAC/instr |\n"
              "|---|---:|---:|---:|")
        for cls, macs, n in r["layers"]:
            print(f"| {cls} | {macs:,} | {n:,} | {macs / n:.3f} |" if macs and n else f"| {cls} | - | {n:,} | - |")
        print(f"\n{NAMES[r['key']]}: per kernel class (class MACs / class instructions)\n\n"
              "| kernel class | layers | MACs | instructions | MAC/instr |\n|---|---:|---:|---:|---:|")
        for cls, (count, macs, n) in class_totals(r["layers"]).items():
            print(f"| {cls} | {count} | {macs:,} | {n:,} | {macs / n:.3f} |")


if __name__ == "__main__":
    main()
