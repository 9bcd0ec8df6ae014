"""Talking to firmware built with --io uart: over QEMU's emulated serial port or a real one (DESIGN.md §5).

    with qemu_serial(board, "emulator.elf") as link:     # QEMU, first serial port on a Unix socket
        outputs, records = Session(link, board).infer(input_bytes)
    with tty_port("/dev/ttyACM0", 115200) as link:       # a board on its USB virtual COM port
        ...

QEMU runs with no -semihosting option; its first serial port (USART1 on netduinoplus2, UART0 on mps2 and
sifive_e) is connected to a Unix socket this process listens on, so bytes are binary-clean and QEMU waits
for the reader (no loss, no -nographic escape characters). A real port is the character device opened raw
with termios (8N1, no flow control, the board file's baud rate): pyserial is not needed. The firmware serves
inferences for as long as it runs; an 'X' frame (after a fault report) ends the session.
"""
from __future__ import annotations

import collections
import contextlib
import os
import select
import shlex
import shutil
import socket
import subprocess
import tempfile
import termios
import time
import tty
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..boards import Board
from ..errors import UserError
from . import frames
from .qemu import Record, describe_fault, parse_records, qemu_command

READY_TIMEOUT_S = 30.0


class Link:
    """A byte pipe to the firmware: `write` all, `read` what is there within a deadline."""

    def __init__(self, fd: int, describe: str, emulator: str = ""):
        self.fd = fd
        self.describe = describe
        self.emulator = emulator  # how report.json names what ran: "qemu-system-arm -M netduinoplus2"
        self.decoder = frames.FrameDecoder()
        self.pending: collections.deque[frames.Frame] = collections.deque()  # decoded, not yet taken

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            _, ready, _ = select.select([], [self.fd], [], 30.0)
            if not ready:
                raise UserError(f"{self.describe}: the firmware stopped reading (30 s without room to write).")
            view = view[os.write(self.fd, view):]

    def frames(self, deadline: float) -> Iterator[frames.Frame]:
        """Frames as they arrive, until `deadline` (time.monotonic()) passes: then TimeoutError."""
        while True:
            while self.pending:
                yield self.pending.popleft()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                continue
            try:
                data = os.read(self.fd, 65536)
            except OSError:  # a pty whose other side closed
                data = b""
            if not data:
                raise EOFError
            self.pending.extend(self.decoder.feed(data))


class Session:
    """The firmware's side of the protocol (templates/project/main_uart.c.j2): wait for "ready", then
    inferences: an 'I' frame out, 'T' records and one 'O' frame back."""

    def __init__(self, link: Link, board: Board, elf: Path | None = None, on_fault=None):
        self.link = link
        self.board = board
        self.elf = elf
        self.records: list[Record] = []
        self.console: list[str] = []
        self._partial = ""  # a console line sent in several 'T' frames (mcu_report.c flushes long lines)
        self.on_fault = on_fault  # called before a fault becomes an error (QEMU's stderr, say)

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> Record:
        for frame in self._frames(timeout, "start up"):
            if frame.kind == frames.TEXT:
                ready = [r for r in self._text(frame) if r.kind == "ready"]
                if ready:
                    return ready[0]
        raise AssertionError("unreachable")

    def infer(self, payload: bytes, timeout: float) -> tuple[bytes, list[Record]]:
        """Send one 'I' frame; the 'O' frame's payload and the records that came with it."""
        self.link.write(frames.encode(frames.INPUT, payload))
        return self.receive(timeout)

    def receive(self, timeout: float) -> tuple[bytes, list[Record]]:
        """The next 'O' frame's payload and the records before it; UserError on an "error" record."""
        start = len(self.records)
        for frame in self._frames(timeout, "answer"):
            if frame.kind == frames.TEXT:
                for record in self._text(frame):
                    if record.kind == "error":
                        raise UserError(f"{self.link.describe}: the firmware rejected the input frame "
                                        f"({' '.join(f'{k}={v}' for k, v in record.fields.items())}).")
            elif frame.kind == frames.OUTPUT:
                return frame.payload, self.records[start:]
        raise AssertionError("unreachable")

    def _text(self, frame: frames.Frame) -> list[Record]:
        """The records completed by this console text (lines end with a newline)."""
        self.console.append(frame.text)
        lines, _, self._partial = (self._partial + frame.text).rpartition("\n")
        found = parse_records(lines)
        self.records += found
        return found

    def _frames(self, timeout: float, waiting_for: str) -> Iterator[frames.Frame]:
        deadline = time.monotonic() + timeout
        try:
            for frame in self.link.frames(deadline):
                if not frame.crc_ok:
                    raise UserError(f"{self.link.describe}: a frame from the firmware failed its CRC check "
                                    "(noise on the line, or a baud rate mismatch).")
                if frame.kind == frames.EXIT:
                    self._ended(frame.status)
                yield frame
        except TimeoutError:
            raise UserError(f"{self.link.describe}: no {waiting_for} from the firmware within {timeout:g} s. "
                            f"{self._heard()}Is it the --io uart build, running, and on this port?") from None
        except EOFError:
            raise UserError(f"{self.link.describe}: the connection closed while waiting for the firmware's "
                            f"{waiting_for}. {self._heard()}") from None

    def _ended(self, status: int) -> None:
        fault = next((r for r in self.records if r.kind == "fault"), None)
        if self.on_fault:
            self.on_fault()
        if fault is not None:
            raise UserError(describe_fault(self.board, fault, self.elf))
        raise UserError(f"{self.link.describe}: the firmware exited with status {status}. {self._heard()}")

    def _heard(self) -> str:
        said = [line.strip() for line in self.console if line.strip()][-5:]
        noise = len(self.link.decoder.skipped)
        text = ("It said: " + " | ".join(said) + ". ") if said else "It said nothing. "
        return text + (f"{noise} bytes outside frames. " if noise else "")


@contextlib.contextmanager
def qemu_serial(board: Board, elf: str | Path) -> Iterator[Link]:
    """Run `elf` in the board's QEMU machine with its first serial port on a Unix socket; yields the Link.
    QEMU is stopped when the block ends."""
    elf = Path(elf)
    program = board.emulator.program
    if shutil.which(program) is None:
        raise UserError(f"{program} is not installed; board {board.name} runs in QEMU's {board.emulator.machine} "
                        f"machine. Install it with: {board.emulator.install}")
    folder = Path(tempfile.mkdtemp(prefix="mcutool-uart-"))
    path = folder / "serial.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    proc = None
    conn = None
    try:
        server.bind(str(path))
        server.listen(1)
        command = qemu_command(board, elf.resolve(), io="uart", serial=f"unix:{path}")
        log = (folder / "qemu.log").open("wb")
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        server.settimeout(READY_TIMEOUT_S)
        try:
            conn, _ = server.accept()
        except socket.timeout:
            raise UserError(f"QEMU did not connect its serial port within {READY_TIMEOUT_S:g} s. "
                            f"{_qemu_said(folder)}\nCommand: {shlex.join(command)}") from None
        yield Link(conn.fileno(), f"board {board.name} (QEMU {board.emulator.machine}, serial port)",
                   board.emulator.description)
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        if conn is not None:
            conn.close()
        server.close()
        shutil.rmtree(folder, ignore_errors=True)


def _qemu_said(folder: Path) -> str:
    log = folder / "qemu.log"
    text = log.read_text(errors="replace").strip() if log.exists() else ""
    return f"QEMU said: {text}" if text else ""


_BAUD = {9600: termios.B9600, 19200: termios.B19200, 38400: termios.B38400, 57600: termios.B57600,
         115200: termios.B115200, 230400: termios.B230400, 460800: termios.B460800, 921600: termios.B921600}


@contextlib.contextmanager
def tty_port(port: str, baud: int) -> Iterator[Link]:
    """The serial device `port` (e.g. /dev/ttyACM0, or a pty) opened raw: 8N1, no flow control, `baud`."""
    if baud not in _BAUD:
        raise UserError(f"{baud} baud is not a standard rate this host can set; use one of {sorted(_BAUD)}.")
    try:
        fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as e:
        raise UserError(f"cannot open the serial port {port}: {e.strerror}. Is the board plugged in, and may "
                        "this user open it (the dialout group)?") from None
    try:
        if not os.isatty(fd):
            raise UserError(f"{port} is not a serial port (a terminal device).")
        tty.setraw(fd)
        attrs = termios.tcgetattr(fd)
        attrs[2] = (attrs[2] & ~(termios.CSTOPB | termios.PARENB | termios.CRTSCTS)) | termios.CLOCAL | termios.CREAD
        attrs[0] &= ~(termios.IXON | termios.IXOFF | termios.IXANY)
        attrs[4] = attrs[5] = _BAUD[baud]
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
        termios.tcflush(fd, termios.TCIOFLUSH)
        yield Link(fd, f"serial port {port}", f"serial port {port}")
    finally:
        os.close(fd)


def transfer_timeout(nbytes: int, baud: int) -> float:
    """Seconds to allow for `nbytes` each way at `baud` (10 bits a byte), plus the inference's own time."""
    return 2 * nbytes * 10 / baud + 60.0


def run_uart(board: Board, output_specs: list[dict], elf: Path, inputs: list[np.ndarray], timeout: float,
             port: str | None = None) -> tuple[list[np.ndarray], list[Record], str]:
    """One inference of a --io uart build: in QEMU (`elf`), or on the board at serial port `port`.
    Returns the outputs (as `output_specs` declare them), the firmware's records and what ran it."""
    payload = b"".join(np.ascontiguousarray(x).tobytes() for x in inputs)
    if port is not None:
        if board.uart is None:
            raise UserError(f"Board {board.name} has no [uart] in its board file: it cannot be run over a port.")
        opened = tty_port(port, board.uart.baud)
        timeout = max(timeout, transfer_timeout(len(payload), board.uart.baud))
    else:
        opened = qemu_serial(board, elf)
    with opened as link:
        session = Session(link, board, elf)
        if port is None:  # a board on a port booted long ago: its "ready" is gone; QEMU's is not
            session.wait_ready()
        raw, records = session.infer(payload, timeout)
    outputs, at = [], 0
    for spec in output_specs:
        n = int(np.prod(spec["shape"])) * np.dtype(spec["dtype"]).itemsize
        if at + n > len(raw):
            raise UserError(f"{link.describe}: the firmware sent {len(raw)} output bytes; the model's outputs take "
                            f"{sum(int(np.prod(s['shape'])) * np.dtype(s['dtype']).itemsize for s in output_specs)}. "
                            "Is the firmware on the board built from this project?")
        outputs.append(np.frombuffer(raw[at:at + n], dtype=spec["dtype"]).reshape(spec["shape"]).copy())
        at += n
    return outputs, records, link.emulator
