"""The hand-written host program that drives an `--emit library` build (a user's own project, in small), and
how the tests compile it: host gcc, -Wall -Wextra -Werror, AddressSanitizer + UBSan, an arena of exactly
MCU_MODEL_ARENA_SIZE bytes from malloc (so an overrun of the planned arena is caught)."""
import subprocess
from pathlib import Path

from conftest import require_tool

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


FLAGS = ["-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined",
         "-fno-sanitize-recover=all"]


def build_host_program(lib: Path, exe: Path, runtime_objects: list[Path] | None = None) -> Path:
    """Compile `lib` (an --emit library folder) with HOST_MAIN into `exe`: `exe x.bin y.bin` runs one inference
    on the int8 input in x.bin and writes the output to y.bin. `runtime_objects`: the runtime already compiled
    (compile_runtime), so only model.c and the main are compiled here."""
    gcc = require_tool("gcc")
    main = exe.parent / f"{exe.stem}_main.c"
    main.write_text(HOST_MAIN)
    runtime = runtime_objects if runtime_objects is not None else sorted((lib / "runtime").glob("*.c"))
    sources = [str(lib / "model.c"), *map(str, runtime), str(main)]
    subprocess.run([gcc, *FLAGS, f"-I{lib}", f"-I{lib / 'runtime'}", *sources, "-o", str(exe)],
                   check=True, capture_output=True, text=True)
    return exe


def compile_runtime(lib: Path, out: Path) -> list[Path]:
    """The runtime sources of `lib` compiled once (with build_host_program's flags) into objects in `out`."""
    gcc = require_tool("gcc")
    out.mkdir(parents=True, exist_ok=True)
    objects = []
    for c in sorted((lib / "runtime").glob("*.c")):
        obj = out / f"{c.stem}.o"
        subprocess.run([gcc, *FLAGS, f"-I{lib / 'runtime'}", "-c", str(c), "-o", str(obj)], check=True,
                       capture_output=True, text=True)
        objects.append(obj)
    return objects
