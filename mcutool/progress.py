"""Progress a person can follow on long work: a counter rewritten in place on a terminal, plain lines in a log.

A progress callback is `progress(message, n=None, total=None)`: a step ("building"), or item n of total of a
counted step ("generating kernels: conv2d_0", 3, 13). The stages call it; this module only shows it.
"""
from __future__ import annotations

import sys


class Progress:
    """Writes to `stream` (stderr): on a TTY the counted items of one step share one line, rewritten as they
    advance; otherwise every call is a line of its own, so a CI log shows where a slow compile is."""

    def __init__(self, stream=None, tty: bool | None = None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self._open = False  # a counter line is on the terminal, not yet ended

    def __call__(self, message: str, n: int | None = None, total: int | None = None) -> None:
        if n is None:
            self._end_line()
            self._write(f"  {message} ...\n")
            return
        line = f"  [{n}/{total}] {message}"
        if not self.tty:
            self._write(line + "\n")
            return
        width = 30
        filled = round(width * n / total) if total else width
        self._write(f"\r\033[K  [{'#' * filled}{'.' * (width - filled)}] {n}/{total} {message}")
        self._open = True
        if n == total:
            self._end_line()

    def _end_line(self) -> None:
        if self._open:
            self._write("\n")
            self._open = False

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


def quiet(message: str, n: int | None = None, total: int | None = None) -> None:
    """The progress callback that shows nothing (the Python API's default)."""
