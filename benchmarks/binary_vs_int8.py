"""Binary layers vs the same layers in int8 on one board (issue 6, must-show 3).

    python benchmarks/binary_vs_int8.py [--board stm32f746] [-o build/binary_vs_int8]

Builds the issue's binarized CNN (tests/bnn_builder.py: int8 first conv, four binary convs with BatchNorm + Sign,
max pools, float Gemm), quantizes it (mcutool.quantize.ptq, 64 calibration images; also written as a QDQ ONNX
file, bnn_int8.onnx, which `mcutool bench --binarize auto|off` compiles to the same graph) and compiles it twice:
`--binarize auto` (binary layers) and `--binarize off` (the same network with those layers as int8 convs and
int8 Sign/MaxPool ops). Both run once in QEMU with per-layer instruction counts (what `mcutool bench` prints).
Prints each layer's instructions in both builds and the ratios: the binary convs against the same convs in
int8, and the whole binarized stretch (binary convs + the max pools and signs they absorb) against its int8
counterpart. Instructions retired under -icount shift=0 (QEMU is not cycle accurate).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from bnn_builder import build_bnn, float_to_int8_graph, random_inputs, to_qdq_onnx  # noqa: E402
from mcutool.compiler import Options, compile_model, profile_layers, run_build  # noqa: E402


def measure(path: Path, g8, board: str, out: Path, mode: str, x: np.ndarray) -> tuple[dict, dict]:
    report = compile_model(path, board, out, Options(binarize=mode), graph=g8)
    _, info = run_build(out, [x])
    info["layers"] = profile_layers(out, [x])
    return report, info


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="stm32f746")
    ap.add_argument("-o", "--out", default="build/binary_vs_int8")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "bnn.onnx"
    model = build_bnn(seed=0)
    onnx.save(model, path)
    g8 = float_to_int8_graph(path, random_inputs(64, 99))
    onnx.save(to_qdq_onnx(model, g8), out / "bnn_int8.onnx")  # the same int8 graph as a file, for the CLI
    q = g8.tensor(g8.inputs[0]).quant
    x = np.clip(np.round(random_inputs(1, 7) / q.scale[0]) + q.zero_point[0], -128, 127).astype(np.int8)

    runs = {mode: measure(path, g8, args.board, out / mode, mode, x) for mode in ("auto", "off")}
    (rb, ib), (r8, i8) = runs["auto"], runs["off"]
    macs = {r["name"]: r["macs"] for r in r8["layers"]}
    binary = {r["name"]: r for r in ib["layers"] if r["op"].startswith("binary_")}
    int8 = {r["name"]: r for r in i8["layers"]}
    convs = [n for n, r in binary.items() if r["op"] == "binary_conv2d"]

    print(f"board {args.board}, instructions per layer (QEMU -icount shift=0), one inference")
    print(f"{'layer':<14}{'binary op':<20}{'binary':>12}   {'int8 op':<12}{'int8':>12}{'MACs':>12}"
          f"{'int8 MAC/instr':>16}")
    for name in convs:
        b, i = binary[name], int8[name]
        print(f"{name:<14}{b['op']:<20}{b['instructions']:>12,}   {i['op']:<12}{i['instructions']:>12,}"
              f"{macs[name]:>12,}{macs[name] / i['instructions']:>16.3f}")
    b_conv = sum(binary[n]["instructions"] for n in convs)
    i_conv = sum(int8[n]["instructions"] for n in convs)
    conv_macs = sum(macs[n] for n in convs)
    print(f"\nbinary convs ({', '.join(convs)}): {b_conv:,} instructions; the same convs in int8: {i_conv:,} "
          f"({conv_macs / i_conv:.3f} MACs/instruction); ratio {i_conv / b_conv:.2f}x")

    # the whole binarized stretch: binary convs and pools vs int8 convs, signs and pools (the first layer and the
    # classifier are int8 in both builds and are left out; the fused first layer also absorbs sign0)
    absorbed = [r for r in i8["layers"] if r["op"] in ("sign", "max_pool2d") and r["name"] != "sign0"]
    b_all = b_conv + sum(r["instructions"] for r in ib["layers"] if r["op"] == "binary_max_pool2d")
    i_all = i_conv + sum(r["instructions"] for r in absorbed)
    print(f"binary stretch (convs + bit max pools): {b_all:,}; int8 (convs + {len(absorbed)} sign/max-pool ops): "
          f"{i_all:,}; ratio {i_all / b_all:.2f}x")
    print(f"whole network: binarized {ib['instructions']:,}, int8 {i8['instructions']:,} instructions "
          f"({i8['instructions'] / ib['instructions']:.2f}x)")
    wb = sum(r["weights_bytes"] for r in rb["layers"] if r["name"] in convs)
    w8 = sum(r["weights_bytes"] for r in r8["layers"] if r["name"] in convs)
    print(f"weights of those layers (report.json): binary {wb:,} B, int8 {w8:,} B (1/{w8 / wb:.2f})")
    print(f"\nthe same from the command line (the int8 copy as a QDQ ONNX file):\n"
          f"  mcutool bench {out / 'bnn_int8.onnx'} --board {args.board} --binarize auto\n"
          f"  mcutool bench {out / 'bnn_int8.onnx'} --board {args.board} --binarize off")
    return 0


if __name__ == "__main__":
    sys.exit(main())
