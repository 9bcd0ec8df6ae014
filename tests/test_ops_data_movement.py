"""SLICE, SPLIT, SPLIT_V, PACK, UNPACK, GATHER, DEPTH_TO_SPACE, SPACE_TO_DEPTH: the reference equals the
tflite-micro interpreter on one-op int8 models, and the runtime/ kernels (several outputs for SPLIT / UNPACK,
several inputs for PACK) equal the reference."""
from __future__ import annotations

import numpy as np
import pytest

from op_cases import OpCase, check_kernels, check_reference, one_op_model

_one_op = one_op_model


def slice_case(i, shape, begin, size, out, dtype="int8"):
    return OpCase(f"slice_{i}", _one_op("SLICE", [shape], [out], [begin, size], dtype=dtype), seed=i)


def split_case(i, shape, axis, n, dtype="int8"):
    out = list(shape)
    out[axis] //= n
    return OpCase(f"split_{i}", _one_op("SPLIT", [shape], [tuple(out)] * n, [[axis]], "SplitOptions",
                                        const_first=True, dtype=dtype, NumSplits=n), seed=10 + i)


def split_v_case(i, shape, axis, sizes, dtype="int8"):
    outs = []
    resolved = [s if s != -1 else shape[axis] - sum(v for v in sizes if v != -1) for s in sizes]
    for s in resolved:
        o = list(shape)
        o[axis] = s
        outs.append(tuple(o))
    return OpCase(f"split_v_{i}", _one_op("SPLIT_V", [shape], outs, [sizes, [axis]], "SplitVOptions",
                                          dtype=dtype, NumSplits=len(sizes)), seed=20 + i)


def pack_case(i, shape, n, axis, dtype="int8"):
    out = list(shape)
    out.insert(axis % (len(shape) + 1), n)
    return OpCase(f"pack_{i}", _one_op("PACK", [shape] * n, [tuple(out)], options="PackOptions", dtype=dtype,
                                       ValuesCount=n, Axis=axis), seed=30 + i)


def unpack_case(i, shape, axis, dtype="int8"):
    a = axis % len(shape)
    out = tuple(d for k, d in enumerate(shape) if k != a)
    return OpCase(f"unpack_{i}", _one_op("UNPACK", [shape], [out] * shape[a], options="UnpackOptions",
                                         dtype=dtype, Num=shape[a], Axis=axis), seed=40 + i)


def gather_case(i, shape, indices, axis, batch_dims=0):
    indices = np.asarray(indices, np.int32)
    a = axis % len(shape)
    out = shape[:a] + indices.shape[batch_dims:] + shape[a + 1:]
    return OpCase(f"gather_{i}", _one_op("GATHER", [shape], [out], [indices], "GatherOptions", Axis=axis,
                                         BatchDims=batch_dims), seed=50 + i)


def depth_to_space_case(i, shape, block):
    n, h, w, c = shape
    out = (n, h * block, w * block, c // (block * block))
    return OpCase(f"depth_to_space_{i}", _one_op("DEPTH_TO_SPACE", [shape], [out], options="DepthToSpaceOptions",
                                                 BlockSize=block), seed=60 + i)


def space_to_depth_case(i, shape, block):
    n, h, w, c = shape
    out = (n, h // block, w // block, c * block * block)
    return OpCase(f"space_to_depth_{i}", _one_op("SPACE_TO_DEPTH", [shape], [out], options="SpaceToDepthOptions",
                                                 BlockSize=block), seed=70 + i)


CASES = [
    slice_case(0, (1, 6, 5, 4), [0, 1, 2, 1], [1, 3, -1, 2], (1, 3, 3, 2)),
    slice_case(1, (2, 7, 9), [1, 0, 4], [1, 7, 5], (1, 7, 5)),
    slice_case(2, (10, 6), [3, 0], [-1, 6], (7, 6)),
    slice_case(3, (2, 3, 4, 5), [1, 2, 0, 0], [1, 1, 4, 5], (1, 1, 4, 5)),
    split_case(0, (1, 4, 6, 8), 3, 2),
    split_case(1, (2, 6, 3), 1, 3),
    split_case(2, (12,), 0, 4),
    split_case(3, (3, 4, 5, 2), -3, 2),
    split_v_case(0, (1, 5, 5, 7), 3, [2, 4, 1]),
    split_v_case(1, (2, 9, 3), 1, [4, -1]),
    split_v_case(2, (8, 3), 0, [1, 1, 6]),
    pack_case(0, (3, 4), 3, 0),
    pack_case(1, (2, 5, 3), 2, 3),
    pack_case(2, (4, 6), 4, 1),
    pack_case(3, (7,), 2, -1),
    unpack_case(0, (3, 4, 5), 0),
    unpack_case(1, (2, 3, 4, 2), 3),
    unpack_case(2, (2, 5, 3), 1),
    unpack_case(3, (4, 6), -1),
    gather_case(0, (10, 6), [3, 0, 9, 3, 7], 0),
    gather_case(1, (1, 4, 5, 3), [[4, 0], [2, 2], [1, 3]], 2),
    gather_case(2, (2, 5, 3), [[4, 0, 1, 1], [2, 3, 3, 0]], 1, batch_dims=1),
    gather_case(3, (3, 7), [6], -1),
    depth_to_space_case(0, (1, 3, 2, 8), 2),
    depth_to_space_case(1, (2, 2, 3, 27), 3),
    depth_to_space_case(2, (1, 4, 4, 4), 2),
    space_to_depth_case(0, (1, 6, 4, 2), 2),
    space_to_depth_case(1, (2, 6, 3, 3), 3),
    space_to_depth_case(2, (1, 4, 8, 1), 2),
    # int16 (TFLite Micro has int16 SLICE, SPLIT, SPLIT_V, PACK, UNPACK): the same kernels move bytes
    slice_case(10, (2, 5, 3), [1, 1, 1], [1, 3, -1], (1, 3, 2), dtype="int16"),
    slice_case(11, (1, 4, 6, 5), [0, 2, 0, 3], [1, 2, 6, 2], (1, 2, 6, 2), dtype="int16"),
    split_case(10, (2, 6, 4), 2, 2, dtype="int16"),
    split_v_case(10, (3, 7), 1, [3, -1, 1], dtype="int16"),
    pack_case(10, (3, 5), 2, 2, dtype="int16"),
    unpack_case(10, (2, 3, 4), 1, dtype="int16"),
]


def test_int16_cases_are_int16(checked):
    assert sum(c.graph.tensor(c.graph.inputs[0]).dtype == "int16" for c in CASES) == 6


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    """Every case imported and compared with the tflite-micro interpreter (the oracle: TFLite Micro has int8
    kernels for all of these operators)."""
    tmp = tmp_path_factory.mktemp("data_movement")
    return {c.name: check_reference(c, tmp) for c in CASES}, tmp


@pytest.mark.parametrize("kind", ["slice", "split", "split_v", "pack", "unpack", "gather", "depth_to_space",
                                  "space_to_depth"])
def test_reference_matches_tflite_micro(checked, kind):
    counts, _ = checked
    mine = {n: k for n, k in counts.items() if n.rsplit("_", 1)[0] == kind}  # int8 and int16 cases
    assert len(mine) >= 3 and all(k >= 12 for k in mine.values())


def test_kernels_match_reference(checked):
    _, tmp = checked
    check_kernels(CASES, tmp)


def test_imported_kinds(checked):
    """SPLIT_V imports as the same IR op as SPLIT (the outputs' extents carry the sizes)."""
    kinds = {c.name: c.graph.ops[0].kind for c in CASES if c.graph is not None}
    assert kinds["split_v_0"] == "split" and kinds["unpack_0"] == "unpack" and kinds["pack_0"] == "pack"


def test_gather_index_out_of_range_is_a_user_error(tmp_path):
    """TFLite Micro's GATHER fails on an index outside the axis; mcutool says so at compile time."""
    from mcutool.codegen.runtime_params import kernel_params
    from mcutool.errors import UserError
    from mcutool.frontends.tflite import load_tflite

    path = tmp_path / "g.tflite"
    _one_op("GATHER", [(4, 3)], [(2, 3)], [np.array([1, 4], np.int32)], "GatherOptions", Axis=0).write(path)
    g = load_tflite(path)
    with pytest.raises(UserError, match=r"index 4 is outside \[0, 4\)"):
        kernel_params(g, g.ops[0])
