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
    FILE *out = fopen(argv[2], "wb");
    if (!arena || !in || !out) return 3;
    int steps = 0;
    mcu_model_reset();
    while (fread(mcu_model_input(arena, 0), 1, MCU_MODEL_INPUT0_SIZE, in) == MCU_MODEL_INPUT0_SIZE) {
        mcu_model_run(arena);
        fwrite(mcu_model_output(arena, 0), 1, MCU_MODEL_OUTPUT0_SIZE, out);
        ++steps;
    }
    fclose(in);
    fclose(out);
    free(arena);
    return steps > 0 ? 0 : 4;
}
"""


def build_host_program(lib: Path, exe: Path) -> Path:
    """Compile `lib` (an --emit library folder) with HOST_MAIN into `exe`: `exe x.bin y.bin` resets the model's
    state, runs one inference per input in x.bin (one, or a sequence of them back to back) and writes the outputs
    to y.bin in the same order."""
    gcc = require_tool("gcc")
    main = exe.parent / f"{exe.stem}_main.c"
    main.write_text(HOST_MAIN)
    sources = [str(lib / "model.c"), *map(str, sorted((lib / "runtime").glob("*.c"))), str(main)]
    subprocess.run([gcc, "-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined",
                    "-fno-sanitize-recover=all", f"-I{lib}", f"-I{lib / 'runtime'}", *sources, "-o", str(exe)],
                   check=True, capture_output=True, text=True)
    return exe
