"""Shared fixtures: where the shared models are, and how a missing tool is treated (fail in CI, skip locally)."""
import os
import shutil
from pathlib import Path

import pytest

# tests/user_repo is a user's repository in small, run by tests/test_api.py as its own pytest session.
collect_ignore = ["user_repo"]

SHARED_MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def shared_model(name: str) -> Path:
    path = SHARED_MODELS / name
    if not path.exists():
        pytest.fail(f"shared model {path} is missing: the tests expect ../shared/models beside the checkout")
    return path


def require_tool(name: str) -> str:
    """The tool's path; a missing tool fails the test in CI (CI=true) and skips it on a developer's machine."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (bash install.sh installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


def require_board_tools(board_name: str):
    """The board, after checking that its cross compiler and emulator are installed (see require_tool)."""
    from mcutool.boards import load_board
    board = load_board(board_name)
    require_tool(board.toolchain.tool("gcc"))
    require_tool(board.emulator.program)
    return board


def random_inputs(graph, rng) -> dict:
    """One uniformly random integer input per graph input, over its dtype's whole range."""
    import numpy as np
    xs = {}
    for name in graph.inputs:
        t = graph.tensor(name)
        info = np.iinfo(t.dtype)
        xs[name] = rng.integers(info.min, info.max + 1, size=t.shape).astype(t.dtype)
    return xs


VFP_MNEMONIC = (r"v(add|sub|n?mul|div|n?ml[as]|f?n?m[as]|fma|fms|neg|abs|sqrt|cvt[a-z]*|mov|mrs|msr|ldr|str|ldm[a-z]*"
                r"|stm[a-z]*|push|pop|cmpe?|sel[a-z]*|maxnm|minnm|rint[a-z]?)")


def assert_no_floating_point(board, elf) -> None:
    """DESIGN.md §7: no soft-float helper (__aeabi_f*/__aeabi_d*, nm) and no VFP instruction (objdump) in `elf`."""
    import re
    import subprocess
    symbols = subprocess.run([board.toolchain.tool("nm"), str(elf)], capture_output=True, text=True,
                             check=True).stdout
    floats = re.findall(r"\b__aeabi_[fd]\w*", symbols)
    assert not floats, f"{elf} links soft-float helpers: {floats}"
    disasm = subprocess.run([board.toolchain.tool("objdump"), "-d", "--no-show-raw-insn", str(elf)],
                            capture_output=True, text=True, check=True).stdout
    vfp = [line for line in disasm.splitlines()
           # a VFP mnemonic then whitespace: a large constant's bytes shown as text ("vi\\...~") are no instruction
           if re.match(r"^\s*[0-9a-f]+:\s+" + VFP_MNEMONIC + r"(\.[a-z0-9.]+)?\s", line)
           or re.search(r"\b(mcr|mrc)2?\s+p1[01]\b", line)]
    assert not vfp, f"{elf} has VFP instructions: {vfp[:5]}"
