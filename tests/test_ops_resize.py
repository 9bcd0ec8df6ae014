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


def _cases(op: str, options: str, dtype: str = "int8") -> list[OpCase]:
    cases = []
    for i, (shape, (oh, ow), align, half) in enumerate(CONFIGS):
        b = one_op_model(op, [shape], [(shape[0], oh, ow, shape[3])], [[oh, ow]], options, dtype=dtype,
                         AlignCorners=align, HalfPixelCenters=half)
        suffix = "_int16" if dtype == "int16" else ""
        cases.append(OpCase(f"{op.lower()}{suffix}_{i}", b, seed=i, runs=10))
    return cases


# TFLite Micro has an int16 RESIZE_NEAREST_NEIGHBOR (its kernel copies pixels; so does mcutool's, as bytes), and
# no int16 RESIZE_BILINEAR.
CASES = (_cases("RESIZE_NEAREST_NEIGHBOR", "ResizeNearestNeighborOptions") + _cases("RESIZE_BILINEAR",
                                                                                    "ResizeBilinearOptions")
         + _cases("RESIZE_NEAREST_NEIGHBOR", "ResizeNearestNeighborOptions", "int16"))


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("resize")
    return {c.name: check_reference(c, tmp) for c in CASES}, tmp


@pytest.mark.parametrize("kind", ["resize_nearest_neighbor", "resize_bilinear", "resize_nearest_neighbor_int16"])
def test_reference_matches_tflite_micro(checked, kind):
    counts, _ = checked
    mine = [k for n, k in counts.items() if n.rsplit("_", 1)[0] == kind]
    assert len(mine) == len(CONFIGS) and all(k == 10 for k in mine)


def test_kernels_match_reference(checked):
    _, tmp = checked
    check_kernels(CASES, tmp)


def test_float_resize_bilinear_close_to_tflite_runtime(tmp_path):
    """The float32 path (calibration of float models) agrees with tflite-runtime's float kernel to float
    rounding, over the same configurations."""
    import numpy as np

    from tflite_builder import ModelBuilder, RefInterpreter

    from mcutool import reference
    from mcutool.frontends.tflite import load_tflite

    rng = np.random.default_rng(4)
    for i, (shape, (oh, ow), align, half) in enumerate(CONFIGS):
        b = ModelBuilder()
        x = b.tensor("x", shape, "float32")
        y = b.tensor("y", (shape[0], oh, ow, shape[3]), "float32")
        b.op("RESIZE_BILINEAR", [x, b.const("size", np.array([oh, ow], np.int32))], [y], "ResizeBilinearOptions",
             AlignCorners=align, HalfPixelCenters=half)
        b.inputs, b.outputs = [x], [y]
        path = b.write(tmp_path / f"f{i}.tflite")
        v = rng.uniform(-3, 3, size=shape).astype(np.float32)
        want = RefInterpreter(path)(v)[0]
        got = reference.run(load_tflite(path), {"x": v})["y"]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
