"""The board layer, proven per board: boards/*.toml, firmware/, templates/ (linker, Makefile, self-test) and
mcutool.emulate.qemu.

For every board the self-test project is rendered into a temporary folder, built with the board's toolchain
(-Wall -Wextra -Werror, -Os, freestanding) and run in the board's QEMU machine: bytes round-trip through
semihosting file I/O, a loop of known length is counted exactly, faults are reported with their PC, a hang
times out with a clear error, and neither image holds any floating-point code.

Tests that need a cross toolchain or QEMU are marked `qemu`; a missing tool fails them when CI=true and
skips them otherwise (DESIGN.md §11).
"""
from __future__ import annotations

import random
import re
import shlex
import struct
import subprocess
from pathlib import Path

import jinja2
import pytest

from conftest import require_tool
from mcutool import paths
from mcutool.boards import Board, list_boards, load_board, load_board_file
from mcutool.codegen.project import copy_firmware
from mcutool.emulate.qemu import parse_records, qemu_command, run_firmware, semihosting_config
from mcutool.errors import UserError

BOARDS = list_boards()
STACK_SIZE = 2048
SPIN_ITERATIONS = 100_000
SWEEP_STEPS = 64  # region lengths 2k+c and 2k+c+1, k = 1..64: every phase of a 40- or 125-instruction tick
MAX_BYTES = 512
# Faults on every machine here: an unmapped address (BusFault/PRECISERR on Cortex-M, load access fault
# on RISC-V) in mps2-an500/an386, netduinoplus2, sifive_e and virt alike.
UNMAPPED_ADDRESS = 0xF0000000
QEMU_TIMEOUT_S = 30.0


# --- helpers -------------------------------------------------------------------------------------------


def require_tools(*tools: str) -> None:
    """conftest.require_tool for each: fail in CI (CI=true), skip on a developer's machine."""
    for tool in tools:
        require_tool(tool)


def board_tools(board: Board) -> list[str]:
    return ["make", board.toolchain.tool("gcc"), board.toolchain.tool("objdump"), board.toolchain.tool("nm"),
            board.emulator.program]  # fmt: skip


def template_env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(paths.data_dir("templates")),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def render_selftest_project(board: Board, dest: Path, stack_size: int = STACK_SIZE) -> Path:
    """A standalone project in `dest`: firmware sources copied in, both linker scripts, main.c, Makefile."""
    env = template_env()
    firmware_sources = copy_firmware(board, dest)  # firmware/ and each image's mcu_board_config.h
    for image in ("emulator", "board"):
        text = env.get_template(board.linker_template).render(board.linker_context(image, stack_size))
        (dest / f"{image}.ld").write_text(text)
    main = env.get_template("main_selftest.c.j2").render(
        board=board.name, max_bytes=MAX_BYTES, spin_iterations=SPIN_ITERATIONS, sweep_steps=SWEEP_STEPS,
        input_path="input.bin", output_path="output.bin",
    )  # fmt: skip
    (dest / "main.c").write_text(main)
    flash = board.flash_command("board.elf")
    makefile = env.get_template("Makefile.j2").render(
        board=board.name,
        description=board.description,
        machine=board.emulator.machine,
        prefix=board.toolchain.prefix,
        arch_flags=list(board.toolchain.cflags),
        extra_cflags=[],
        include_dirs=["firmware/include"],
        app_sources=["main.c"],
        firmware_sources=firmware_sources,
        emulator_defines=board.target_defines("emulator"),
        board_defines=board.target_defines("board"),
        run_command=shlex.join(qemu_command(board, "emulator.elf")),
        flash_command=shlex.join(flash) if flash else "",
        io="semihosting",  # the self-test reads input.bin / writes output.bin, raw bytes
        inputs=[{"ctype": "uint8_t", "dtype": "uint8"}], outputs=[{}],
    )
    (dest / "Makefile").write_text(makefile)
    return dest


def make(project: Path, *targets: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-C", str(project), *targets], capture_output=True, text=True, timeout=300)


def fnv1a(data: bytes) -> int:
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def mnemonics(board: Board, elf: Path) -> list[tuple[str, str]]:
    """(mnemonic, operands) of every disassembled instruction in `elf`."""
    out = subprocess.run(
        [board.toolchain.tool("objdump"), "-d", "--no-show-raw-insn", str(elf)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    found = []
    for line in out.splitlines():
        m = re.match(r"^\s*[0-9a-f]+:\s+(\S+)\s*(.*)$", line)
        if m and not m.group(1).startswith("."):
            found.append((m.group(1), m.group(2)))
    return found


def float_instructions(board: Board, elf: Path) -> list[str]:
    """Floating-point instructions: VFP/NEON (v*) and CP10/CP11 accesses on Arm; F/D/Q (f*, not fence) and
    FP CSR accesses on RISC-V."""
    bad = []
    for mnemonic, operands in mnemonics(board, elf):
        m = mnemonic.lower()
        if board.arch == "cortex-m":
            if m.startswith("v") or (m[:3] in ("mcr", "mrc", "ldc", "stc") and re.search(r"\bp1[01]\b", operands)):
                bad.append(f"{mnemonic} {operands}")
        else:
            if (m.startswith("f") and not m.startswith("fence")) or re.search(r"\b(fcsr|frm|fflags)\b", operands):
                bad.append(f"{mnemonic} {operands}")
    return bad


_SOFT_FLOAT_SYMBOL = re.compile(
    r"^__(aeabi_[fd]\w*|(add|sub|mul|div|neg|cmp|eq|ne|lt|le|gt|ge|unord|extend|trunc|float|fix|fixuns|pow)\w*(sf|df|tf|xf)\w*)$"
)


def symbols(board: Board, path: Path) -> list[str]:
    out = subprocess.run([board.toolchain.tool("nm"), str(path)], capture_output=True, text=True, check=True).stdout
    return [line.split()[-1] for line in out.splitlines() if line.strip()]


def float_symbols(board: Board, path: Path) -> list[str]:
    """Soft-float helpers (__aeabi_f*/__aeabi_d*, __mulsf3, __floatsidf, ...) defined or referenced."""
    return [s for s in symbols(board, path) if _SOFT_FLOAT_SYMBOL.match(s)]


def elf_entry(elf: Path) -> int:
    data = elf.read_bytes()[:0x1C]
    assert data[:4] == b"\x7fELF" and data[4] == 1, "expected a 32-bit ELF"
    return struct.unpack_from("<I", data, 0x18)[0]


def alloc_sections(board: Board, elf: Path) -> list[tuple[str, int, int, int, bool]]:
    """(name, vma, lma, size, loaded) of the sections that occupy target memory."""
    out = subprocess.run([board.toolchain.tool("objdump"), "-h", "-w", str(elf)], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    found = []
    for line in out.splitlines():
        m = re.match(r"^\s*\d+\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+[0-9a-f]+\s+\S+\s+(.*)$", line)
        if m and "ALLOC" in m.group(5):
            size, vma, lma = int(m.group(2), 16), int(m.group(3), 16), int(m.group(4), 16)
            if size:
                found.append((m.group(1), vma, lma, size, "LOAD" in m.group(5)))
    return found


# --- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=BOARDS)
def built(request, tmp_path_factory) -> tuple[Board, Path]:
    """(board, project folder) with emulator.elf and board.elf built by the rendered Makefile."""
    board = load_board(request.param)
    require_tools(*board_tools(board))
    project = render_selftest_project(board, tmp_path_factory.mktemp(board.name))
    done = make(project, "-j2", "all")
    assert done.returncode == 0, f"build failed for {board.name}:\n{done.stdout}\n{done.stderr}"
    return board, project


# --- boards (no tools needed) --------------------------------------------------------------------------


def test_every_board_loads_with_its_limits():
    expected = {  # DESIGN.md §5
        "stm32f746": (1 << 20, 320 << 10, "mps2-an500"),
        "nucleo-l4r5zi": (2 << 20, 640 << 10, "mps2-an386"),
        "stm32f405": (1 << 20, 128 << 10, "netduinoplus2"),
        "hifive1-revb": ((4 << 20) - (64 << 10), 16 << 10, "sifive_e,revb=true"),
        "rv32-generic": (1 << 20, 256 << 10, "virt"),
    }
    assert set(BOARDS) == set(expected)
    for name, (flash, sram, machine) in expected.items():
        board = load_board(name)
        assert (board.flash_bytes, board.sram_bytes, board.emulator.machine) == (flash, sram, machine)
        # The emulator image is capped to the real board's sizes, region by region.
        for region in board.memory.regions:
            assert board.memory_map("emulator")[region.name].length == region.length
        assert "-mfloat-abi=soft" in board.toolchain.cflags or "-mabi=ilp32" in board.toolchain.cflags


def test_unknown_board_lists_the_known_ones():
    with pytest.raises(UserError) as e:
        load_board("stm32f999")
    for name in BOARDS:
        assert name in str(e.value)


def test_board_file_errors_name_the_key(tmp_path):
    text = (paths.data_dir("boards") / "stm32f746.toml").read_text()
    bad = tmp_path / "bad.toml"
    # An emulator SRAM larger than the board's would let QEMU accept images the board cannot hold.
    bad.write_text(text.replace("[emulator.memory.sram]\norigin = 0x20000000\nlength = 0x50000",
                                "[emulator.memory.sram]\norigin = 0x20000000\nlength = 0x60000"))  # fmt: skip
    with pytest.raises(UserError, match=r"emulator\.memory\.sram"):
        load_board_file(bad)
    bad.write_text(text.replace('kind = "cmsdk_dualtimer"', 'kind = "sundial"'))
    with pytest.raises(UserError, match=r"emulator\.counter\.kind"):
        load_board_file(bad)


def test_openocd_configs_exist_in_the_openocd_scripts():
    scripts = Path("/usr/share/openocd/scripts")
    require_tools("openocd")
    assert scripts.is_dir(), "openocd is installed but its scripts are not under /usr/share/openocd/scripts"
    for name in BOARDS:
        for cfg in load_board(name).flash.openocd:
            assert (scripts / cfg).is_file(), f"{name}: {cfg} is not among openocd's scripts"


def test_qemu_command_comes_from_the_board_file():
    board = load_board("hifive1-revb")
    cmd = qemu_command(board, "fw.elf", ["in=a,b.bin"])
    assert cmd[:3] == ["qemu-system-riscv32", "-M", "sifive_e,revb=true"]
    assert "-bios" in cmd and cmd[cmd.index("-icount") + 1] == "shift=0"
    assert cmd[-2:] == ["-kernel", "fw.elf"]
    # A comma in an argument is doubled, QEMU's option syntax for a literal comma.
    assert cmd[cmd.index("-semihosting-config") + 1] == "enable=on,target=native,arg=firmware,arg=in=a,,b.bin"
    with pytest.raises(UserError):
        semihosting_config(["two words"])


def test_parse_records_reads_only_protocol_lines():
    text = "boot\nMCUTOOL count name=x instructions=12\nMCUTOOL fault pc=0x10 cfsr=0x1\nMCUTOOL a=b\n"
    records = parse_records(text)
    assert [(r.kind, r.fields) for r in records] == [
        ("count", {"name": "x", "instructions": "12"}),
        ("fault", {"pc": "0x10", "cfsr": "0x1"}),
    ]
    assert records[1].int("pc") == 16


# --- built and run per board ---------------------------------------------------------------------------


@pytest.mark.qemu
def test_selftest_round_trips_bytes_counts_exactly_and_measures_the_stack(built):
    board, project = built
    rng = random.Random(board.name)
    payload = bytes([0, 0xFF, 0x0A, 0x0D, 0x1A]) + bytes(rng.randrange(256) for _ in range(300))
    (project / "in.bin").write_bytes(payload)
    run = run_firmware(board, project / "emulator.elf", cwd=project, args=["in=in.bin", "out=out.bin"],
                       timeout=QEMU_TIMEOUT_S)  # fmt: skip
    assert run.returncode == 0
    assert (project / "out.bin").read_bytes() == payload
    io = run.first("io")
    assert io is not None and io.int("read") == io.int("written") == len(payload)
    assert io.int("fnv1a") == fnv1a(payload)  # the firmware saw the bytes, not just the host

    counts = {r.int("iterations"): r.int("instructions") for r in run.all("count")}
    assert set(counts) == {SPIN_ITERATIONS, 2 * SPIN_ITERATIONS}
    for n, measured in counts.items():
        expected = 2 * n + 1  # mcu_spin: n x (subtract, branch) + return; read off the disassembly
        assert abs(measured - expected) <= 0.01 * expected
        assert 0 <= measured - expected <= 8, f"{board.name}: {measured} for {expected} (only the call site may add)"
    # Exact: doubling the iterations adds exactly 2 x 100000 instructions, whatever the call site costs.
    assert counts[2 * SPIN_ITERATIONS] - counts[SPIN_ITERATIONS] == 2 * SPIN_ITERATIONS
    # Exact at every length: short regions of every residue modulo the emulator timer's tick.
    sweep = run.first("sweep")
    assert sweep is not None and sweep.int("regions") == 2 * SWEEP_STEPS
    assert sweep.int("exact") == sweep.int("regions")

    stack = run.first("stack")
    assert stack is not None and stack.int("size") == STACK_SIZE
    assert 16 <= stack.int("high_water") < STACK_SIZE


@pytest.mark.qemu
@pytest.mark.parametrize("fault", ["trap", f"load@0x{UNMAPPED_ADDRESS:08X}"])
def test_fault_is_reported_with_its_pc_and_a_nonzero_exit(built, fault):
    board, project = built
    elf = project / "emulator.elf"
    run = run_firmware(board, elf, args=[f"fault={fault}"], check=False, timeout=QEMU_TIMEOUT_S)
    assert run.returncode != 0
    report = run.fault
    assert report is not None, run.console
    pc = report.int("pc")
    flash = board.memory_map("emulator")["flash"]
    assert flash.origin <= pc < flash.end
    if fault.startswith("load"):  # the faulting address is reported (BFAR on Cortex-M, mtval on RISC-V)
        assert UNMAPPED_ADDRESS in {int(v, 0) for v in report.fields.values() if v.startswith("0x")}
    with pytest.raises(UserError) as e:
        run_firmware(board, elf, args=[f"fault={fault}"], timeout=QEMU_TIMEOUT_S)
    message = str(e.value)
    assert board.name in message and f"pc=0x{pc:08x}" in message
    assert ("fault_trap" if fault == "trap" else "fault_load") in message  # symbolized with addr2line


@pytest.mark.qemu
def test_a_hang_times_out_naming_the_board(built):
    board, project = built
    with pytest.raises(UserError) as e:
        run_firmware(board, project / "emulator.elf", args=["fault=hang"], timeout=1)
    assert "did not finish within 1 s" in str(e.value) and board.name in str(e.value)


@pytest.mark.qemu
def test_no_floating_point_in_either_image(built):
    board, project = built
    for elf in (project / "emulator.elf", project / "board.elf"):
        instructions = mnemonics(board, elf)
        assert len(instructions) > 100  # the disassembly is real, so an empty result below means something
        assert float_instructions(board, elf) == []
        names = symbols(board, elf)
        assert "main" in names
        assert float_symbols(board, elf) == []


FLOAT_CODE = "float scale(float a, float b) { return a * b; }\n"
HARD_FLOAT_FLAGS = {"cortex-m": ["-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"], "riscv": ["-march=rv32imafc", "-mabi=ilp32f"]}


@pytest.mark.qemu
@pytest.mark.parametrize("arch", sorted(HARD_FLOAT_FLAGS))
def test_float_checks_catch_float_code(arch, tmp_path):
    """The two checks above are not vacuous: soft-float code is caught by nm, FPU code by objdump."""
    board = next(load_board(n) for n in BOARDS if load_board(n).arch == arch)
    require_tools(board.toolchain.tool("gcc"), board.toolchain.tool("objdump"), board.toolchain.tool("nm"))
    src = tmp_path / "scale.c"
    src.write_text(FLOAT_CODE)
    gcc = board.toolchain.tool("gcc")
    soft, hard = tmp_path / "soft.o", tmp_path / "hard.o"
    subprocess.run([gcc, *board.toolchain.cflags, "-Os", "-c", str(src), "-o", str(soft)], check=True)
    subprocess.run([gcc, *board.toolchain.cflags, *HARD_FLOAT_FLAGS[arch], "-Os", "-c", str(src), "-o", str(hard)],
                   check=True)  # fmt: skip
    assert float_symbols(board, soft)  # __aeabi_fmul / __mulsf3
    assert float_instructions(board, hard)  # vmul.f32 / fmul.s


@pytest.mark.qemu
def test_images_are_linked_for_their_memory_maps(built):
    board, project = built
    for image in ("emulator", "board"):
        elf = project / f"{image}.elf"
        memory = board.memory_map(image)
        assert elf_entry(elf) & ~1 >= memory["flash"].origin
        for name, vma, lma, size, loaded in alloc_sections(board, elf):
            home = [r for r in memory.regions if r.origin <= vma and vma + size <= r.end]
            assert home, f"{image}.elf: {name} at 0x{vma:08x} lies outside {board.name}'s {image} memory map"
            if loaded:  # what the image carries (code, constants, .data's initial values) lives in ROM
                assert any(r.kind == "rom" and r.origin <= lma and lma + size <= r.end for r in memory.regions), name
    # Reset starts at the first byte of flash: the vector table (Cortex-M) or _start (RISC-V).
    sections = {name: vma for name, vma, *_ in alloc_sections(board, project / "emulator.elf")}
    assert min(sections.values()) == board.memory_map("emulator")["flash"].origin


@pytest.mark.qemu
@pytest.mark.parametrize("region", ["sram", "flash"])
def test_an_image_too_large_fails_at_link_time_naming_the_region(built, region, tmp_path):
    board, project = built
    size = board.memory[region].length  # one whole region more than the firmware already uses
    decl = f"const unsigned char big[{size}] = {{1}};" if region == "flash" else f"unsigned char big[{size}];"
    src = tmp_path / "big.c"
    src.write_text(decl + "\n")
    objs = sorted(str(p) for p in (project / "obj").rglob("*.o") if "/board/" not in p.as_posix())
    done = subprocess.run(
        [board.toolchain.tool("gcc"), *board.toolchain.cflags, "-nostdlib", "-nostartfiles", "-Wl,--gc-sections",
         "-Wl,-u,big", "-T", str(project / "emulator.ld"), "-o", str(tmp_path / "big.elf"), str(src), *objs, "-lgcc"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode != 0
    assert f"region `{region}' overflowed" in done.stderr


@pytest.mark.qemu
def test_make_run_works_for_a_user(built):
    board, project = built
    (project / "input.bin").write_bytes(b"hello, board\n")
    done = make(project, "run")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "MCUTOOL stack" in done.stdout + done.stderr
    assert (project / "output.bin").read_bytes() == b"hello, board\n"
