"""The hand-written host program that drives an `--emit library` build (a user's own project, in small), and
how the tests compile it: host gcc, -Wall -Wextra -Werror, AddressSanitizer + UBSan, an arena of exactly
MCU_MODEL_ARENA_SIZE bytes from malloc (so an overrun of the planned arena is caught)."""
import hashlib
import subprocess
import tempfile
from pathlib import Path

from conftest import require_tool

HOST_MAIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include "model.h"

static const size_t input_sizes[] = {
    MCU_MODEL_INPUT0_SIZE,
#if MCU_MODEL_NUM_INPUTS > 1
    MCU_MODEL_INPUT1_SIZE,
#endif
#if MCU_MODEL_NUM_INPUTS > 2
#error "the host test program reads at most two inputs"
#endif
};

/* host in0.bin [in1.bin] out.bin: raw tensors in the model's own dtypes */
int main(int argc, char **argv)
{
    int i;
    if (argc != MCU_MODEL_NUM_INPUTS + 2) return 2;
    uint8_t *arena = malloc(MCU_MODEL_ARENA_SIZE);
    if (!arena) return 3;
    for (i = 0; i < MCU_MODEL_NUM_INPUTS; i++) {
        FILE *in = fopen(argv[1 + i], "rb");
        if (!in) return 3;
        if (fread(mcu_model_input(arena, i), 1, input_sizes[i], in) != input_sizes[i]) return 4;
        fclose(in);
    }
    mcu_model_run(arena);
    FILE *out = fopen(argv[argc - 1], "wb");
    if (!out) return 5;
    fwrite(mcu_model_output(arena, 0), 1, MCU_MODEL_OUTPUT0_SIZE, out);
    fclose(out);
    free(arena);
    return 0;
}
"""


FLAGS = ["-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined",
         "-fno-sanitize-recover=all"]
_RUNTIME_ARCHIVES: dict[str, Path] = {}


def _runtime_archive(gcc: str, runtime: Path) -> Path:
    """The runtime/ kernels of an --emit library folder compiled once (same FLAGS) into a static archive, shared
    by every program built from identical runtime sources in this test session: the ~30 kernels take most of a
    host build's time, and every model's library carries the same ones."""
    files = sorted(runtime.glob("*.[ch]"))
    key = hashlib.sha256(b"".join(f.name.encode() + f.read_bytes() for f in files)).hexdigest()
    if key not in _RUNTIME_ARCHIVES:
        work = Path(tempfile.mkdtemp(prefix="mcutool_host_runtime_"))
        sources = [str(f) for f in files if f.suffix == ".c"]
        subprocess.run([gcc, *FLAGS, "-c", f"-I{runtime}", *sources], cwd=work, check=True, capture_output=True,
                       text=True)
        archive = work / "libmcu_runtime.a"
        subprocess.run(["ar", "rcs", str(archive), *sorted(map(str, work.glob("*.o")))], check=True,
                       capture_output=True, text=True)
        _RUNTIME_ARCHIVES[key] = archive
    return _RUNTIME_ARCHIVES[key]


def build_host_program(lib: Path, exe: Path) -> Path:
    """Compile `lib` (an --emit library folder) with HOST_MAIN into `exe`: `exe x.bin [x1.bin] y.bin` runs one
    inference on the raw input tensors (each in its own dtype) and writes output 0 to y.bin."""
    gcc = require_tool("gcc")
    main = exe.parent / f"{exe.stem}_main.c"
    main.write_text(HOST_MAIN)
    archive = _runtime_archive(gcc, lib / "runtime")
    subprocess.run([gcc, *FLAGS, f"-I{lib}", f"-I{lib / 'runtime'}", str(lib / "model.c"), str(main), str(archive),
                    "-o", str(exe)], check=True, capture_output=True, text=True)
    return exe


def run_host_program(exe: Path, inputs: list, out_shape, out_dtype):
    """Run `exe` (build_host_program) on numpy inputs; returns output 0 as an array of `out_dtype`."""
    import numpy as np
    paths = []
    for i, x in enumerate(inputs):
        paths.append(exe.parent / f"{exe.stem}_x{i}.bin")
        paths[-1].write_bytes(np.ascontiguousarray(x).tobytes())
    y = exe.parent / f"{exe.stem}_y.bin"
    done = subprocess.run([str(exe), *map(str, paths), str(y)], capture_output=True, text=True)
    assert done.returncode == 0, f"{exe.name} exited with {done.returncode}: {done.stderr[-2000:]}"
    return np.frombuffer(y.read_bytes(), dtype=out_dtype).reshape(out_shape)
