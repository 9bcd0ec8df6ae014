"""The framed serial protocol of firmware built with --io uart (firmware/include/mcu_frame.h), host side.

    "MCUF"  type (1 byte)  length (uint32 LE)  payload  CRC-32 (uint32 LE, zlib.crc32 of type+length+payload)

Types: b"I" inputs (host -> firmware), b"O" outputs, b"T" a console line (a "MCUTOOL ..." record), b"X" exit
(payload: int32 status). `FrameDecoder` takes bytes as they come and yields whole frames; it finds frame starts
by the magic, so noise before a frame or a damaged frame costs that frame only.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

MAGIC = b"MCUF"
INPUT, OUTPUT, TEXT, EXIT = b"I", b"O", b"T", b"X"
_HEAD = struct.Struct("<cI")  # type, length
MAX_PAYLOAD = 64 << 20  # larger lengths are noise, not a frame: no MCU has the memory for them


def encode(kind: bytes, payload: bytes) -> bytes:
    head = _HEAD.pack(kind, len(payload))
    return MAGIC + head + payload + struct.pack("<I", zlib.crc32(head + payload))


@dataclass(frozen=True)
class Frame:
    kind: bytes
    payload: bytes
    crc_ok: bool = True

    @property
    def text(self) -> str:
        return self.payload.decode("utf-8", errors="replace")

    @property
    def status(self) -> int:
        """An exit frame's status."""
        return struct.unpack("<i", self.payload[:4])[0]


class FrameDecoder:
    """Bytes in (`feed`), frames out. A frame whose CRC fails comes out with crc_ok=False; bytes that do not
    start a frame are skipped (kept in `skipped` for diagnostics)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.skipped = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames = []
        while True:
            start = self._buf.find(MAGIC)
            if start < 0:
                keep = len(MAGIC) - 1  # the magic may straddle two reads
                cut = max(0, len(self._buf) - keep)
                self.skipped += self._buf[:cut]
                del self._buf[:cut]
                return frames
            self.skipped += self._buf[:start]
            del self._buf[:start]
            if len(self._buf) < len(MAGIC) + _HEAD.size:
                return frames
            kind, length = _HEAD.unpack_from(self._buf, len(MAGIC))
            if length > MAX_PAYLOAD:
                self.skipped += self._buf[:1]
                del self._buf[:1]
                continue
            end = len(MAGIC) + _HEAD.size + length + 4
            if len(self._buf) < end:
                return frames
            body = bytes(self._buf[len(MAGIC):end - 4])
            (crc,) = struct.unpack_from("<I", self._buf, end - 4)
            ok = zlib.crc32(body) == crc
            frames.append(Frame(kind, body[_HEAD.size:], ok))
            if ok:
                del self._buf[:end]
            else:  # a damaged frame: the next magic may lie inside what its length claimed
                self.skipped += self._buf[:1]
                del self._buf[:1]
