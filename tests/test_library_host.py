"""--emit library: model.c/model.h + runtime compile into a user's own (host) program and give the same output.

The host build runs under AddressSanitizer and UBSan with an arena of exactly MCU_MODEL_ARENA_SIZE bytes on
the heap, so a kernel that reads or writes outside its tensors' planned bytes fails here even where QEMU
would not notice.
"""
import subprocess

import numpy as np
import pytest

from conftest import require_tool, shared_model
from mcutool import reference
from mcutool.compiler import Options, compile_model
from mcutool.frontends import load_model

HOST_MAIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include "model.h"

int main(int argc, char **argv)
{
    if (argc != 3) return 2;
    uint8_t *arena = malloc(MCU_MODEL_ARENA_SIZE);
    FILE *in = fopen(argv[1], "rb");
    if (!arena || !in) return 3;
    if (fread(mcu_model_input(arena, 0), 1, MCU_MODEL_INPUT0_SIZE, in) != MCU_MODEL_INPUT0_SIZE) return 4;
    fclose(in);
    mcu_model_run(arena);
    FILE *out = fopen(argv[2], "wb");
    if (!out) return 5;
    fwrite(mcu_model_output(arena, 0), 1, MCU_MODEL_OUTPUT0_SIZE, out);
    fclose(out);
    free(arena);
    return 0;
}
"""


@pytest.mark.parametrize("model", ["kws_ref_model.tflite", "micro_speech_quantized.tflite"])
def test_library_builds_into_a_host_program_with_identical_output(model, tmp_path):
    gcc = require_tool("gcc")
    lib = tmp_path / "lib"
    compile_model(shared_model(model), "stm32f746", lib, Options(emit="library"))
    assert not (lib / "main.c").exists() and not (lib / "Makefile").exists()
    header = (lib / "model.h").read_text()
    for macro in ("MCU_MODEL_ARENA_SIZE", "MCU_MODEL_INPUT0_ZERO_POINT", "MCU_MODEL_OUTPUT0_SIZE"):
        assert macro in header
    (tmp_path / "host.c").write_text(HOST_MAIN)
    sources = [str(lib / "model.c"), *map(str, sorted((lib / "runtime").glob("*.c"))), str(tmp_path / "host.c")]
    exe = tmp_path / "host"
    subprocess.run([gcc, "-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined",
                    "-fno-sanitize-recover=all", f"-I{lib}", f"-I{lib / 'runtime'}", *sources, "-o", str(exe)],
                   check=True, capture_output=True, text=True)
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
