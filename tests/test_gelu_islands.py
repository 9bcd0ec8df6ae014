"""GELU (int8, TFLite's table; TFLite Micro has no GELU kernel, so tflite-runtime 2.14's BUILTIN_REF is the oracle),
the float island DEQUANTIZE -> NEG -> QUANTIZE that the converter leaves in Keras 3's LayerNormalization (a table
built by mcutool/islands.py, equal to the island it replaces), and TRANSPOSE's merged axes (ShuffleNet's rank-5
channel shuffle), each on every int8 input value."""
from __future__ import annotations

import numpy as np
import pytest

from mcutool import reference
from mcutool.frontends.tflite import load_tflite
from mcutool.islands import fuse_float_islands
from mcutool.ops.transpose import collapse_axes
from tflite_builder import ModelBuilder, RefInterpreter

ALL = np.arange(-128, 128, dtype=np.int8).reshape(1, 16, 16)


@pytest.mark.parametrize("approximate", [False, True])
@pytest.mark.parametrize("qin,qout", [((0.05, -3), (0.03, -100)), ((0.2, 10), (0.1, -120)), ((0.01, 0), (0.004, -90))])
def test_gelu_equals_tflite_runtime(tmp_path, approximate, qin, qout):
    b = ModelBuilder()
    x = b.tensor("x", (1, 16, 16), "int8", scale=qin[0], zero_point=qin[1])
    y = b.tensor("y", (1, 16, 16), "int8", scale=qout[0], zero_point=qout[1])
    b.op("GELU", [x], [y], "GeluOptions", Approximate=approximate)
    b.inputs, b.outputs = [x], [y]
    path = b.write(tmp_path / "gelu.tflite")
    want = RefInterpreter(path)(ALL)[0]
    graph = load_tflite(path)
    assert [op.kind for op in graph.ops] == ["gelu"]
    got = reference.run(graph, {graph.inputs[0]: ALL})[graph.outputs[0]]
    assert np.array_equal(got, want), np.flatnonzero(got != want)[:10]
    assert np.unique(want).size > 60


def test_float_island_becomes_one_table_equal_to_it(tmp_path):
    b = ModelBuilder()
    x = b.tensor("x", (1, 16, 16), "int8", scale=0.04, zero_point=-7)
    f = b.tensor("f", (1, 16, 16), "float32")
    n = b.tensor("n", (1, 16, 16), "float32")
    y = b.tensor("y", (1, 16, 16), "int8", scale=0.05, zero_point=3)
    b.op("DEQUANTIZE", [x], [f])
    b.op("NEG", [f], [n])
    b.op("QUANTIZE", [n], [y])
    b.inputs, b.outputs = [x], [y]
    path = b.write(tmp_path / "island.tflite")
    want = RefInterpreter(path)(ALL)[0]
    graph = load_tflite(path)
    fused = fuse_float_islands(graph)
    assert [op.kind for op in fused.ops] == ["lut"]
    assert {t.dtype for t in fused.tensors.values()} == {"int8"}
    assert np.array_equal(reference.run(graph, {"x": ALL})["y"], want)
    assert np.array_equal(reference.run(fused, {"x": ALL})["y"], want)


@pytest.mark.parametrize("shape,perm", [((1, 12, 12, 2, 24), (0, 1, 2, 4, 3)), ((2, 3, 4, 5, 6), (1, 0, 2, 4, 3)),
                                        ((4, 5, 6), (2, 0, 1)), ((3, 4), (0, 1))])
def test_transpose_merged_axes_move_the_same_values(shape, perm):
    merged, mperm = collapse_axes(shape, list(perm))
    x = np.arange(np.prod(shape)).reshape(shape)
    assert len(merged) <= len(shape)
    assert np.array_equal(np.transpose(x, perm).reshape(-1), np.transpose(x.reshape(merged), mperm).reshape(-1))
