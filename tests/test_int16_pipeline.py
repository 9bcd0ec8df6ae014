"""int16 activations (TFLite's 16x8 scheme) through the pipeline: import, reference, arena (2-byte tensors),
runtime kernel calls with the kernel's own element types, model.h I/O types, the host build."""
import subprocess
import sys

import numpy as np
import pytest

from conftest import require_board_tools
from host_build import build_host_program, run_host_program
from mcutool import reference
from mcutool.compiler import Options, compile_model
from mcutool.errors import UserError
from mcutool.frontends import load_model
from tflite_builder import MicroInterpreter, ModelBuilder


def pad_int16_model(path, shape=(1, 3, 5, 4), pads=((0, 0), (1, 2), (2, 0), (0, 3)), scale=0.0007):
    b = ModelBuilder()
    x = b.tensor("x", shape, "int16", scale=scale, zero_point=0)
    out_shape = tuple(d + lo + hi for d, (lo, hi) in zip(shape, pads))
    y = b.tensor("y", out_shape, "int16", scale=scale, zero_point=0)
    p = b.const("paddings", np.array(pads, dtype=np.int32))
    b.op("PAD", [x, p], [y], "PadOptions")
    b.inputs, b.outputs = [x], [y]
    path.write_bytes(b.build())
    return path


def test_int16_pad_compiles_and_runs_on_the_host_like_tflite_micro(tmp_path):
    model = pad_int16_model(tmp_path / "pad16.tflite")
    graph = load_model(model)
    t = graph.tensor(graph.inputs[0])
    assert t.dtype == "int16" and t.nbytes == 2 * t.size
    lib = tmp_path / "lib"
    report = compile_model(model, "stm32f746", lib, Options(emit="library"))
    out = graph.tensor(graph.outputs[0])
    assert report["memory"]["arena_bytes"] >= t.nbytes + out.nbytes  # both live at the PAD, 2 bytes each
    header = (lib / "model.h").read_text()
    assert "int16_t *mcu_model_input(uint8_t *arena, int index);" in header
    assert f"#define MCU_MODEL_OUTPUT0_SIZE {out.nbytes}u" in header
    assert "mcu_pad_s16(" in (lib / "model.c").read_text()
    exe = build_host_program(lib, tmp_path / "host")
    oracle = MicroInterpreter(model)
    rng = np.random.default_rng(16)
    for _ in range(3):
        x = rng.integers(-32768, 32768, size=t.shape).astype(np.int16)
        want = oracle(x)[0]
        assert want.dtype == np.int16
        assert np.array_equal(reference.run(graph, {t.name: x})[out.name], want)
        assert np.array_equal(run_host_program(exe, [x], out.shape, np.int16), want)


@pytest.mark.qemu
def test_cli_run_and_validate_take_int16_npy(tmp_path):
    """`mcutool run --input x.npy --output y.npy` with an int16 tensor, and `validate`'s random int16 inputs."""
    require_board_tools("stm32f746")
    model = pad_int16_model(tmp_path / "pad16.tflite")
    x = np.random.default_rng(5).integers(-32768, 32768, size=(1, 3, 5, 4)).astype(np.int16)
    np.save(tmp_path / "x.npy", x)

    def cli(*args):
        done = subprocess.run([sys.executable, "-m", "mcutool", *map(str, args)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    cli("compile", model, "--board", "stm32f746", "-o", tmp_path / "fw")
    cli("run", tmp_path / "fw", "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    y = np.load(tmp_path / "y.npy")
    assert y.dtype == np.int16 and np.array_equal(y, MicroInterpreter(model)(x)[0])
    assert "bit-exact: 2 of 2" in cli("validate", model, "--board", "stm32f746", "--samples", 2, "-o", tmp_path / "v")


def test_an_op_without_an_int16_kernel_is_a_user_error(tmp_path):
    b = ModelBuilder()
    x = b.tensor("x", (1, 4, 4, 2), "int16", scale=0.01, zero_point=0)
    y = b.tensor("y", (1, 4, 4, 2), "int16", scale=0.01, zero_point=0)
    b.op("HARD_SWISH", [x], [y])  # TFLite Micro has no int16 HARD_SWISH either
    b.inputs, b.outputs = [x], [y]
    (tmp_path / "m.tflite").write_bytes(b.build())
    with pytest.raises(UserError, match=r"hard_swish_0.*int16"):
        compile_model(tmp_path / "m.tflite", "stm32f746", tmp_path / "lib", Options(emit="library"))
