"""int8 models with float I/O (issue 10, crash 2): float32 input -> QUANTIZE -> int8 layers -> DEQUANTIZE -> float32
output, the TFLite converter's default int8 output and what `mcutool quantize` writes.

Such a model is already integer: it compiles as it is (no --calib asked for; --calib is ignored with a note),
the firmware's I/O is the int8 tensors and the host does the border conversion, so `run` takes and gives float
tensors. The oracle for the float outputs is tflite-runtime 2.14's reference kernels on the same file.
"""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import require_board_tools, shared_model
from structured_images import structured_images
from tflite_builder import RefInterpreter
from mcutool import reference
from mcutool.compiler import Options, compile_model, firmware_graph, run_build
from mcutool.frontends import load_model
from mcutool.quantize.ptq import has_integer_core

sys.path.insert(0, str(Path(__file__).parent))
import branched_models as nets  # noqa: E402
from test_arena_planner import _check_network_is_not_degenerate  # noqa: E402


def _mcutool(*args):
    return subprocess.run([sys.executable, "-m", "mcutool", *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def converter_style(tmp_path_factory):
    """The residual test net written as the converter writes it: float I/O around its int8 layers."""
    net = nets.residual_net()
    path, q = net.write(tmp_path_factory.mktemp("fio") / "residual_fio.tflite",
                        nets.inputs(net.shapes["x"], 32, seed=1), float_io=True)
    return path, q["x"], nets.inputs(net.shapes["x"], 8, seed=2)  # test inputs apart from calibration's


def test_a_float_model_is_not_taken_for_an_integer_one():
    assert not has_integer_core(load_model(shared_model("resnet8_float.tflite")))


def test_converter_style_model_is_integer_and_runs_on_int8_io(converter_style):
    path, (scale, zp), xs = converter_style
    graph = load_model(path)
    assert has_integer_core(graph)
    fw, quantization = firmware_graph(path, Options())  # no --calib needed
    assert quantization is None and fw.inputs == ["x"] and fw.outputs == ["y"]
    assert fw.tensor("x").dtype == fw.tensor("y").dtype == "int8"
    assert [op.kind for op in fw.ops] == [op.kind for op in graph.ops[1:-1]]
    # the firmware graph, fed the int8 input and dequantized, equals the float model in the reference
    for x in xs[:3]:
        xq = reference.quantize_float(x[None], scale=scale, zero_point=zp, out_dtype="int8").astype(np.int8)
        yq = reference.run(fw, {"x": xq})["y"]
        q = fw.tensor("y").quant
        assert np.array_equal(reference.dequantize(yq, scale=q.scale[0], zero_point=int(q.zero_point[0])),
                              reference.run(graph, {"x": x[None]})["y"])


def test_calib_on_an_integer_model_is_ignored_with_a_note(converter_style, tmp_path):
    path = converter_style[0]
    np.savez(tmp_path / "cal.npz", x=np.zeros((2, 16, 16, 8), np.float32))
    done = _mcutool("compile", path, "--board", "stm32f746", "--no-build", "-o", tmp_path / "p",
                    "--calib", tmp_path / "cal.npz")
    assert done.returncode == 0, done.stderr
    assert "--calib ignored" in done.stderr and "already int8" in done.stderr
    done = _mcutool("quantize", path, "--calib", tmp_path / "cal.npz", "-o", tmp_path / "again.tflite")
    assert done.returncode == 1 and "already an integer model" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.qemu
def test_converter_style_model_bit_exact_in_qemu_with_float_io(converter_style, tmp_path):
    require_board_tools("stm32f746")
    path, (scale, zp), xs = converter_style
    report = compile_model(path, "stm32f746", tmp_path / "p", Options())
    assert [s["host_dtype"] for s in report["io"]["inputs"] + report["io"]["outputs"]] == ["float32"] * 2
    fw, _ = firmware_graph(path, Options())
    _check_network_is_not_degenerate(fw, [reference.quantize_float(x[None], scale=scale, zero_point=zp,
                                                                   out_dtype="int8").astype(np.int8) for x in xs])
    oracle = RefInterpreter(path)
    for x in xs:
        (y,), _ = run_build(tmp_path / "p", [x[None]])
        want = oracle(x[None])[0]
        assert y.dtype == want.dtype == np.float32 and np.array_equal(y, want)


@pytest.mark.qemu
def test_mcutool_quantize_output_compiles_validates_and_runs_as_is(tmp_path):
    """`mcutool quantize resnet8_float --calib ... -o x.tflite`, then compile / validate / run x.tflite with no
    --calib: float images in, float probabilities out, equal to tflite-runtime's on x.tflite."""
    require_board_tools("stm32f746")
    np.savez(tmp_path / "cal.npz", input_1=structured_images(32, 1))
    x_tflite = tmp_path / "x.tflite"
    done = _mcutool("quantize", shared_model("resnet8_float.tflite"), "--calib", tmp_path / "cal.npz", "-o", x_tflite)
    assert done.returncode == 0, done.stderr
    done = _mcutool("validate", x_tflite, "--board", "stm32f746", "-o", tmp_path / "v", "--samples", 2)
    assert done.returncode == 0 and "bit-exact: 2 of 2" in done.stdout, done.stderr
    done = _mcutool("compile", x_tflite, "--board", "stm32f746", "-o", tmp_path / "p")
    assert done.returncode == 0, done.stderr
    images = structured_images(6, 2)
    np.save(tmp_path / "img.npy", images[:1])
    done = _mcutool("run", tmp_path / "p", "--input", tmp_path / "img.npy", "--output", tmp_path / "y.npy")
    assert done.returncode == 0, done.stderr
    oracle = RefInterpreter(x_tflite)
    assert np.array_equal(np.load(tmp_path / "y.npy"), oracle(images[:1])[0])
    classes = set()
    for image in images[1:]:
        (y,), _ = run_build(tmp_path / "p", [image[None]])
        want = oracle(image[None])[0]
        assert y.dtype == np.float32 and np.array_equal(y, want)
        classes.add(int(np.argmax(want)))
    assert len(classes) >= 3  # the outputs vary: the comparison is not between constants
