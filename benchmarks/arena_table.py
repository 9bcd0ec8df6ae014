"""Arena per model as a markdown table: layer-wise bound, mcutool's arena (no patches), TFLite Micro's greedy
planner on the same tensors, and TFLite Micro's arena need (smallest arena_size its interpreter accepts).

    python benchmarks/arena_table.py        (from the checkout; uses ../shared/models and tests/ helpers)

The greedy planner and TFLM's need come from tests/arena_yardsticks.py; the branched graphs from
tests/branched_models.py (random weights, calibrated int8). TFLM's need is a 64-bit host build's and counts its
own structures and persistent kernel data besides activations (see arena_yardsticks.py).
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import arena_yardsticks as yard  # noqa: E402
import branched_models as nets  # noqa: E402
from mcutool.frontends import load_model  # noqa: E402
from mcutool.schedule.liveness import layerwise_peak_bytes  # noqa: E402
from mcutool.schedule.order import schedule_ops  # noqa: E402

SHARED = ["kws_ref_model.tflite", "ad01_int8.tflite", "micro_speech_quantized.tflite", "hello_world_int8.tflite"]


def row(label: str, path: Path) -> str:
    graph = load_model(path)
    scheduled, plan = schedule_ops(graph)
    bound, greedy, tflm = layerwise_peak_bytes(graph), yard.greedy_by_size_arena(graph), yard.tflm_arena_need(path)
    notes = [plan.strategy + (" (optimal for this order)" if plan.exact else "")]
    if plan.in_place:
        notes.append("in place: " + ", ".join(sorted(plan.in_place)))
    if [o.name for o in scheduled.ops] != [o.name for o in graph.ops]:
        notes.append("reordered")
    return (f"| {label} | {bound:,} | {plan.size:,} | {greedy:,} | {tflm:,} | {plan.size / bound:.3f} | "
            f"{'; '.join(notes)} |")


def main() -> None:
    print("| model | layer-wise bound (B) | mcutool arena (B) | TFLM greedy planner (B) | TFLM arena need (B) "
          "| arena / bound | plan |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name in SHARED:
        print(row(name, ROOT.parent / "shared" / "models" / name))
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in nets.NETS.items():
            net = make()
            path, _ = net.write(Path(tmp) / f"{name}.tflite", nets.inputs(net.shapes["x"], 32, seed=1))
            print(row(f"{name} (branched, built in tests)", path))


if __name__ == "__main__":
    main()
