"""Progress on stderr: a bar that rewrites itself on a terminal; elsewhere (a pipe, a CI log) one
whole line per change, so nothing runs together."""
from __future__ import annotations

import sys
import time
from typing import IO, Optional

from ..infra.text import terminal_safe

BAR_CELLS = 24


class Progress:
    """`update()` as often as you like; a terminal gets at most one redraw per `interval` seconds,
    other streams one line whenever the text changed and `interval` has passed (or on `close()`)."""

    def __init__(self, stream: Optional[IO[str]] = None, interval: float = 0.2,
                 tty: Optional[bool] = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = is_terminal(self.stream) if tty is None else tty
        self.interval = interval if self.tty else max(interval, 1.0)
        self._last_text = ""
        self._last_write = 0.0
        self._pending = ""
        self._drawn = False

    def update(self, text: str, done: Optional[int] = None, total: Optional[int] = None,
               force: bool = False) -> None:
        text = terminal_safe(text)  # the bar's own control sequences are the only ones written
        line = (bar(done, total) + " " + text) if self.tty and done is not None and total else text
        self._pending = line
        now = time.monotonic()
        if not force and now - self._last_write < self.interval:
            return
        self._write(line, now)

    def _write(self, line: str, now: float) -> None:
        if line == self._last_text:
            return
        if self.tty:
            self.stream.write("\r\x1b[K" + line)
            self._drawn = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self._last_text, self._last_write = line, now

    def message(self, text: str) -> None:
        """A line of its own, above the bar on a terminal."""
        if self.tty and self._drawn:
            self.stream.write("\r\x1b[K")
            self._last_text = ""
            self._drawn = False
        self.stream.write(terminal_safe(text) + "\n")
        self.stream.flush()

    def close(self, keep: bool = True) -> None:
        """Flush the last state; on a terminal, end the bar's line (or erase it, keep=False)."""
        if self._pending:
            self._write(self._pending, time.monotonic())
        if self.tty and self._drawn:
            self.stream.write("\n" if keep else "\r\x1b[K")
            self.stream.flush()
            self._drawn = False


def bar(done: int, total: int) -> str:
    fraction = min(1.0, done / total) if total else 0.0
    filled = int(round(fraction * BAR_CELLS))
    return f"[{'#' * filled}{'.' * (BAR_CELLS - filled)}] {fraction * 100:3.0f}%"


def is_terminal(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
