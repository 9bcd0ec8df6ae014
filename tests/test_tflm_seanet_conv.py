"""TFLite Micro's SEANet integration tests for CONV_2D (22 models) and TRANSPOSE_CONV (5), int16 activations
with int8 weights and int64 biases (../shared/models/tflm_seanet/, SOURCES.md): mcutool's reference equals the
tflite-micro interpreter on the shipped input (and the shipped golden, a second check)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mcutool import reference as R
from mcutool.frontends.tflite import load_tflite

from conftest import SHARED_MODELS

SEANET = SHARED_MODELS / "tflm_seanet"
COUNTS = {"conv": 22, "transpose_conv": 5}
MODELS = [(kind, f"{kind}{i}") for kind, n in COUNTS.items() for i in range(n)]


def read_csv(path: Path, dtype, shape) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", dtype=np.int64).astype(dtype).reshape(shape)


def seanet_case(kind: str, name: str):
    """(model path, the interpreter's inputs in the model's order, the golden output)."""
    from tflite_micro.python.tflite_micro import runtime

    folder = SEANET / kind
    path = folder / f"{name}.tflite"
    if not path.exists():
        pytest.fail(f"{path} is missing: the tests expect ../shared/models beside the checkout")
    micro = runtime.Interpreter.from_file(str(path), arena_size=1 << 22)
    inputs = []
    for i, csv in enumerate(sorted(folder.glob(f"{name}_input*_*.csv"))):
        detail = micro.get_input_details(i)
        inputs.append(read_csv(csv, detail["dtype"], detail["shape"]))
    golden = read_csv(folder / f"{name}_golden_int16.csv", np.int16, micro.get_output_details(0)["shape"])
    return path, inputs, golden


def interpreter_output(path: Path, inputs: list[np.ndarray]) -> np.ndarray:
    from tflite_micro.python.tflite_micro import runtime

    micro = runtime.Interpreter.from_file(str(path), arena_size=1 << 22)
    for i, x in enumerate(inputs):
        micro.set_input(x, i)
    micro.invoke()
    return micro.get_output(0)


def data_input(inputs: list[np.ndarray]) -> np.ndarray:
    """The activation input: TRANSPOSE_CONV's models also take the output shape (int32) as their first input,
    which TFLite Micro ignores and mcutool's graph drops."""
    return inputs[-1]


@pytest.mark.parametrize("kind,name", MODELS, ids=[m[1] for m in MODELS])
def test_reference_matches_tflite_micro(kind, name):
    path, inputs, golden = seanet_case(kind, name)
    graph = load_tflite(path)
    (x_name,), (y_name,) = graph.inputs, graph.outputs
    expected = interpreter_output(path, inputs)
    got = R.run(graph, {x_name: data_input(inputs)})[y_name]
    assert got.dtype == np.int16 and got.shape == expected.shape
    assert np.array_equal(got, expected), f"{name}: {int((got != expected).sum())} of {got.size} values differ"
    assert np.array_equal(expected, golden), f"{name}: the interpreter differs from the shipped golden"
    assert np.unique(expected).size >= min(64, expected.size // 4), f"{name}: the output is nearly constant"


def compile_library(path: Path, out: Path) -> Path:
    from mcutool.compiler import Options, compile_model

    compile_model(path, "stm32f746", out, Options(emit="library"))
    return out


@pytest.mark.parametrize("kind,name", MODELS, ids=[m[1] for m in MODELS])
def test_host_build_matches_reference(kind, name, tmp_path):
    """--emit library output, compiled by the host gcc with ASan/UBSan (tests/host_build.py), gives the
    reference's output (which equals the interpreter's, above)."""
    from host_build import build_host_program, run_host_program

    path, inputs, _ = seanet_case(kind, name)
    graph = load_tflite(path)
    (x_name,), (y_name,) = graph.inputs, graph.outputs
    lib = compile_library(path, tmp_path / "lib")
    kernel = {"conv": "mcu_conv2d_s16(", "transpose_conv": "mcu_transpose_conv2d_s16("}[kind]
    assert kernel in (lib / "model.c").read_text()
    exe = build_host_program(lib, tmp_path / "host")
    x = data_input(inputs)
    want = R.run(graph, {x_name: x})[y_name]
    got = run_host_program(exe, [x], want.shape, np.int16)
    assert np.array_equal(got, want), f"{name}: {int((got != want).sum())} of {got.size} values differ"


@pytest.mark.qemu
@pytest.mark.parametrize("kind,name", [("conv", "conv5"), ("transpose_conv", "transpose_conv2")])
def test_firmware_in_qemu_matches_reference(kind, name, tmp_path):
    """One model of each kind built for stm32f746 and run in QEMU (mps2-an500): the shipped input and two random
    ones give the reference's output; the ELF holds no floating point."""
    from conftest import assert_no_floating_point, require_board_tools
    from mcutool.compiler import Options, compile_model, run_build

    board = require_board_tools("stm32f746")
    path, inputs, _ = seanet_case(kind, name)
    graph = load_tflite(path)
    (x_name,), (y_name,) = graph.inputs, graph.outputs
    out = tmp_path / "proj"
    compile_model(path, "stm32f746", out, Options())
    rng = np.random.default_rng(5)
    x_t = graph.tensor(x_name)
    samples = [data_input(inputs)] + [rng.integers(-32768, 32768, size=x_t.shape).astype(np.int16) for _ in range(2)]
    for x in samples:
        (y,), info = run_build(out, [x])
        want = R.run(graph, {x_name: x})[y_name]
        assert y.dtype == np.int16 and np.array_equal(y, want), f"{name}: {int((y != want).sum())} values differ"
        assert info["instructions"] > 0
    assert_no_floating_point(board, out / "emulator.elf")
