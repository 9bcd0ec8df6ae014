"""Fuzzing in CI (issue 13, must-show 4): mutated TFLite and ONNX files through import and planning, and some
of them built and run on the host; every case ends in a clear error or a correct compile (tests/fuzzing.py).
The long run: python benchmarks/fuzz.py --cases 20000."""
import fuzzing
from conftest import require_tool

PLAN_CASES = 600
BUILD_CASES = 20


def _report(results):
    bad = [r for r in results if r.outcome in fuzzing.BAD]
    return "\n\n".join(f"{r.case.seed} / {r.case.mutation}: {r.outcome}\n{r.message[-1500:]}" for r in bad[:5])


def test_mutated_files_import_and_plan_or_fail_clearly():
    items = fuzzing.cases(PLAN_CASES, seed=13)
    assert {c.suffix for c in items} == {".tflite", ".onnx"}
    results = fuzzing.run_all(items, fuzzing.plan_case, fuzzing.PLAN_TIMEOUT, limit_memory=True)
    counts = fuzzing.counts(results)
    assert not any(o in counts for o in fuzzing.BAD), f"{counts}\n{_report(results)}"
    assert counts.get("rejected", 0) >= 100 and counts.get("planned", 0) >= 100, counts  # both outcomes exercised
    # every kind of mutation was tried
    kinds = {r.case.mutation for r in results}
    assert {"truncate", "flip", "shape", "huge_dim", "scale", "buffer_index", "op_index", "init_dims"} <= kinds, kinds


def test_mutated_files_that_compile_build_and_equal_the_reference():
    require_tool("gcc")
    # mutations that still plan (an int8 single-input model with changed scales, shapes or bytes), topped up with
    # weight-byte flips (always a valid model), each generated, built with the host gcc (ASan/UBSan) and run
    planned = [r.case for r in fuzzing.run_all(fuzzing.cases(90, seed=14), fuzzing.plan_case, fuzzing.PLAN_TIMEOUT,
                                               limit_memory=True)
               if r.outcome == "planned" and r.case.seed in fuzzing.BUILD_SEEDS]
    items = planned[:BUILD_CASES // 2]
    items += fuzzing.build_cases(BUILD_CASES - len(items), seed=14)
    results = fuzzing.run_all(items, fuzzing.build_case, fuzzing.BUILD_TIMEOUT, limit_memory=False)
    counts = fuzzing.counts(results)
    assert not any(o in counts for o in fuzzing.BAD), f"{counts}\n{_report(results)}"
    assert counts.get("built-equal", 0) >= BUILD_CASES - len(planned[:BUILD_CASES // 2]), counts
