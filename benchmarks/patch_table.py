"""Print the README's patch-based inference table: per model, the layer-wise bound, our arena without patches,
with patches (the plan `--patch auto` takes when the layer-by-layer arena does not fit: the lowest arena whose
extra MACs stay within 20 %, one patched stage or two), the grid and split layer of each stage, and the extra
MACs. Models are planned as compile plans them: swish (x * LOGISTIC(x)) fused into a table and exporters' PADs
folded into the convs first (fuse_swish, fold_pads).

    python benchmarks/patch_table.py          (from the repository root; builds the test networks in a temp dir)
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from mcutool.frontends import load_model  # noqa: E402
from mcutool.schedule import patch  # noqa: E402
from mcutool.schedule.fuse import fuse_swish  # noqa: E402
from mcutool.schedule.liveness import layerwise_peak_bytes  # noqa: E402
from mcutool.schedule.padding import fold_pads  # noqa: E402
from patch_nets import MOBILENETV2_035, MOBILENETV2_100, build_net  # noqa: E402
from test_patch import NETS  # noqa: E402

SHARED = ROOT.parent / "shared" / "models"
SHARED_INT8 = ["kws_ref_model.tflite", "ad01_int8.tflite", "micro_speech_quantized.tflite", "hello_world_int8.tflite"]
MAX_OVERHEAD = 20.0


def models(tmp: Path) -> list[tuple[str, Path]]:
    found = [(name, SHARED / name) for name in SHARED_INT8 if (SHARED / name).exists()]
    for name, (specs, shape, seed) in NETS.items():
        found.append((f"{name} (test net)", build_net(tmp / f"{name}.tflite", specs, shape, seed=seed)))
    found.append(("MobileNetV2-0.35 224x224 (test net)",
                  build_net(tmp / "mbv2.tflite", MOBILENETV2_035, (1, 224, 224, 3), seed=1, n_calib=12)))
    found.append(("MobileNetV2-1.0 224x224, 1000 classes (test net)",
                  build_net(tmp / "mbv2_100.tflite", MOBILENETV2_100, (1, 224, 224, 3), seed=1, n_calib=4)))
    found.append(("MobileNetV2-1.0 224x224 as exported: NCHW + TRANSPOSE, PAD + VALID 3x3 convs (test net)",
                  build_net(tmp / "mbv2_100_exported.tflite", [("nchw",)] + MOBILENETV2_100, (1, 224, 224, 3),
                            seed=1, n_calib=4, explicit_pad=True)))
    return found


def row(name: str, path: Path) -> list[str]:
    model = load_model(path)
    graph = fold_pads(fuse_swish(model))
    # limit 0: the layer-by-layer arena never fits, so this is the plan auto takes when it must patch
    choice = patch.choose_plan(graph, "auto", 0, 0, MAX_OVERHEAD)
    p = choice.plan
    with_patches = (f"{choice.arena_bytes:,}" if p else "—")
    plan = " + ".join(f"{q.grid}x{q.grid}, split {q.split_layer}" for q in choice.plans) if p else choice.reason
    extra = f"{choice.extra_macs_pct:.1f} %" if p else "—"
    return [name, f"{layerwise_peak_bytes(model):,}", f"{choice.unpatched_bytes:,}", with_patches, plan, extra]


def main() -> None:
    header = ["model", "layer-wise bound (B)", "arena, no patches (B)", "arena, patches (B)", "plan",
              "extra MACs"]
    with tempfile.TemporaryDirectory() as d:
        rows = [row(name, path) for name, path in models(Path(d))]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
