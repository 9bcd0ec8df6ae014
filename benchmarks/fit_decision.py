"""How long mcutool takes to say a model does not fit (issue 12): the decision comes from the plan (arena of
the chosen schedule, and the smallest arena any patch plan reaches), before any kernel is generated.

    python benchmarks/fit_decision.py      (from the repository root; builds the test networks in a temp dir)

For each case: the board, the seconds from calling compile to the UserError, and its message.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from mcutool.compiler import Options, compile_model  # noqa: E402
from mcutool.errors import UserError  # noqa: E402
from patch_nets import MOBILENETV2_100, build_net  # noqa: E402


def refusal(model: Path, board: str, out: Path, opts: Options) -> tuple[float, str]:
    start = time.perf_counter()
    try:
        compile_model(model, board, out, opts)
    except UserError as err:
        return time.perf_counter() - start, str(err)
    raise SystemExit(f"{model.name} unexpectedly fits {board}")


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        model = build_net(tmp / "mbv2_100_exported.tflite", [("nchw",)] + MOBILENETV2_100, (1, 224, 224, 3),
                          seed=1, n_calib=4, explicit_pad=True)
        cases = [("MobileNetV2-1.0 224 as exported, defaults", "stm32f405", Options()),
                 ("MobileNetV2-1.0 224 as exported, --patch off", "stm32f746", Options(patch="off"))]
        for name, board, opts in cases:
            seconds, message = refusal(model, board, tmp / "out", opts)
            print(f"{name} on {board}: refused after {seconds:.1f} s (no kernel generated)\n  {message}\n")


if __name__ == "__main__":
    main()
