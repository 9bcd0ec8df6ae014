"""Bad input of every kind a user can give gives one clear message, a non-zero exit code, and no traceback."""
import random
import subprocess
import sys

import pytest
import tflite

from conftest import shared_model


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "mcutool", *map(str, args)], capture_output=True, text=True)


def assert_clear_error(result, *words):
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert "Traceback" not in out, out
    assert any(line.startswith("error: ") for line in result.stderr.splitlines()), out
    for w in words:
        assert w.lower() in out.lower(), f"{w!r} not in {out!r}"


# -- patching a flatbuffer in place: change one scalar field of a table, or one element of a vector -------------
def _patch_scalar(buf: bytearray, table, vtable_offset: int, value: int, size: int):
    off = table._tab.Offset(vtable_offset)
    assert off, "field is absent (holds its default) and cannot be patched in place"
    pos = table._tab.Pos + off
    buf[pos:pos + size] = int(value).to_bytes(size, "little", signed=True)


def _patch_vector_elem(buf: bytearray, table, vtable_offset: int, index: int, value: int):
    off = table._tab.Offset(vtable_offset)
    pos = table._tab.Vector(off) + 4 * index
    buf[pos:pos + 4] = int(value).to_bytes(4, "little", signed=True)


def _model(buf):
    return tflite.Model.GetRootAsModel(buf, 0)


def patched_kws(tmp_path, patch, name):
    buf = bytearray(shared_model("kws_ref_model.tflite").read_bytes())
    patch(buf, _model(buf))
    out = tmp_path / name
    out.write_bytes(bytes(buf))
    return out


def test_missing_file(tmp_path):
    assert_clear_error(run_cli("inspect", tmp_path / "nope.tflite"), "does not exist")


def test_directory(tmp_path):
    assert_clear_error(run_cli("inspect", tmp_path), "directory")


def test_empty_file(tmp_path):
    f = tmp_path / "empty.tflite"
    f.write_bytes(b"")
    assert_clear_error(run_cli("inspect", f), "not a TFLite flatbuffer")


def test_truncated_tflite(tmp_path):
    f = tmp_path / "cut.tflite"
    f.write_bytes(shared_model("kws_ref_model.tflite").read_bytes()[:3000])
    assert_clear_error(run_cli("inspect", f), "truncated or corrupt")


def test_random_bytes_tflite(tmp_path):
    f = tmp_path / "noise.tflite"
    f.write_bytes(random.Random(1).randbytes(4096))
    assert_clear_error(run_cli("inspect", f), "not a TFLite flatbuffer")


def test_random_bytes_onnx(tmp_path):
    f = tmp_path / "noise.onnx"
    f.write_bytes(random.Random(2).randbytes(4096))
    assert_clear_error(run_cli("inspect", f), "noise.onnx")


def test_unknown_format(tmp_path):
    f = tmp_path / "weights.h5"
    f.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    assert_clear_error(run_cli("inspect", f), "unknown model format")


def _retype(buf, model, changes):
    """Patch KWS's operator codes: {builtin code: new builtin code}."""
    for i in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(i)
        new = changes.get(oc.BuiltinCode())
        for field, size in ((4, 1), (10, 4)):  # deprecated_builtin_code (int8), builtin_code (int32)
            if new is not None and oc._tab.Offset(field):
                _patch_scalar(buf, oc, field, new, size)


def test_unsupported_op_is_named(tmp_path):
    f = patched_kws(tmp_path, lambda buf, m: _retype(buf, m, {tflite.BuiltinOperator.SOFTMAX:
                                                                tflite.BuiltinOperator.COS}), "cos.tflite")
    assert_clear_error(run_cli("compile", f, "--board", "stm32f746", "--no-build", "-o", tmp_path / "p"),
                       "COS (1 layer, #12 'cos_0')", "not supported")
    assert not (tmp_path / "p").exists()


def test_every_unsupported_op_in_one_message_and_inspect_marks_them(tmp_path):
    """Issue 10: KWS with its depthwise convs turned into SIN and its softmax into COS. compile names
    both operators at once (count and first layer); inspect lists all 13 layers, those two marked, the others as
    for the real KWS (hand-derived: conv2d_0 10x4 kernel over 25x5x64 outputs = 320,000 MACs)."""
    changes = {tflite.BuiltinOperator.SOFTMAX: tflite.BuiltinOperator.COS,
               tflite.BuiltinOperator.DEPTHWISE_CONV_2D: tflite.BuiltinOperator.SIN}
    f = patched_kws(tmp_path, lambda buf, m: _retype(buf, m, changes), "two_ops.tflite")
    done = run_cli("compile", f, "--board", "stm32f746", "--no-build", "-o", tmp_path / "p")
    assert_clear_error(done, "2 operators", "SIN (4 layers, the first #1 'sin_0')",
                       "COS (1 layer, #12 'cos_0')", "mcutool inspect")
    assert len([line for line in done.stderr.splitlines() if line.startswith("error: ")]) == 1
    done = run_cli("inspect", f, "--json")
    assert done.returncode == 0, done.stderr
    import json
    summary = json.loads(done.stdout)
    ops = [row["op"] for row in summary["layers"]]
    assert len(ops) == 13 and ops.count("SIN (unsupported)") == 4 and ops[12] == "COS (unsupported)"
    assert ops[0] == "conv2d" and summary["layers"][0]["macs"] == 320_000
    assert summary["layers"][12]["out_shape"] == [1, 12] and summary["layers"][1]["out_shape"] == [1, 25, 5, 64]
    assert "SIN (4 layers" in summary["unsupported"]
    done = run_cli("inspect", f)
    assert done.returncode == 0 and "COS (unsupported)" in done.stdout and "compile refuses the model" in done.stdout


def _single_op_model(path, opname, x, y, options=None, custom_code=None, consts=(), **fields):
    """A one-operator model: x -> op -> y, plus constant operands `consts` ((name, shape, dtype, data, quant))."""
    from tflite_builder import ModelBuilder
    b = ModelBuilder()
    xi, yi = b.tensor(*x), b.tensor(*y)
    extra = [b.tensor(name, shape, dtype, data=data, **quant) for name, shape, dtype, data, quant in consts]
    b.op(opname, [xi, *extra], [yi], options, custom_code=custom_code, **fields)
    b.inputs, b.outputs = [xi], [yi]
    return b.write(path)


def test_an_ethos_u_model_needs_an_npu(tmp_path):
    """A model Vela compiled for an Arm Ethos-U NPU: one custom op "ethos-u" with its command stream."""
    import numpy as np
    f = _single_op_model(tmp_path / "vela.tflite", "CUSTOM", ("x", (1, 8, 8, 3), "int8", 0.1, 0),
                         ("y", (1, 10), "int8", 0.1, 0), custom_code="ethos-u",
                         consts=[("command_stream", (64,), "uint8", np.zeros(64, np.uint8), {})])
    assert_clear_error(run_cli("compile", f, "--board", "stm32f746", "--no-build", "-o", tmp_path / "p"),
                       "custom op ethos-u", "needs an Ethos-U NPU, which no mcutool board has")
    done = run_cli("inspect", f)
    assert done.returncode == 0 and "custom op ethos-u (unsupported)" in done.stdout, done.stderr


def test_a_hybrid_model_is_refused_as_tflite_micro_refuses_it(tmp_path):
    """float input, int8 weights (dynamic-range quantization): the tflite-micro interpreter fails to prepare
    it, and mcutool says so."""
    import numpy as np
    f = _single_op_model(tmp_path / "hybrid.tflite", "FULLY_CONNECTED", ("x", (1, 8), "float32"),
                         ("y", (1, 4), "float32"), "FullyConnectedOptions",
                         consts=[("w", (4, 8), "int8", np.arange(32) - 16, dict(scale=0.02, zero_point=0)),
                                 ("b", (4,), "float32", np.ones(4), {})], FusedActivationFunction="NONE")
    tflm = subprocess.run([sys.executable, "-c", "from tflite_micro.python.tflite_micro import runtime; "
                           f"runtime.Interpreter.from_file({str(f)!r})"], capture_output=True, text=True)
    assert tflm.returncode != 0 and "FULLY_CONNECTED" in tflm.stderr and "failed to prepare" in tflm.stderr
    assert_clear_error(run_cli("compile", f, "--board", "stm32f746", "--no-build", "-o", tmp_path / "p"),
                       "hybrid", "TFLite Micro refuses such models too", "--calib")


def test_dynamic_shape(tmp_path):
    def make_dynamic(buf, model):  # the input's time axis becomes -1 in shape_signature
        sg = model.Subgraphs(0)
        _patch_vector_elem(buf, sg.Tensors(int(sg.InputsAsNumpy()[0])), 18, 1, -1)  # shape_signature
    f = patched_kws(tmp_path, make_dynamic, "dynamic.tflite")
    assert_clear_error(run_cli("inspect", f), "dynamic shape", "input_1")


def test_float16_model(tmp_path):
    def make_float16(buf, model):
        sg = model.Subgraphs(0)
        _patch_scalar(buf, sg.Tensors(int(sg.InputsAsNumpy()[0])), 6, tflite.TensorType.FLOAT16, 1)
    f = patched_kws(tmp_path, make_float16, "half.tflite")
    assert_clear_error(run_cli("inspect", f), "FLOAT16", "float32")


def test_corrupt_constant_size(tmp_path):
    def shrink_weights(buf, model):  # a weight tensor's shape no longer matches its buffer
        sg = model.Subgraphs(0)
        conv = sg.Operators(0)
        _patch_vector_elem(buf, sg.Tensors(int(conv.InputsAsNumpy()[1])), 4, 0, 3)
    f = patched_kws(tmp_path, shrink_weights, "badweights.tflite")
    assert_clear_error(run_cli("inspect", f), "corrupt")


@pytest.mark.parametrize("model", ["kws_ref_model.tflite", "hello_world_int8.tflite"])
def test_good_model_still_inspects(model):
    r = run_cli("inspect", shared_model(model), "--json")
    assert r.returncode == 0, r.stderr


def test_float_model_to_compile_says_what_to_do(tmp_path):
    r = run_cli("compile", shared_model("hello_world_float.tflite"), "--board", "stm32f746", "-o", tmp_path / "p")
    assert_clear_error(r, "float model", "int8", "--calib DATA.npz", "--calib random")
    assert not (tmp_path / "p" / "report.json").exists()


def test_unknown_board_lists_the_boards(tmp_path):
    r = run_cli("compile", shared_model("hello_world_int8.tflite"), "--board", "esp32", "-o", tmp_path / "p")
    assert_clear_error(r, "esp32", "stm32f746")
