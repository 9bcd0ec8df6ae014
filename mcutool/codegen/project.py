"""A buildable firmware project: model sources, the runtime and firmware layers, linker scripts, Makefile.

Everything a user needs to rebuild by hand (`make`, `make run`, `make flash`) lands in one folder; nothing
refers back to the mcutool installation.
"""
from __future__ import annotations

import shlex
import shutil
from pathlib import Path

from .. import __version__
from ..boards import CONFIG_DIR, IMAGES, Board
from ..emulate.qemu import qemu_command
from ..ir import Graph
from ..paths import data_dir
from .render import render

RUNTIME_DIR = "runtime"
FIRMWARE_DIR = "firmware"


def copy_runtime(dest: Path) -> list[str]:
    """Copy runtime/ (portable kernels and headers) into dest/runtime; returns the C sources, relative."""
    src = data_dir("runtime")
    target = dest / RUNTIME_DIR
    target.mkdir(parents=True, exist_ok=True)
    sources = []
    for f in sorted(src.iterdir()):
        if f.suffix in (".c", ".h"):
            shutil.copyfile(f, target / f.name)
            if f.suffix == ".c":
                sources.append(f"{RUNTIME_DIR}/{f.name}")
    return sources


def copy_firmware(board: Board, dest: Path, io: str = "semihosting") -> list[str]:
    """Copy the firmware layer into dest/firmware and write each image's mcu_board_config.h (clock steps,
    caches, the UART of `io`) into dest/firmware/config/<image>/; returns the sources `io` builds, relative."""
    board.check_io(io)
    src = data_dir("firmware")
    for sub in board.firmware_dirs:
        target = dest / FIRMWARE_DIR / sub
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(src / sub, target)
    for image in IMAGES:
        config = dest / CONFIG_DIR / image
        config.mkdir(parents=True, exist_ok=True)
        (config / "mcu_board_config.h").write_text(render("firmware/mcu_board_config.h.j2",
                                                          board.config_header_context(image, io)))
    return [f"{FIRMWARE_DIR}/{s}" for s in board.firmware_sources(io)]


def write_linker_scripts(board: Board, dest: Path, stack_size: int, stack_note: str = "") -> None:
    """emulator.ld and board.ld with `stack_size` bytes of stack reserve; `stack_note` says where it came from."""
    for image in ("emulator", "board"):
        context = dict(board.linker_context(image, stack_size), stack_note=stack_note)
        text = render(board.linker_template, context)
        (dest / f"{image}.ld").write_text(text)


MAIN_TEMPLATES = {"semihosting": "project/main.c.j2", "uart": "project/main_uart.c.j2"}


def write_firmware_project(graph: Graph, board: Board, sources: dict[str, str], dest: Path,
                           stack_size: int, io: str = "semihosting") -> None:
    """model.c/model.h (already generated) + main.c + runtime + firmware + linker scripts + Makefile.
    `io`: the harness's I/O back end, semihosting (host files) or uart (frames on the board's serial port)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name, text in sources.items():
        (dest / name).write_text(text)
    tensors = {"inputs": graph.inputs, "outputs": graph.outputs}
    (dest / "main.c").write_text(render(MAIN_TEMPLATES[io], {"model": graph.name, "board": board.name,
                                                             "version": __version__, **tensors}))
    runtime_sources = copy_runtime(dest)
    firmware_sources = copy_firmware(board, dest, io)
    # Until the objects exist to size it from (mcutool.compiler.build_project), a fixed reserve.
    write_linker_scripts(board, dest, stack_size, "fixed (not sized from the call graph)")
    flash = board.flash_command("board.elf")
    io_specs = _default_inputs(graph, dest) if io == "semihosting" else [_io_spec(graph, n) for n in graph.inputs]
    makefile = render("Makefile.j2", {
        "io": io, "inputs": io_specs, "outputs": [_io_spec(graph, n) for n in graph.outputs],
        "board": board.name, "description": board.description, "machine": board.emulator.machine,
        "prefix": board.toolchain.prefix, "arch_flags": list(board.toolchain.cflags),
        # .su: each function's frame; .ci: the call graph with those frames (mcutool.codegen.stack).
        "extra_cflags": ["-fstack-usage", "-fcallgraph-info=su"],
        "include_dirs": [".", RUNTIME_DIR, f"{FIRMWARE_DIR}/include"],
        "app_sources": ["model.c", "main.c", *runtime_sources],
        "firmware_sources": firmware_sources,
        "emulator_defines": board.target_defines("emulator"),
        "board_defines": board.target_defines("board"),
        "run_command": shlex.join(qemu_command(board, "emulator.elf", io=io, serial="stdio")),
        "flash_command": shlex.join(flash) if flash else "",
    })
    (dest / "Makefile").write_text(makefile)


def _io_spec(graph: Graph, name: str) -> dict:
    t = graph.tensor(name)
    return {"name": name, "dtype": t.dtype, "ctype": f"{t.dtype}_t" if t.dtype.startswith(("int", "uint")) else t.dtype}


def _default_inputs(graph: Graph, dest: Path) -> list[dict]:
    """default_input<i>.bin, what `make run` reads when no input<i>.bin is there: every value the input's zero
    point (a real 0)."""
    import numpy as np
    specs = []
    for i, name in enumerate(graph.inputs):
        t = graph.tensor(name)
        zero = int(t.quant.zero_point[0]) if t.quant is not None else 0
        np.full(t.shape, zero, dtype=t.dtype).tofile(dest / f"default_input{i}.bin")
        specs.append(_io_spec(graph, name))
    return specs


def write_library(sources: dict[str, str], dest: Path, model: str = "", board: str = "") -> list[str]:
    """--emit library: model.c/model.h and the runtime sources, for a user's own project, with README.txt (which
    files to compile, how to call the model) and sources.mk (the same list for a Makefile)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name, text in sources.items():
        (dest / name).write_text(text)
    c_files = ["model.c", *copy_runtime(dest)]
    values = {"model": model, "board": board, "version": __version__, "sources": c_files}
    (dest / "README.txt").write_text(render("project/library_README.txt.j2", values))
    (dest / "sources.mk").write_text(render("project/sources.mk.j2", values))
    return c_files
