"""Boards: one TOML file per board in boards/ (DESIGN.md §5) — data, not code.

A board file names the core and its compiler flags, two memory maps (the real board's and the emulator's,
where the same sizes live in the QEMU machine), the counter each image uses, the emulator command and how
to flash the board. Code asks a `Board` for its properties and never branches on its name.

    board = load_board("stm32f746")
    board.flash_bytes, board.sram_bytes               # the real board's limits
    board.memory_map("emulator")["sram"].origin       # where that SRAM lives in QEMU
    board.linker_context("emulator", stack_size=4096) # variables for templates/linker/<arch>.ld.j2
    board.target_defines("emulator")                  # -D flags for firmware/<arch>/ (counter, vectors)
    board.config_header_context("board", "uart")      # variables for templates/firmware/mcu_board_config.h.j2:
                                                      # clock steps, caches, the UART and its divisors
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import paths
from .errors import UserError

ARCHES = ("cortex-m", "riscv")
IMAGES = ("board", "emulator")
REGION_KINDS = ("rom", "ram")
CODE_REGION = "flash"  # code, constants, .data's initial values
DATA_REGION = "sram"  # stack reserve, .data, .bss
IO_BACKENDS = ("semihosting", "uart")
# UART peripherals firmware/uart/mcu_uart.c drives, and how each turns a kernel clock into its divisor register.
UART_KINDS = {
    "stm32_usart_sr": lambda clock, baud: round(clock / baud),        # F4 USART, 16x oversampling: BRR = f/baud
    "stm32_usart": lambda clock, baud: round(clock / baud),           # F7/L4 USART, 16x oversampling
    "stm32_lpuart": lambda clock, baud: round(256 * clock / baud),    # L4 LPUART: BRR = 256 f / baud
    "cmsdk_uart": lambda clock, baud: clock // baud,                  # CMSDK APB UART: BAUDDIV >= 16
    "sifive_uart": lambda clock, baud: round(clock / baud) - 1,       # SiFive: baud = f / (div + 1)
}
# A register step: read-modify-write, a bounded poll, or a busy delay of N loops (firmware/include/mcu_board.h).
STEP_OPS = ("set", "wait", "delay")
COUNTER_KINDS = ("cmsdk_dualtimer", "stm32_tim", "dwt_cyccnt", "minstret", "mcycle")
COUNTER_UNITS = ("instructions", "cycles")
# Counter kinds that sit at a peripheral address the board file must give.
_COUNTERS_WITH_BASE = ("cmsdk_dualtimer", "stm32_tim")
# The vernier loop (firmware/cortex-m/counter.c) needs a tick of at least this many instructions.
_MIN_UNITS_PER_VERNIER_TICK = 5


@dataclass(frozen=True)
class MemoryRegion:
    name: str  # the board file's key; also the linker script's region name
    origin: int
    length: int
    kind: str  # "rom" (loaded from the image) or "ram"

    @property
    def end(self) -> int:
        return self.origin + self.length


@dataclass(frozen=True)
class MemoryMap:
    regions: tuple[MemoryRegion, ...]

    def __getitem__(self, name: str) -> MemoryRegion:
        for region in self.regions:
            if region.name == name:
                return region
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return any(region.name == name for region in self.regions)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(region.name for region in self.regions)


@dataclass(frozen=True)
class Counter:
    """What counts time in one image: `units_per_tick` instructions (or cycles) per counter tick."""

    kind: str
    unit: str
    units_per_tick: int
    base: int | None = None
    prescaler: int | None = None

    def defines(self) -> list[str]:
        """-D flags that select and configure this counter in firmware/<arch>/counter.c."""
        flags = [f"-DMCU_COUNTER_{self.kind.upper()}=1", f"-DMCU_COUNTER_UNITS_PER_TICK={self.units_per_tick}"]
        if self.base is not None:
            flags.append(f"-DMCU_COUNTER_BASE=0x{self.base:08X}u")
        if self.prescaler is not None:
            flags.append(f"-DMCU_COUNTER_PRESCALER={self.prescaler}u")
        if self.unit == "cycles":
            flags.append("-DMCU_COUNTER_UNIT_CYCLES=1")
        return flags


@dataclass(frozen=True)
class RegStep:
    """One register step of a start-up sequence: "set" does *address = (*address & ~mask) | value; "wait" polls
    until (*address & mask) == value, a bounded number of times; "delay" spins `value` loops
    (firmware/include/mcu_board.h)."""

    op: str
    address: int
    mask: int
    value: int

    def c_initializer(self) -> str:
        return (f"{{MCU_STEP_{self.op.upper()}, 0x{self.address:08X}u, 0x{self.mask:08X}u, "
                f"0x{self.value:08X}u}}")


@dataclass(frozen=True)
class ClockSetup:
    """How the board reaches its rated clock from reset: register steps (reference manual data)."""

    reset_hz: int  # the core clock out of reset (e.g. HSI 16 MHz), kept if a wait times out
    steps: tuple[RegStep, ...]


@dataclass(frozen=True)
class Uart:
    """The console UART of one image: the peripheral, its pins' and clocks' set-up steps, its baud rate."""

    kind: str  # one of UART_KINDS
    base: int
    baud: int
    clock_hz: int  # the UART's kernel clock once the clock steps ran
    reset_clock_hz: int  # its kernel clock if they did not (reset state)
    init: tuple[RegStep, ...]  # pins, clock enables, I/O supply: run before the divisor is written
    pins: str = ""  # for people: "PA9 TX, PB7 RX (AF7)"

    def divisor(self, clock_hz: int) -> int:
        return UART_KINDS[self.kind](clock_hz, self.baud)


@dataclass(frozen=True)
class Toolchain:
    prefix: str  # "arm-none-eabi-": gcc, objdump, nm, size, addr2line
    cflags: tuple[str, ...]  # core, ISA, ABI; the float ABI is soft on every board
    install: str  # how to get it, for error messages

    def tool(self, name: str) -> str:
        return self.prefix + name


@dataclass(frozen=True)
class Emulator:
    program: str  # "qemu-system-arm"
    machine: str  # "-M" value, properties included ("sifive_e,revb=true")
    args: tuple[str, ...]  # everything else but -kernel and -semihosting-config
    io: str  # "semihosting"
    install: str
    memory: MemoryMap
    counter: Counter
    uart: Uart | None = None  # the UART the emulated machine gives QEMU's first serial port
    clock_setup: bool = False  # the machine models the chip's clock tree registers: run the board's clock steps

    @property
    def description(self) -> str:
        """How report.json names the emulator: "qemu-system-arm -M mps2-an500"."""
        return f"{self.program} -M {self.machine}"


@dataclass(frozen=True)
class FlashMethods:
    openocd: tuple[str, ...] = ()  # -f files under openocd's scripts folder
    openocd_regions: tuple[str, ...] = (CODE_REGION,)  # regions those configs give a flash bank (stmqspi: ext_flash)
    pyocd_target: str | None = None
    st_flash_address: int | None = None


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    arch: str  # selects firmware/<arch>/ and templates/linker/<arch>.ld.j2
    core: str
    isa: str
    fpu: str  # what the silicon has; the firmware never uses it
    dsp: bool
    clock_hz: int
    irq_count: int
    toolchain: Toolchain
    memory: MemoryMap  # the real board's
    counter: Counter  # the real board's
    flash: FlashMethods
    emulator: Emulator
    path: Path
    uart: Uart | None = None  # the board's console (the debugger's virtual COM port)
    clock: ClockSetup | None = None
    caches: bool = False  # Cortex-M7 L1 caches to turn on at start-up

    @property
    def flash_bytes(self) -> int:
        return self.memory[CODE_REGION].length

    @property
    def sram_bytes(self) -> int:
        return self.memory[DATA_REGION].length

    def memory_map(self, image: str) -> MemoryMap:
        """The memory map of `image`: "board" (the real one) or "emulator" (the QEMU machine's)."""
        return self.emulator.memory if _image(image) == "emulator" else self.memory

    def counter_for(self, image: str) -> Counter:
        return self.emulator.counter if _image(image) == "emulator" else self.counter

    def target_defines(self, image: str) -> list[str]:
        """-D/-I flags for the firmware layer of `image` (its counter; the vector table's size; the folder of its
        mcu_board_config.h, written by mcutool.codegen.project.copy_firmware)."""
        return [*self.counter_for(image).defines(), f"-DMCU_IRQ_COUNT={self.irq_count}",
                f"-I{CONFIG_DIR}/{_image(image)}"]

    def uart_for(self, image: str) -> Uart | None:
        return self.emulator.uart if _image(image) == "emulator" else self.uart

    def io_backends(self, image: str) -> tuple[str, ...]:
        """The I/O back ends `image` can be built with: semihosting always, uart when it has a UART."""
        return IO_BACKENDS if self.uart_for(image) is not None else ("semihosting",)

    def check_io(self, io: str) -> None:
        """UserError unless both images of this board can be built with `io`."""
        if io not in IO_BACKENDS:
            raise UserError(f"--io must be one of {', '.join(IO_BACKENDS)}, not {io!r}.")
        lacking = [image for image in IMAGES if io not in self.io_backends(image)]
        if lacking:
            where = " and ".join("[uart]" if i == "board" else "[emulator.uart]" for i in lacking)
            raise UserError(f"Board {self.name} has no UART for --io {io}: its board file {self.path} lacks {where}. "
                            "Build with --io semihosting, or describe the console UART in the board file.")

    def config_header_context(self, image: str, io: str) -> dict[str, Any]:
        """Variables for templates/firmware/mcu_board_config.h.j2: what mcu_board_init() does in `image`."""
        clock = self.clock if (_image(image) == "board" or self.emulator.clock_setup) else None
        reset_hz = self.clock.reset_hz if self.clock is not None else self.clock_hz
        uart = self.uart_for(image) if io == "uart" else None
        context: dict[str, Any] = {
            "board": self.name, "image": image, "io": io,
            "clock_hz": self.clock_hz if clock is not None else reset_hz, "reset_clock_hz": reset_hz,
            "clock_steps": [s.c_initializer() for s in clock.steps] if clock is not None else [],
            "caches": self.caches, "uart": None,
        }
        if uart is not None:
            # Without clock steps in this image the UART runs on its reset clock whatever happens.
            clocked = uart.clock_hz if clock is not None else uart.reset_clock_hz
            context["uart"] = {
                "kind": uart.kind.upper(), "base": f"0x{uart.base:08X}u", "baud": uart.baud, "pins": uart.pins,
                "divisor": uart.divisor(clocked), "divisor_reset": uart.divisor(uart.reset_clock_hz),
                "init_steps": [s.c_initializer() for s in uart.init],
            }
        return context

    @property
    def linker_template(self) -> str:
        return f"linker/{self.arch}.ld.j2"

    def linker_context(self, image: str, stack_size: int) -> dict[str, Any]:
        """Variables for templates/linker/<arch>.ld.j2: the regions of `image` and the stack reserve."""
        if stack_size < 256 or stack_size % 8:
            raise UserError(f"The stack reserve must be a multiple of 8 bytes and at least 256 bytes; got {stack_size}.")
        memory = self.memory_map(image)
        vector_bytes = 4 * (16 + self.irq_count)  # Cortex-M: VTOR wants the table aligned to its size's power of 2
        return {
            "board": self.name,
            "vector_align": max(128, 1 << (vector_bytes - 1).bit_length()),
            "image": _image(image),
            "machine": self.emulator.machine if _image(image) == "emulator" else "",
            "stack_size": stack_size,
            "code_region": CODE_REGION,
            "data_region": DATA_REGION,
            "regions": [
                {
                    "name": r.name,
                    "attrs": "rx" if r.kind == "rom" else "rwx",
                    "origin": f"0x{r.origin:08X}",
                    "length": f"0x{r.length:X}",
                }
                for r in memory.regions
            ],
            # Other regions get an output section of their own name: .ext_flash, .ccm.
            "rom_sections": [
                {"section": f".{r.name}", "region": r.name}
                for r in memory.regions
                if r.name not in (CODE_REGION, DATA_REGION) and r.kind == "rom"
            ],
            "ram_sections": [
                {"section": f".{r.name}", "region": r.name}
                for r in memory.regions
                if r.name not in (CODE_REGION, DATA_REGION) and r.kind == "ram"
            ],
        }

    def firmware_sources(self, io: str = "semihosting") -> list[str]:
        """The firmware layer's sources, relative to firmware/ (common/, <arch>/, then the I/O back end's
        folder: semihosting/ or uart/). cache.c only for cores with caches to turn on."""
        root = paths.data_dir("firmware")
        found = [p for sub in ("common", self.arch, io) for p in sorted((root / sub).glob("*.[cS]"))]
        if not self.caches:
            found = [p for p in found if p.name != "cache.c"]
        return [p.relative_to(root).as_posix() for p in found]

    @property
    def firmware_dirs(self) -> tuple[str, ...]:
        """The folders of firmware/ a project of this board needs (whatever its I/O back end)."""
        return ("include", "common", self.arch, *IO_BACKENDS)

    def flash_command(self, elf: str) -> list[str] | None:
        """The command that programs `elf` into the board with its first flash method, or None."""
        for probe in PROBES:
            commands = self.flash_commands(elf, probe)
            if commands:
                return commands[-1]
        return None

    def flash_commands(self, elf: str, probe: str, regions: tuple[str, ...] = (CODE_REGION,)) -> list[list[str]]:
        """The commands that program `elf` with `probe` (openocd, pyocd, stlink); [] if the board has no such method.
        `regions`: the ROM regions the image fills; beyond internal flash (ext_flash) only openocd with a flash
        bank for each (board file: flash.openocd_regions) can program them: one binary and one command each."""
        if tuple(regions) != (CODE_REGION,):
            if probe != "openocd" or not self.flash.openocd or not set(regions) <= set(self.flash.openocd_regions):
                return []
            files = [arg for cfg in self.flash.openocd for arg in ("-f", cfg)]
            binaries = self.region_binaries(elf, regions)
            programs = [["openocd", *files, "-c", f"program {binaries[r]} 0x{self.memory[r].origin:08x} verify"
                         + (" reset" if r == regions[-1] else "") + " exit"] for r in regions]
            return self.split_image_commands(elf, regions) + programs
        if probe == "openocd" and self.flash.openocd:
            files = [arg for cfg in self.flash.openocd for arg in ("-f", cfg)]
            return [["openocd", *files, "-c", f"program {elf} verify reset exit"]]
        if probe == "pyocd" and self.flash.pyocd_target:
            return [["pyocd", "flash", "-t", self.flash.pyocd_target, elf]]
        if probe == "stlink" and self.flash.st_flash_address is not None:
            binary = elf.rsplit(".", 1)[0] + ".bin"
            return [[self.toolchain.tool("objcopy"), "-O", "binary", elf, binary],
                    ["st-flash", "--reset", "write", binary, f"0x{self.flash.st_flash_address:08x}"]]
        return []

    @staticmethod
    def region_binaries(elf: str, regions: tuple[str, ...]) -> dict[str, str]:
        """region -> the raw binary of `elf`'s part in it: board.elf -> board-flash.bin, board-ext_flash.bin."""
        stem = elf.rsplit(".", 1)[0]
        return {r: f"{stem}-{r}.bin" for r in regions}

    def split_image_commands(self, elf: str, regions: tuple[str, ...]) -> list[list[str]]:
        """objcopy commands writing one raw binary per region (each region's output section is `.<region>`;
        internal flash gets everything else)."""
        objcopy = self.toolchain.tool("objcopy")
        binaries = self.region_binaries(elf, regions)
        others = [f"--remove-section=.{r}" for r in regions if r != CODE_REGION]
        commands = [[objcopy, "-O", "binary", *others, elf, binaries[CODE_REGION]]]
        commands += [[objcopy, "-O", "binary", f"--only-section=.{r}", elf, binaries[r]]
                     for r in regions if r != CODE_REGION]
        return commands

PROBES = ("openocd", "pyocd", "stlink")
CONFIG_DIR = "firmware/config"  # a project's per-image mcu_board_config.h: firmware/config/<image>/


def _image(image: str) -> str:
    if image not in IMAGES:
        raise ValueError(f"image must be one of {IMAGES}, not {image!r}")
    return image


def boards_dir() -> Path:
    return paths.data_dir("boards")


def list_boards() -> list[str]:
    """Names of the known boards (the boards/*.toml files), sorted."""
    return sorted(p.stem for p in boards_dir().glob("*.toml"))


def load_board(name: str) -> Board:
    """The board called `name` (boards/<name>.toml), or a board file given by its path."""
    candidate = Path(name)
    if candidate.suffix == ".toml" and candidate.is_file():
        return load_board_file(candidate)
    path = boards_dir() / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(list_boards()) or "none"
        raise UserError(
            f"Unknown board {name!r}. Known boards: {known}. Pass one of these names to --board, or the path of "
            f"a board file written like those in {boards_dir()}."
        )
    return load_board_file(path)


def load_board_file(path: Path) -> Board:
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise UserError(f"Cannot read board file {path}: {e}.") from e
    reader = _Reader(path, data)
    return reader.board()


class _Reader:
    """Reads one board file, turning every missing or malformed key into a UserError naming file and key."""

    def __init__(self, path: Path, data: dict[str, Any]):
        self.path = path
        self.data = data

    def fail(self, key: str, problem: str) -> UserError:
        return UserError(f"Board file {self.path}: {key} {problem}.")

    def get(self, table: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str, default: Any = ...) -> Any:
        full = f"{where}.{key}" if where else key
        if key not in table:
            if default is ...:
                raise self.fail(full, "is missing")
            return default
        value = table[key]
        if isinstance(value, bool) and kind is int:
            raise self.fail(full, f"must be an integer, not {value!r}")
        if not isinstance(value, kind):
            raise self.fail(full, f"has the wrong type ({type(value).__name__})")
        return value

    def table(self, table: dict[str, Any], key: str, where: str) -> dict[str, Any]:
        return self.get(table, key, dict, where)

    def memory(self, table: dict[str, Any], where: str) -> MemoryMap:
        regions = []
        for name, spec in table.items():
            at = f"{where}.{name}"
            if not isinstance(spec, dict):
                raise self.fail(at, "must be a table with origin, length and kind")
            origin = self.get(spec, "origin", int, at)
            length = self.get(spec, "length", int, at)
            kind = self.get(spec, "kind", str, at)
            if kind not in REGION_KINDS:
                raise self.fail(f"{at}.kind", f"must be one of {', '.join(REGION_KINDS)}")
            if length <= 0 or origin < 0 or origin + length > 1 << 32:
                raise self.fail(at, "must lie within the 32-bit address space and not be empty")
            regions.append(MemoryRegion(name, origin, length, kind))
        memory = MemoryMap(tuple(regions))
        for required, kind in ((CODE_REGION, "rom"), (DATA_REGION, "ram")):
            if required not in memory:
                raise self.fail(f"{where}.{required}", "is missing (every board has a flash and an sram region)")
            if memory[required].kind != kind:
                raise self.fail(f"{where}.{required}.kind", f"must be {kind!r}")
        ordered = sorted(memory.regions, key=lambda r: r.origin)
        for a, b in zip(ordered, ordered[1:]):
            if a.end > b.origin:
                raise self.fail(where, f"has overlapping regions {a.name} and {b.name}")
        return memory

    def counter(self, table: dict[str, Any], where: str) -> Counter:
        kind = self.get(table, "kind", str, where)
        if kind not in COUNTER_KINDS:
            raise self.fail(f"{where}.kind", f"must be one of {', '.join(COUNTER_KINDS)}")
        unit = self.get(table, "unit", str, where)
        if unit not in COUNTER_UNITS:
            raise self.fail(f"{where}.unit", f"must be one of {', '.join(COUNTER_UNITS)}")
        units_per_tick = self.get(table, "units_per_tick", int, where)
        if units_per_tick < 1 or 1 < units_per_tick < _MIN_UNITS_PER_VERNIER_TICK:
            raise self.fail(f"{where}.units_per_tick", f"must be 1 or at least {_MIN_UNITS_PER_VERNIER_TICK}")
        base = self.get(table, "base", int, where, None)
        if kind in _COUNTERS_WITH_BASE and base is None:
            raise self.fail(f"{where}.base", f"is missing (a {kind} counter sits at a peripheral address)")
        prescaler = self.get(table, "prescaler", int, where, None)
        return Counter(kind, unit, units_per_tick, base, prescaler)

    def steps(self, items: Any, where: str) -> tuple[RegStep, ...]:
        if not isinstance(items, list):
            raise self.fail(where, "must be a list of register steps ({ set = ADDRESS, mask = M, value = V } "
                                   "or { wait = ADDRESS, mask = M, value = V })")
        steps = []
        for i, item in enumerate(items):
            at = f"{where}[{i}]"
            if not isinstance(item, dict):
                raise self.fail(at, "must be an inline table")
            ops = [op for op in STEP_OPS if op in item]
            if len(ops) != 1:
                raise self.fail(at, f"must have exactly one of {', '.join(STEP_OPS)}")
            op = ops[0]
            if op == "delay":
                steps.append(RegStep(op, 0, 0, self.get(item, op, int, at)))
                continue
            address, mask, value = (self.get(item, k, int, at) for k in (op, "mask", "value"))
            if any(not 0 <= v < 1 << 32 for v in (address, mask, value)) or value & ~mask:
                raise self.fail(at, "needs 32-bit address, mask and value, with value inside mask")
            steps.append(RegStep(op, address, mask, value))
        return tuple(steps)

    def uart(self, table: dict[str, Any] | None, where: str) -> Uart | None:
        if table is None:
            return None
        kind = self.get(table, "kind", str, where)
        if kind not in UART_KINDS:
            raise self.fail(f"{where}.kind", f"must be one of {', '.join(UART_KINDS)}")
        clock = self.get(table, "clock_hz", int, where)
        return Uart(kind=kind, base=self.get(table, "base", int, where), baud=self.get(table, "baud", int, where),
                    clock_hz=clock, reset_clock_hz=self.get(table, "reset_clock_hz", int, where, clock),
                    init=self.steps(self.get(table, "init", list, where, []), f"{where}.init"),
                    pins=self.get(table, "pins", str, where, ""))

    def clock(self, table: dict[str, Any] | None) -> ClockSetup | None:
        if table is None:
            return None
        return ClockSetup(reset_hz=self.get(table, "reset_hz", int, "clock"),
                          steps=self.steps(self.get(table, "steps", list, "clock"), "clock.steps"))

    def board(self) -> Board:
        d = self.data
        name = self.get(d, "name", str, "")
        if name != self.path.stem and self.path.parent.resolve() == boards_dir().resolve():
            raise self.fail("name", f"is {name!r} but the file is {self.path.name}")
        arch = self.get(d, "arch", str, "")
        if arch not in ARCHES:
            raise self.fail("arch", f"must be one of {', '.join(ARCHES)}")
        cpu = self.table(d, "cpu", "")
        tc = self.table(d, "toolchain", "")
        cflags = self.get(tc, "cflags", list, "toolchain")
        if not all(isinstance(f, str) for f in cflags):
            raise self.fail("toolchain.cflags", "must be a list of strings")
        toolchain = Toolchain(self.get(tc, "prefix", str, "toolchain"), tuple(cflags), self.get(tc, "install", str, "toolchain"))
        memory = self.memory(self.table(d, "memory", ""), "memory")
        counter = self.counter(self.table(d, "counter", ""), "counter")
        fl = self.get(d, "flash", dict, "", {})
        openocd = self.get(fl, "openocd", list, "flash", [])
        flash = FlashMethods(
            tuple(openocd), tuple(self.get(fl, "openocd_regions", list, "flash", [CODE_REGION])),
            self.get(fl, "pyocd_target", str, "flash", None), self.get(fl, "st_flash_address", int, "flash", None)
        )
        em = self.table(d, "emulator", "")
        args = self.get(em, "args", list, "emulator")
        emulator = Emulator(
            program=self.get(em, "program", str, "emulator"),
            machine=self.get(em, "machine", str, "emulator"),
            args=tuple(str(a) for a in args),
            io=self.get(em, "io", str, "emulator"),
            install=self.get(em, "install", str, "emulator"),
            memory=self.memory(self.get(em, "memory", dict, "emulator"), "emulator.memory"),
            counter=self.counter(self.get(em, "counter", dict, "emulator"), "emulator.counter"),
            uart=self.uart(self.get(em, "uart", dict, "emulator", None), "emulator.uart"),
            clock_setup=self.get(em, "clock_setup", bool, "emulator", False),
        )
        # The emulator image is capped to the board's sizes, so what fits in QEMU fits on the board.
        for region in memory.regions:
            if region.name not in emulator.memory:
                raise self.fail(f"emulator.memory.{region.name}", "is missing (every board region needs a place in QEMU)")
            twin = emulator.memory[region.name]
            if twin.length != region.length or twin.kind != region.kind:
                raise self.fail(
                    f"emulator.memory.{region.name}",
                    f"must have the board's length 0x{region.length:X} and kind {region.kind!r}",
                )
        for extra in emulator.memory.names:
            if extra not in memory:
                raise self.fail(f"emulator.memory.{extra}", "has no counterpart in the board's memory")
        return Board(
            name=name,
            description=self.get(d, "description", str, ""),
            arch=arch,
            core=self.get(cpu, "core", str, "cpu"),
            isa=self.get(cpu, "isa", str, "cpu"),
            fpu=self.get(cpu, "fpu", str, "cpu"),
            dsp=self.get(cpu, "dsp", bool, "cpu"),
            clock_hz=self.get(cpu, "clock_hz", int, "cpu"),
            irq_count=self.get(cpu, "irq_count", int, "cpu"),
            toolchain=toolchain,
            memory=memory,
            counter=counter,
            flash=flash,
            emulator=emulator,
            path=self.path,
            uart=self.uart(self.get(d, "uart", dict, "", None), "uart"),
            clock=self.clock(self.get(d, "clock", dict, "", None)),
            caches=self.get(cpu, "caches", bool, "cpu", False),
        )
