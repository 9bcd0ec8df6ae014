"""RESIZE_NEAREST_NEIGHBOR and RESIZE_BILINEAR (int8): the reference equals the tflite-micro interpreter on
one-op models over up- and down-sampling, align_corners and half_pixel_centers, and the runtime/ kernels equal the
reference on the host."""
from __future__ import annotations

import pytest

from op_cases import OpCase, check_kernels, check_reference, one_op_model

CONFIGS = [  # input shape, output H, W, align_corners, half_pixel_centers
    ((1, 3, 4, 2), (6, 8), False, False),
    ((1, 3, 4, 2), (7, 5), True, False),
    ((2, 5, 6, 3), (3, 4), False, True),
    ((1, 4, 4, 1), (9, 10), False, True),
    ((1, 7, 5, 4), (2, 11), True, False),
    ((1, 1, 3, 2), (4, 1), False, False),
]


def _cases(op: str, options: str) -> list[OpCase]:
    cases = []
    for i, (shape, (oh, ow), align, half) in enumerate(CONFIGS):
        b = one_op_model(op, [shape], [(shape[0], oh, ow, shape[3])], [[oh, ow]], options,
                         AlignCorners=align, HalfPixelCenters=half)
        cases.append(OpCase(f"{op.lower()}_{i}", b, seed=i, runs=10))
    return cases


CASES = _cases("RESIZE_NEAREST_NEIGHBOR", "ResizeNearestNeighborOptions") + _cases("RESIZE_BILINEAR",
                                                                                   "ResizeBilinearOptions")


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("resize")
    return {c.name: check_reference(c, tmp) for c in CASES}, tmp


@pytest.mark.parametrize("kind", ["resize_nearest_neighbor", "resize_bilinear"])
def test_reference_matches_tflite_micro(checked, kind):
    counts, _ = checked
    mine = [k for n, k in counts.items() if n.rsplit("_", 1)[0] == kind]
    assert len(mine) == len(CONFIGS) and all(k == 10 for k in mine)


def test_kernels_match_reference(checked):
    _, tmp = checked
    check_kernels(CASES, tmp)
