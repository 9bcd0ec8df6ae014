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


def test_unsupported_op_is_named(tmp_path):
    # LSH_PROJECTION: a TFLite builtin that TFLite Micro does not run either (TANH was the example until it
    # became supported)
    def make_unsupported(buf, model):  # turn KWS's SOFTMAX opcode into LSH_PROJECTION
        for i in range(model.OperatorCodesLength()):
            oc = model.OperatorCodes(i)
            if oc.BuiltinCode() == tflite.BuiltinOperator.SOFTMAX:
                for field, size in ((4, 1), (10, 4)):  # deprecated_builtin_code (int8), builtin_code (int32)
                    if oc._tab.Offset(field):
                        _patch_scalar(buf, oc, field, tflite.BuiltinOperator.LSH_PROJECTION, size)
    f = patched_kws(tmp_path, make_unsupported, "lsh.tflite")
    assert_clear_error(run_cli("inspect", f), "LSH_PROJECTION", "not supported", "Identity")


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
