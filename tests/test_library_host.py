"""--emit library: model.c/model.h + runtime compile into a user's own (host) program and give the same output.

The host build runs under AddressSanitizer and UBSan with an arena of exactly MCU_MODEL_ARENA_SIZE bytes on
the heap, so a kernel that reads or writes outside its tensors' planned bytes fails here even where QEMU
would not notice.
"""
import subprocess

import numpy as np
import pytest

from conftest import shared_model
from host_build import build_host_program
from mcutool import reference
from mcutool.compiler import Options, compile_model
from mcutool.frontends import load_model



@pytest.mark.parametrize("model", ["kws_ref_model.tflite", "micro_speech_quantized.tflite"])
def test_library_builds_into_a_host_program_with_identical_output(model, tmp_path):
    lib = tmp_path / "lib"
    compile_model(shared_model(model), "stm32f746", lib, Options(emit="library"))
    assert not (lib / "main.c").exists() and not (lib / "Makefile").exists()
    header = (lib / "model.h").read_text()
    for macro in ("MCU_MODEL_ARENA_SIZE", "MCU_MODEL_INPUT0_ZERO_POINT", "MCU_MODEL_OUTPUT0_SIZE"):
        assert macro in header
    exe = build_host_program(lib, tmp_path / "host")
    graph = load_model(shared_model(model))
    rng = np.random.default_rng(7)
    t = graph.tensor(graph.inputs[0])
    for i in range(5):
        x = rng.integers(-128, 128, size=t.shape).astype(np.int8)
        (tmp_path / "x.bin").write_bytes(x.tobytes())
        done = subprocess.run([str(exe), str(tmp_path / "x.bin"), str(tmp_path / "y.bin")],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        y = np.frombuffer((tmp_path / "y.bin").read_bytes(), np.int8)
        want = reference.run(graph, {graph.inputs[0]: x})[graph.outputs[0]].reshape(-1)
        assert np.array_equal(y, want), f"sample {i}"
