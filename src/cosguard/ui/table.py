"""Tables people read in a terminal: columns aligned by display width, so a Chinese key (two cells
per character) lines up with ASCII ones, and every cell terminal-safe (infra/text.py): one row is one
line whatever a key holds."""
from __future__ import annotations

import unicodedata
from typing import Any, Iterable, List, Sequence

from ..infra.text import terminal_safe

EMPTY = "-"


def display_width(text: str) -> int:
    """Terminal cells `text` takes: wide and full-width characters two, combining marks none."""
    width = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def pad(text: str, width: int) -> str:
    return text + " " * max(0, width - display_width(text))


def render_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Headers, a rule, then one line per row; empty cells show as `-`."""
    cells: List[List[str]] = [[EMPTY if cell is None or cell == "" else terminal_safe(cell) for cell in row]
                              for row in rows]
    headers = [terminal_safe(h) for h in headers]
    widths = [max([display_width(h)] + [display_width(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(pad(h, widths[i]) for i, h in enumerate(headers)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(pad(cell, widths[i]) for i, cell in enumerate(row)).rstrip() for row in cells]
    return "\n".join(lines)
