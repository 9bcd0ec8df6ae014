"""Fuzz mcutool's importers and planner with mutated real model files (issue 13); the long version of
tests/test_fuzz.py.

    python benchmarks/fuzz.py --cases 20000 [--builds 100] [--seed 0]

Mutates the shared TFLite models and ONNX conformance models (truncation, byte flips, out-of-range tensor/buffer
indices, wrong shapes and buffer sizes, zero/NaN/inf scales, huge dimensions, bad attributes; tests/fuzzing.py),
runs each through import, quantization and planning in a memory-limited worker, and builds --builds of them
(weight-byte flips: valid models) with the host gcc and compares one random input with the reference. Prints the
counts by outcome and by mutation, and the first failures; exits 1 if any case crashed, hung or differed.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import fuzzing  # noqa: E402


def progress(result, n: int, total: int) -> None:
    if n % 500 == 0 or n == total or result.outcome in fuzzing.BAD:
        print(f"  {n}/{total} {result.case.seed} {result.case.mutation}: {result.outcome}", file=sys.stderr,
              flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=2000, help="mutated files through import and planning")
    ap.add_argument("--builds", type=int, default=20, help="weight-flipped models built and run on the host")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    start = time.monotonic()
    results = fuzzing.run_all(fuzzing.cases(args.cases, args.seed), fuzzing.plan_case, fuzzing.PLAN_TIMEOUT,
                              limit_memory=True, on_result=progress)
    planned_s = time.monotonic() - start
    builds = fuzzing.run_all(fuzzing.build_cases(args.builds, args.seed), fuzzing.build_case,
                             fuzzing.BUILD_TIMEOUT, limit_memory=False, on_result=progress)
    print(f"import + planning: {args.cases} mutated files in {planned_s:.0f} s")
    for outcome, n in fuzzing.counts(results).items():
        print(f"  {outcome:<12}{n:>8}")
    by_kind = Counter((r.case.mutation, r.outcome) for r in results)
    print("by mutation (rejected / planned / other):")
    for kind in sorted({k for k, _ in by_kind}):
        other = sum(n for (k, o), n in by_kind.items() if k == kind and o not in ("rejected", "planned"))
        print(f"  {kind:<14}{by_kind[(kind, 'rejected')]:>8}{by_kind[(kind, 'planned')]:>8}{other:>8}")
    print(f"built and run on the host: {args.builds} weight-flipped models")
    for outcome, n in fuzzing.counts(builds).items():
        print(f"  {outcome:<12}{n:>8}")
    bad = [r for r in results + builds if r.outcome in fuzzing.BAD]
    for r in bad[:10]:
        print(f"\n{r.case.seed} / {r.case.mutation}: {r.outcome}\n{r.message[-2000:]}")
    print(f"total {time.monotonic() - start:.0f} s")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
