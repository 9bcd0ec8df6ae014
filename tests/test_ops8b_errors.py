"""What the operators of this batch refuse, and that each refusal is a UserError naming the layer and the cause
(never a traceback): models TFLite Micro would run differently or that the firmware kernels cannot take."""
from __future__ import annotations

import numpy as np
import pytest

from op_cases import one_op_model
from tflite_builder import ModelBuilder

from mcutool import reference
from mcutool.codegen.runtime_params import kernel_params
from mcutool.errors import UserError
from mcutool.frontends.tflite import load_tflite


def _load(tmp_path, builder):
    return load_tflite(builder.write(tmp_path / "m.tflite"))


def test_split_outputs_quantized_differently(tmp_path):
    b = ModelBuilder()
    x = b.tensor("x", (1, 4), "int8", scale=0.1, zero_point=0)
    y0 = b.tensor("y0", (1, 2), "int8", scale=0.1, zero_point=0)
    y1 = b.tensor("y1", (1, 2), "int8", scale=0.2, zero_point=0)
    b.op("SPLIT", [b.const("axis", np.array([1], np.int32)), x], [y0, y1], "SplitOptions", NumSplits=2)
    b.inputs, b.outputs = [x], [y0, y1]
    g = _load(tmp_path, b)
    with pytest.raises(UserError, match=r"split_0.*tensor 'y1' differs from 'x' in dtype or quantization"):
        reference.run(g, {"x": np.zeros((1, 4), np.int8)})
    with pytest.raises(UserError, match=r"layer 'split_0' \(split\): tensor 'y1' differs"):
        kernel_params(g, g.ops[0])


def test_resize_with_align_corners_and_half_pixel_centers(tmp_path):
    g = _load(tmp_path, one_op_model("RESIZE_BILINEAR", [(1, 2, 2, 1)], [(1, 4, 4, 1)], [[4, 4]],
                                     "ResizeBilinearOptions", AlignCorners=True, HalfPixelCenters=True))
    with pytest.raises(UserError, match="align_corners and half_pixel_centers are both set"):
        kernel_params(g, g.ops[0])


def test_gather_with_computed_indices_has_no_firmware_kernel(tmp_path):
    b = ModelBuilder()
    x = b.tensor("x", (5, 3), "int8", scale=0.1, zero_point=0)
    idx = b.tensor("idx", (2,), "int32")
    y = b.tensor("y", (2, 3), "int8", scale=0.1, zero_point=0)
    b.op("GATHER", [x, idx], [y], "GatherOptions", Axis=0)
    b.inputs, b.outputs = [x, idx], [y]
    g = _load(tmp_path, b)
    got = reference.run(g, {"x": np.arange(15, dtype=np.int8).reshape(5, 3), "idx": np.array([4, 1], np.int32)})
    assert got["y"].tolist() == [[12, 13, 14], [3, 4, 5]]  # the reference runs it
    with pytest.raises(UserError, match="computed at run time; the firmware kernel takes constant indices"):
        kernel_params(g, g.ops[0])


def test_arg_max_int64_output_has_no_firmware_kernel(tmp_path):
    b = ModelBuilder()
    x = b.tensor("x", (2, 5), "int8", scale=0.1, zero_point=0)
    y = b.tensor("y", (2,), "int64")
    b.op("ARG_MAX", [x, b.const("axis", np.array([1], np.int32))], [y], "ArgMaxOptions", OutputType=4)
    b.inputs, b.outputs = [x], [y]
    g = _load(tmp_path, b)
    x_val = np.array([[1, 9, 9, 0, -5], [-8, -9, 3, 3, 2]], np.int8)
    assert reference.run(g, {"x": x_val})["y"].tolist() == [1, 2]  # first index on ties
    with pytest.raises(UserError, match="the index output 'y' is int64; the kernel writes int32"):
        kernel_params(g, g.ops[0])


def test_slice_outside_the_input_is_refused_at_import(tmp_path):
    with pytest.raises(UserError, match=r"SLICE producing 'y0'.*reaches outside the input"):
        _load(tmp_path, one_op_model("SLICE", [(2, 4)], [(1, 3)], [[1, 2], [1, 3]]))
