"""Per-layer weight widths under a flash budget (issue 15, must-show 2).

    python benchmarks/mixed_precision.py [MODEL.tflite ...]

For each float model (default: MLPerf Tiny's ResNet-8 and the briefly trained VWW-shaped network of
tests/converter_models/vww_float.tflite, where present): calibrates on 200 structured images (tests/
structured_images.py, seed 1, as benchmarks/ptq_agreement.py does), then for weight budgets of 100, 75, 60 and
50 % of the all-int8 model's constant bytes, quantizes as `mcutool quantize --weights` does (mixed.Calibration: the
default auto ranges, GPTQ int4 rounding against each channel's error as the network's outputs see it
(quantize/output_hessians.py) with its clip chosen by that error, each bias corrected for its layer's weights at
their width) with the automatic choice (mcutool.quantize.mixed:
sensitivity per layer, knapsack, the best measured of it and the fixed rules, each also with int16 activations on
its int8-weight layers unless --activations int8) and with each fixed rule that fits
the same budget (all int4; first and last weighted layer int8, the rest int4; all int8 at 100 %), and measures
output SQNR and top-1 agreement against the float model on 500 held-apart images (seed 2). int4 weights of conv
and fully connected layers are rounded by GPTQ in every row. Prints a Markdown table per model.
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from mcutool.errors import UserError  # noqa: E402
from mcutool.frontends import load_model  # noqa: E402
from mcutool.quantize import mixed  # noqa: E402
from mcutool.quantize.ptq import agreement_report  # noqa: E402
from structured_images import structured_images  # noqa: E402

MODELS = [ROOT.parent / "shared" / "models" / "resnet8_float.tflite",
          ROOT / "tests" / "converter_models" / "vww_float.tflite"]
BUDGETS = (1.0, 0.75, 0.60, 0.50)
INPUT_SCALE = {"resnet8_float": 255.0}  # MLPerf Tiny's ResNet-8 takes raw pixel values; others [0, 1]


def images(graph, n: int, seed: int, scale: float):
    shape = graph.tensor(graph.inputs[0]).shape  # (1, H, W, 3)
    return {graph.inputs[0]: structured_images(n, seed, size=shape[1], scale=scale)}


def table(path: Path, scale: float, activations: str, n_calib: int = 200, test_seed: int = 2) -> str:
    g = load_model(path)
    cal, test = images(g, n_calib, 1, scale), images(g, 500, test_seed, scale)
    calib = mixed.Calibration(g, cal)  # as quantize_mixed: auto ranges, GPTQ, bias correction per width
    chooser = mixed.WidthChooser(calib, cal, activations)
    rules = mixed.fixed_rules(chooser.layers)
    lines = [f"{path.name}: {len(chooser.layers)} weighted layers, int8 constants {chooser.int8_bytes:,} B, "
             f"all-int4 {chooser.all4_bytes:,} B", "",
             "| budget | weights | rule | bytes | of int8 | SQNR (dB) | top-1 agreement |",
             "|---|---|---|---:|---:|---:|---:|"]
    measured = {}

    def row(frac, budget, rule, bits, act16=()):
        key = (tuple(sorted(bits.items())), tuple(sorted(act16)))
        if key not in measured:
            (r,) = agreement_report(g, calib.quantize(bits, act16=act16), test)
            measured[key] = r
        r = measured[key]
        nbytes = chooser.bytes_of(bits)
        widths = "".join("H" if n in act16 else "8" if bits[n] == 8 else "4" for n in chooser.layers)
        if act16:
            rule += f", activations {chooser.sram_of(bits, act16):,} B"
        lines.append(f"| {frac:.0%} ({budget:,} B) | {widths} | {rule} | {nbytes:,} | {nbytes / chooser.int8_bytes:.3f} "
                     f"| {r['sqnr_db']:.2f} | {r.get('top1_agreement', float('nan')) * 100:.1f} % |")

    for frac in BUDGETS:
        budget = int(frac * chooser.int8_bytes)
        try:
            choice = chooser.choose(budget)
        except UserError:
            lines.append(f"| {frac:.0%} ({budget:,} B) | - | nothing fits (all int4 needs {chooser.all4_bytes:,} B) "
                         "| | | | |")
            continue
        row(frac, budget, f"automatic ({choice.rule})", choice.bits, choice.act16)
        for name, bits in rules.items():
            if chooser.bytes_of(bits) <= budget:
                row(frac, budget, name, bits)
    lines.append("")
    lines.append("weights: one digit per weighted layer in graph order (8 = int8, 4 = int4, H = int8 weights with "
                 "int16 activations, TFLite's 16x8; activations: the layerwise peak of live activation bytes). "
                 "Sensitivity (output SQNR on the calibration images with only that layer int4"
                 + "): "
                 + ", ".join(f"{n} {chooser.sensitivity_db(n):.1f} dB" for n in chooser.layers))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*", type=Path, default=None)
    ap.add_argument("--activations", choices=mixed.ACTIVATION_MODES, default="auto",
                    help="the automatic choice's activations: int8, or auto (int16 where it measures better)")
    ap.add_argument("--calib-images", type=int, default=200, help="calibration images (seed 1)")
    ap.add_argument("--test-seed", type=int, default=2, help="the seed of the 500 held-apart images")
    args = ap.parse_args()
    for path in args.models or MODELS:
        if not path.exists():
            print(f"{path}: missing, skipped\n")
            continue
        print(table(path, INPUT_SCALE.get(path.stem, 1.0), args.activations, args.calib_images, args.test_seed))
        print()


if __name__ == "__main__":
    main()
