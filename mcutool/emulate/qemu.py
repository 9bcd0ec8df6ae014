"""Run firmware in its board's QEMU machine and read what it reports (DESIGN.md §5, §6).

The command comes from the board file (program, machine, arguments); the firmware talks to the host
through semihosting, so QEMU runs with its working directory set to the build folder and host file names
are relative to it. (--io uart builds run with no semihosting option, their serial port on a socket:
mcutool.emulate.serial.) QEMU 7.2 writes the semihosting console to its stderr (no chardev is given), next to
its own messages; a UART would appear on stdout. The firmware reports on lines of the form
(firmware/include/mcu_report.h)

    MCUTOOL <record> key=value key=value ...

e.g. "MCUTOOL count name=spin iterations=100000 instructions=200003" or
"MCUTOOL fault exception=3 pc=0x00000270 ... cfsr=0x00010000 hfsr=0x40000000". A fault, a non-zero exit
status or a hang (a bad image hangs QEMU silently) becomes a UserError naming the board and the cause.
"""
from __future__ import annotations

import shlex
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..boards import Board
from ..errors import UserError

PREFIX = "MCUTOOL"
DEFAULT_TIMEOUT_S = 120.0
PROGRAM_NAME = "firmware"  # argv[0] of the semihosting command line

# Cortex-M fault status bits (ARMv7-M ARM B3.2.15, B3.2.16).
_CFSR_BITS = {
    0: "IACCVIOL", 1: "DACCVIOL", 3: "MUNSTKERR", 4: "MSTKERR", 5: "MLSPERR", 7: "MMARVALID",
    8: "IBUSERR", 9: "PRECISERR", 10: "IMPRECISERR", 11: "UNSTKERR", 12: "STKERR", 13: "LSPERR",
    15: "BFARVALID", 16: "UNDEFINSTR", 17: "INVSTATE", 18: "INVPC", 19: "NOCP", 20: "STKOF",
    24: "UNALIGNED", 25: "DIVBYZERO",
}  # fmt: skip
_HFSR_BITS = {1: "VECTTBL", 30: "FORCED", 31: "DEBUGEVT"}
_CORTEX_M_EXCEPTIONS = {
    2: "NMI", 3: "HardFault", 4: "MemManage fault", 5: "BusFault", 6: "UsageFault", 11: "SVCall",
    12: "DebugMonitor", 14: "PendSV", 15: "SysTick",
}  # fmt: skip
_CFSR_MEANINGS = {
    "UNDEFINSTR": "undefined instruction", "INVSTATE": "invalid EPSR state (a jump to an even address?)",
    "INVPC": "invalid EXC_RETURN", "NOCP": "coprocessor (FPU) instruction with the coprocessor off",
    "UNALIGNED": "unaligned access", "DIVBYZERO": "division by zero", "PRECISERR": "bus error on a data access",
    "IMPRECISERR": "imprecise bus error", "IBUSERR": "bus error on an instruction fetch",
    "DACCVIOL": "MPU data access violation", "IACCVIOL": "MPU instruction access violation",
    "STKERR": "bus error while stacking (stack overflow?)", "MSTKERR": "MPU fault while stacking",
    "STKOF": "stack overflow",
}  # fmt: skip
# RISC-V mcause exception codes (privileged spec, table 3.6).
_MCAUSE = {
    0: "instruction address misaligned", 1: "instruction access fault", 2: "illegal instruction",
    3: "breakpoint", 4: "load address misaligned", 5: "load access fault", 6: "store address misaligned",
    7: "store access fault", 8: "environment call from U-mode", 11: "environment call from M-mode",
}  # fmt: skip


@dataclass(frozen=True)
class Record:
    """One "MCUTOOL <kind> key=value ..." line."""

    kind: str
    fields: dict[str, str]

    def __getitem__(self, key: str) -> str:
        return self.fields[key]

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.fields.get(key, default)

    def int(self, key: str) -> int:
        """The value of `key` as an integer (decimal, or hex with 0x)."""
        return int(self.fields[key], 0)


def parse_records(text: str) -> list[Record]:
    """Every protocol line in `text`, in order; other output is ignored."""
    records = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < 2 or words[0] != PREFIX or "=" in words[1]:
            continue
        fields = {}
        for word in words[2:]:
            key, sep, value = word.partition("=")
            if sep:
                fields[key] = value
        records.append(Record(words[1], fields))
    return records


@dataclass
class QemuRun:
    """What one run of the firmware did. `stderr` carries the semihosting console and QEMU's own messages,
    `stdout` the serial port; `records` are the protocol lines of both."""

    board: str
    command: list[str]
    cwd: Path
    returncode: int
    stdout: str
    stderr: str
    records: list[Record] = field(default_factory=list)

    @property
    def console(self) -> str:
        """Everything the firmware printed (semihosting console, then serial port)."""
        return self.stderr + self.stdout

    @property
    def qemu_messages(self) -> str:
        """QEMU's own diagnostics: the stderr lines that are not protocol lines."""
        return "\n".join(line for line in self.stderr.splitlines() if not line.startswith(PREFIX + " ")).strip()

    def all(self, kind: str) -> list[Record]:
        return [r for r in self.records if r.kind == kind]

    def first(self, kind: str) -> Record | None:
        found = self.all(kind)
        return found[0] if found else None

    @property
    def fault(self) -> Record | None:
        return self.first("fault")

    @property
    def command_line(self) -> str:
        return shlex.join(self.command)


def semihosting_config(args: Sequence[str] = ()) -> str:
    """-semihosting-config value passing `args` as the firmware's command line (after argv[0])."""
    words = [PROGRAM_NAME, *args]
    for word in words:
        if not word or any(c.isspace() for c in word):
            raise UserError(f"Firmware arguments cannot be empty or contain spaces: {word!r}.")
    # QEMU option syntax: a literal comma is written twice.
    return "enable=on,target=native" + "".join(",arg=" + w.replace(",", ",,") for w in words)


def qemu_command(board: Board, elf: str | Path, args: Sequence[str] = (), *, io: str = "semihosting",
                 serial: str | None = None) -> list[str]:
    """The QEMU command line that runs `elf` (linked for the emulator memory map) for `board`.

    io="uart": no -semihosting option at all (a stray semihosting call faults); the machine's first serial
    port goes to `serial` (a QEMU chardev spec: "unix:PATH", "pty", "stdio"; mcutool.emulate.serial)."""
    emulator = board.emulator
    if io == "uart":
        board.check_io(io)
        return [emulator.program, "-M", emulator.machine, *emulator.args, "-serial", serial or "stdio",
                "-kernel", str(elf)]
    if emulator.io != "semihosting":
        raise UserError(
            f"Board {board.name}: the emulator's I/O is {emulator.io!r}, but QEMU runs are driven through "
            "semihosting only (set emulator.io = \"semihosting\" in the board file)."
        )
    return [
        emulator.program,
        "-M",
        emulator.machine,
        *emulator.args,
        "-semihosting-config",
        semihosting_config(args),
        "-kernel",
        str(elf),
    ]


def run_firmware(
    board: Board,
    elf: str | Path,
    *,
    cwd: str | Path | None = None,
    args: Sequence[str] = (),
    timeout: float = DEFAULT_TIMEOUT_S,
    check: bool = True,
) -> QemuRun:
    """Run `elf` in `board`'s QEMU machine with `cwd` (default: the ELF's folder) as the host folder.

    With check=True (the default) a fault report, a non-zero exit status or a QEMU error raises
    UserError; a run that exceeds `timeout` seconds always does.
    """
    elf = Path(elf)
    if not elf.is_file():
        raise UserError(f"No firmware image at {elf}: build it first (`make` in its folder).")
    program = board.emulator.program
    if shutil.which(program) is None:
        raise UserError(
            f"{program} is not installed; board {board.name} runs in QEMU's {board.emulator.machine} machine. "
            f"Install it with: {board.emulator.install}"
        )
    workdir = Path(cwd) if cwd is not None else elf.parent
    command = qemu_command(board, elf.resolve(), args)
    try:
        done = subprocess.run(command, cwd=workdir, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        output = _decode(e.stderr) + _decode(e.stdout)
        raise UserError(
            f"The firmware {elf.name} did not finish within {timeout:g} s on board {board.name} "
            f"(QEMU {board.emulator.machine}); QEMU was stopped. A bad image hangs QEMU silently: check that it "
            f"was linked for the emulator's memory map, that it does not wait for hardware QEMU does not model, "
            f"or allow a longer timeout for a long run.{_tail(output)}\nCommand: {shlex.join(command)}"
        ) from None
    run = QemuRun(
        board=board.name,
        command=command,
        cwd=workdir,
        returncode=done.returncode,
        stdout=_decode(done.stdout),
        stderr=_decode(done.stderr),
    )
    run.records = parse_records(run.console)
    if check:
        check_run(board, run, elf)
    return run


def check_run(board: Board, run: QemuRun, elf: Path | None = None) -> None:
    """Raise UserError if `run` faulted, failed or exited non-zero."""
    if run.fault is not None:
        raise UserError(describe_fault(board, run.fault, elf, run))
    if run.returncode != 0:
        errors = " ".join(" ".join(f"{k}={v}" for k, v in r.fields.items()) for r in run.all("error"))
        said = f" It reported: {errors}." if errors else ""
        qemu = f"\nQEMU said: {run.qemu_messages}" if run.qemu_messages else ""
        raise UserError(
            f"The firmware exited with status {run.returncode} on board {board.name} "
            f"(QEMU {board.emulator.machine}).{said}{_tail(run.console)}{qemu}\nCommand: {run.command_line}"
        )


def describe_fault(board: Board, fault: Record, elf: Path | None = None, run: QemuRun | None = None) -> str:
    """A paragraph saying where and why the firmware faulted, from its fault record."""
    pc = fault.get("pc", "?")
    where = _symbolize(board, elf, pc) if elf is not None and pc != "?" else ""
    causes = _fault_causes(fault)
    details = " ".join(f"{k}={v}" for k, v in fault.fields.items())
    status = f" and exited with status {run.returncode}" if run is not None else ""
    command = f"\nCommand: {run.command_line}" if run is not None else ""
    return (
        f"The firmware faulted on board {board.name} (QEMU {board.emulator.machine}){status}: "
        f"{causes} at pc={pc}{where}. Fault report: {details}.{command}"
    )


def _fault_causes(fault: Record) -> str:
    if "cfsr" in fault.fields:  # Cortex-M
        exception = _CORTEX_M_EXCEPTIONS.get(fault.int("exception"), f"exception {fault.get('exception')}")
        cfsr = fault.int("cfsr")
        hfsr = fault.int("hfsr") if "hfsr" in fault.fields else 0
        flags = [name for bit, name in _CFSR_BITS.items() if cfsr >> bit & 1]
        flags += [f"HFSR.{name}" for bit, name in _HFSR_BITS.items() if hfsr >> bit & 1]
        meanings = [_CFSR_MEANINGS[f] for f in flags if f in _CFSR_MEANINGS]
        if "BFARVALID" in flags and "bfar" in fault.fields:
            meanings.append(f"bus fault address {fault['bfar']}")
        if "MMARVALID" in flags and "mmfar" in fault.fields:
            meanings.append(f"MPU fault address {fault['mmfar']}")
        text = exception + (f" ({', '.join(flags)})" if flags else "")
        return text + (f": {'; '.join(meanings)}" if meanings else "")
    if "mcause" in fault.fields:  # RISC-V
        mcause = fault.int("mcause")
        if mcause >> 31:
            return f"unexpected interrupt {mcause & 0x7FFFFFFF}"
        cause = _MCAUSE.get(mcause, f"exception {mcause}")
        mtval = fault.get("mtval")
        return f"{cause} (mcause={mcause})" + (f", mtval={mtval}" if mtval and int(mtval, 0) else "")
    return "a fault"


def _symbolize(board: Board, elf: Path, pc: str) -> str:
    """" in function (file:line)" for `pc`, when the toolchain's addr2line is at hand."""
    tool = board.toolchain.tool("addr2line")
    if shutil.which(tool) is None:
        return ""
    try:
        out = subprocess.run([tool, "-f", "-e", str(elf), pc], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    lines = out.strip().splitlines()
    if not lines or lines[0] == "??":
        return ""
    place = f" ({lines[1]})" if len(lines) > 1 and not lines[1].startswith("??") else ""
    return f" in {lines[0]}{place}"


def _decode(data: bytes | str | None) -> str:
    if data is None:
        return ""
    if isinstance(data, str):
        return data
    return data.decode("utf-8", errors="replace")


def _tail(output: str, lines: int = 5) -> str:
    kept = [line for line in output.strip().splitlines() if line.strip()][-lines:]
    return ("\nLast output:\n  " + "\n  ".join(kept)) if kept else ""
