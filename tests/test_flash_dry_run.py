"""mcutool flash --dry-run prints the exact programming commands for a built project."""
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import require_tool, shared_model
from mcutool.boards import list_boards, load_board
from mcutool.compiler import Options, compile_model

OPENOCD_SCRIPTS = Path("/usr/share/openocd/scripts")


def flash_dry_run(project, *args):
    done = subprocess.run([sys.executable, "-m", "mcutool", "flash", str(project), "--dry-run", *args],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return [shlex.split(line) for line in done.stdout.splitlines()]


@pytest.fixture(scope="module")
def f746_project(tmp_path_factory):
    require_tool("arm-none-eabi-gcc")
    out = tmp_path_factory.mktemp("f746") / "proj"
    compile_model(shared_model("hello_world_int8.tflite"), "stm32f746", out, Options())
    return out


def test_openocd_command_names_the_elf_and_a_real_config(f746_project):
    require_tool("openocd")
    [cmd] = flash_dry_run(f746_project, "--probe", "openocd")
    assert cmd[0] == "openocd"
    configs = [cmd[i + 1] for i, a in enumerate(cmd) if a == "-f"]
    assert configs and all((OPENOCD_SCRIPTS / c).is_file() for c in configs)
    program = cmd[cmd.index("-c") + 1]
    elf = program.split()[1]
    assert program.startswith("program ") and Path(elf).is_file() and elf.endswith("board.elf")


def test_stlink_writes_the_binary_at_internal_flash(f746_project):
    objcopy, write = flash_dry_run(f746_project, "--probe", "stlink")
    assert objcopy[0] == "arm-none-eabi-objcopy" and Path(objcopy[3]).is_file()
    assert write[:3] == ["st-flash", "--reset", "write"] and write[3] == objcopy[4]
    assert int(write[4], 16) == 0x08000000


PHYSICAL_BOARDS = ["stm32f746", "nucleo-l4r5zi", "stm32f405", "hifive1-revb"]  # rv32-generic is QEMU-only


def test_the_physical_boards_are_the_ones_with_a_flash_method():
    assert sorted(b for b in list_boards() if load_board(b).flash_command("x.elf")) == sorted(PHYSICAL_BOARDS)


@pytest.mark.parametrize("board", PHYSICAL_BOARDS)
def test_openocd_configs_exist_in_debians_openocd(board):
    require_tool("openocd")
    cmds = load_board(board).flash_commands("x.elf", "openocd")
    configs = [cmds[0][i + 1] for i, a in enumerate(cmds[0]) if a == "-f"]
    missing = [c for c in configs if not (OPENOCD_SCRIPTS / c).is_file()]
    assert not missing, f"{board}: openocd configs not in Debian's openocd package: {missing}"
