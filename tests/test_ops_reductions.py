"""REDUCE_MAX, SUM, ARG_MAX, ARG_MIN (int8): the reference equals the tflite-micro interpreter on one-op models,
and the runtime/ kernels (REDUCE_MAX's, MEAN's for SUM, ARG_MIN_MAX's with int32 indices) equal the reference."""
from __future__ import annotations

import numpy as np
import pytest

from op_cases import OpCase, check_kernels, check_reference, one_op_model
from tflite_builder import ModelBuilder


def reducer_case(op, i, shape, axes, keep, in_q, out_q):
    red = {a % len(shape) for a in axes}
    out = tuple(1 if k in red else d for k, d in enumerate(shape) if keep or k not in red)
    b = one_op_model(op, [shape], [out], [np.array(axes, np.int32)], "ReducerOptions", in_q=in_q, out_q=out_q,
                     KeepDims=keep)
    return OpCase(f"{op.lower()}_{i}", b, seed=80 + i)


def arg_case(op, i, shape, axis, low_variety=False):
    a = axis % len(shape)
    out = tuple(d for k, d in enumerate(shape) if k != a)
    b = ModelBuilder()
    x = b.tensor("x0", shape, "int8", scale=0.1, zero_point=2)
    y = b.tensor("y0", out, "int32")
    b.op(op, [x, b.const("axis", np.array([axis], np.int32))], [y], f"{op.title().replace('_', '')}Options",
         OutputType=2)  # TensorType.INT32
    b.inputs, b.outputs = [x], [y]
    case = OpCase(f"{op.lower()}_{i}", b, seed=90 + i)
    if low_variety:  # many ties: values from {-1, 0, 1} only, so the first index must win
        rng = np.random.default_rng(i)
        case.inputs = [[rng.integers(-1, 2, size=shape, dtype=np.int8)] for _ in range(12)]
    return case


Q1, Q2 = (0.05, -3), (0.2, 10)
CASES = [
    reducer_case("REDUCE_MAX", 0, (1, 5, 7, 6), (1, 2), True, Q1, Q1),
    reducer_case("REDUCE_MAX", 1, (2, 4, 6, 3), (3,), False, Q1, Q1),
    reducer_case("REDUCE_MAX", 2, (3, 8, 5), (0, 2), False, Q1, Q1),
    reducer_case("REDUCE_MAX", 3, (4, 9), (-1,), True, Q1, Q1),
    reducer_case("SUM", 0, (1, 5, 7, 6), (1, 2), True, Q1, (1.5, -7)),
    reducer_case("SUM", 1, (2, 4, 6, 3), (3,), False, Q1, Q2),
    reducer_case("SUM", 2, (3, 8, 5), (1,), False, (0.02, 50), (0.05, -30)),
    reducer_case("SUM", 3, (4, 9), (-1,), True, Q2, Q2),
    arg_case("ARG_MAX", 0, (1, 10), 1),
    arg_case("ARG_MAX", 1, (2, 5, 4, 3), 2),
    arg_case("ARG_MAX", 2, (3, 7, 6), 0, low_variety=True),
    arg_case("ARG_MIN", 0, (1, 10), -1),
    arg_case("ARG_MIN", 1, (2, 5, 4, 3), 3, low_variety=True),
    arg_case("ARG_MIN", 2, (3, 7, 6), 1),
]


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reductions")
    return {c.name: check_reference(c, tmp) for c in CASES}, tmp


@pytest.mark.parametrize("kind", ["reduce_max", "sum", "arg_max", "arg_min"])
def test_reference_matches_tflite_micro(checked, kind):
    counts, _ = checked
    mine = [k for n, k in counts.items() if n.rsplit("_", 1)[0] == kind]
    assert len(mine) >= 3 and all(k == 12 for k in mine)


def test_kernels_match_reference(checked):
    _, tmp = checked
    check_kernels(CASES, tmp)
