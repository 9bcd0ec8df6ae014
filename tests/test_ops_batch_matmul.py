"""BATCH_MATMUL (int8): the reference equals the tflite-micro interpreter -- two activations (attention's
Q x K^T), a constant right-hand side (a dense layer on a sequence), adj_x / adj_y, broadcast batch axes -- and the
runtime/ kernel equals the reference on the host."""
from __future__ import annotations

import numpy as np
import pytest

from op_cases import OpCase, check_kernels, check_reference
from tflite_builder import ModelBuilder


def matmul_case(i, lhs_shape, rhs_shape, out_shape, adj_x=False, adj_y=False, rhs_const=False,
                q=((0.05, -3), (0.04, 7), (0.3, 5))):
    (sa, za), (sb, zb), (so, zo) = q
    b = ModelBuilder()
    lhs = b.tensor("x0", lhs_shape, "int8", scale=sa, zero_point=za)
    data = np.random.default_rng(100 + i).integers(-128, 128, size=rhs_shape) if rhs_const else None
    rhs = b.tensor("x1" if not rhs_const else "w", rhs_shape, "int8", scale=sb, zero_point=zb, data=data)
    y = b.tensor("y0", out_shape, "int8", scale=so, zero_point=zo)
    b.op("BATCH_MATMUL", [lhs, rhs], [y], "BatchMatMulOptions", AdjX=adj_x, AdjY=adj_y)
    b.inputs, b.outputs = ([lhs] if rhs_const else [lhs, rhs]), [y]
    return OpCase(f"batch_matmul_{i}", b, seed=110 + i)


CASES = [
    matmul_case(0, (1, 4, 6), (1, 6, 5), (1, 4, 5)),
    matmul_case(1, (2, 3, 7), (2, 5, 7), (2, 3, 5), adj_y=True),                   # Q x K^T
    matmul_case(2, (2, 7, 3), (2, 7, 4), (2, 3, 4), adj_x=True),
    matmul_case(3, (1, 5, 8), (8, 6), (1, 5, 6), rhs_const=True),                  # a dense layer on a sequence
    matmul_case(4, (2, 3, 4, 6), (1, 3, 6, 2), (2, 3, 4, 2)),                      # batch broadcast
    matmul_case(5, (3, 4), (5, 4), (3, 5), adj_y=True, rhs_const=True, q=((0.02, 0), (0.01, 0), (0.05, -1))),
]


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("batch_matmul")
    return {c.name: check_reference(c, tmp) for c in CASES}, tmp


def test_reference_matches_tflite_micro(checked):
    counts, _ = checked
    assert len(counts) == len(CASES) and all(k == 12 for k in counts.values())


def test_kernel_matches_reference(checked):
    _, tmp = checked
    check_kernels(CASES, tmp)
