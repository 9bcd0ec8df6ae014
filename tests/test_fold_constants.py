"""Constant folding (mcutool/fold.py): a Keras-3-style batch-None shape chain, built by hand as the TFLite
converter writes it, imports, folds to constants and runs bit-exact with the tflite-micro interpreter.
Before folding, the importer refused SHAPE (and FILL, BROADCAST_TO); an op reading shapes only never reaches
firmware."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest

from host_build import build_host_program
from tflite_builder import ModelBuilder

from mcutool import reference
from mcutool.frontends.tflite import load_tflite

SX, ZX = 0.05, -3
SW, SY, ZY = 0.02, 0.4, 4
ROW = [3, -7, 12, 0, -128, 127, 5, -1, 9, 44, -60, 2, 0, 1, -2, 70]


def keras_chain_model() -> bytes:
    """x (1, 2, 4, 2) -> RESHAPE to (batch, 16), the batch read at run time as the converter writes it for a
    Keras 3 model with a None batch: SHAPE -> STRIDED_SLICE (shrink) -> PACK with 16; a FULLY_CONNECTED whose
    weights are BROADCAST_TO of a (1, 16) constant and whose bias is FILL'd."""
    b = ModelBuilder()
    x = b.tensor("x", (1, 2, 4, 2), "int8", scale=SX, zero_point=ZX)
    shape = b.tensor("shape", (4,), "int32")
    b.op("SHAPE", [x], [shape], "ShapeOptions", OutType=2)  # TensorType.INT32
    batch = b.tensor("batch", (), "int32")  # shape[0] as a scalar: STRIDED_SLICE with shrink_axis_mask
    b.op("STRIDED_SLICE", [shape, b.const("begin", [0]), b.const("end", [1]), b.const("strides", [1])], [batch],
         "StridedSliceOptions", ShrinkAxisMask=1)
    new_shape = b.tensor("new_shape", (2,), "int32")
    b.op("PACK", [batch, b.const("sixteen", np.array(16, np.int32))], [new_shape], "PackOptions", ValuesCount=2, Axis=0)
    flat = b.tensor("flat", (1, 16), "int8", scale=SX, zero_point=ZX)
    b.op("RESHAPE", [x, new_shape], [flat])
    row = b.const("w_row", np.array([ROW], np.int8), "int8", scale=SW, zero_point=0)
    w = b.tensor("w", (5, 16), "int8", scale=SW, zero_point=0)
    b.op("BROADCAST_TO", [row, b.const("w_shape", [5, 16])], [w])
    bias = b.tensor("bias", (5,), "int32", scale=SX * SW, zero_point=0)
    b.op("FILL", [b.const("bias_dims", [5]), b.const("bias_value", np.array(-40, np.int32))], [bias])
    y = b.tensor("y", (1, 5), "int8", scale=SY, zero_point=ZY)
    b.op("FULLY_CONNECTED", [flat, w, bias], [y], "FullyConnectedOptions")
    b.inputs, b.outputs = [x], [y]
    return b.build()


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    path = tmp_path_factory.mktemp("fold") / "keras_chain.tflite"
    path.write_bytes(keras_chain_model())
    return path


def test_chain_folds_to_constants(chain):
    g = load_tflite(chain)
    assert [op.kind for op in g.ops] == ["reshape", "fully_connected"]
    fc = g.ops[1]
    w, bias = g.tensor(fc.inputs[1]), g.tensor(fc.inputs[2])
    assert w.is_const and np.array_equal(w.data, np.tile([ROW], (5, 1)))
    assert bias.is_const and np.array_equal(bias.data, np.full(5, -40))
    # the shape arithmetic is gone with the constants only it read (operands an importer turns into attributes,
    # like STRIDED_SLICE's begin/end/strides, stay, as for any op)
    gone = {"shape", "batch", "new_shape", "sixteen", "w_row", "bias_dims", "bias_value"}
    assert not gone & set(g.tensors)


def test_chain_matches_tflite_micro(chain):
    from tflite_micro.python.tflite_micro import runtime

    g = load_tflite(chain)
    micro = runtime.Interpreter.from_file(str(chain))
    rng = np.random.default_rng(5)
    outs = set()
    for i in range(10):
        x = rng.integers(-128, 128, size=(1, 2, 4, 2), dtype=np.int8)
        micro.set_input(x, 0)
        micro.invoke()
        want = micro.get_output(0)
        got = reference.run(g, {"x": x})["y"]
        assert np.array_equal(got, want), f"input {i}"
        outs.add(got.tobytes())
    assert len(outs) >= 8  # varied outputs, not a constant or a saturated one


def test_chain_compiles_and_runs_on_the_host(chain, tmp_path):
    """The folded graph compiles (--emit library) and the host build's output equals the reference."""
    from mcutool.compiler import Options, compile_model

    lib = tmp_path / "lib"
    compile_model(chain, "stm32f746", lib, Options(emit="library"))
    exe = build_host_program(lib, tmp_path / "chain")
    x = np.random.default_rng(9).integers(-128, 128, size=(1, 2, 4, 2), dtype=np.int8)
    (tmp_path / "x.bin").write_bytes(x.tobytes())
    subprocess.run([str(exe), str(tmp_path / "x.bin"), str(tmp_path / "y.bin")], check=True)
    got = np.frombuffer((tmp_path / "y.bin").read_bytes(), np.int8).reshape(1, 5)
    assert np.array_equal(got, reference.run(load_tflite(chain), {"x": x})["y"])


def test_a_constant_op_that_cannot_be_computed_is_a_user_error(tmp_path):
    """FILL whose extents disagree with its output: folding names the op instead of failing inside numpy."""
    from mcutool.errors import UserError

    b = ModelBuilder()
    x = b.tensor("x", (1, 4), "int8", scale=0.1, zero_point=0)
    filled = b.tensor("filled", (1, 4), "int8", scale=0.1, zero_point=0)
    b.op("FILL", [b.const("dims", [2, 4]), b.const("value", np.array(3, np.int8), "int8")], [filled])
    y = b.tensor("y", (1, 4), "int8", scale=0.2, zero_point=0)
    b.op("ADD", [x, filled], [y], "AddOptions")
    b.inputs, b.outputs = [x], [y]
    path = b.write(tmp_path / "bad_fill.tflite")
    with pytest.raises(UserError, match=r"op 'fill_0' \(fill\): fills extents \(2, 4\)"):
        load_tflite(path)
