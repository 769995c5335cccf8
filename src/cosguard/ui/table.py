"""Tables people read in a terminal: columns aligned by display width, so a Chinese key (two cells
per character) lines up with ASCII ones, and every cell terminal-safe (infra/text.py): one row is one
line whatever a key holds. A table fits DEFAULT_WIDTH columns: the widest columns give way first,
their long cells shortened in the middle (`uploads/…/report.pdf` keeps both ends); `--wide` shows
every cell whole."""
from __future__ import annotations

import unicodedata
from contextvars import ContextVar
from typing import Any, Iterable, List, Optional, Sequence

from ..infra.text import terminal_safe

EMPTY = "-"
ELLIPSIS = "…"
DEFAULT_WIDTH = 100
GAP = 2           # cells between columns
NARROWEST = 12    # a shortened column keeps at least this many cells (or its header's width)
_width: ContextVar[Optional[int]] = ContextVar("cosguard_table_width", default=DEFAULT_WIDTH)


def set_width(width: Optional[int]) -> None:
    """Tables from now on fit `width` columns; None: every cell whole (`--wide`)."""
    _width.set(width)


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


def shorten(text: str, width: int) -> str:
    """`text` in at most `width` cells: its middle replaced by `…`, both ends kept."""
    if display_width(text) <= width:
        return text
    room = max(0, width - 1)
    head, tail = "", ""
    for char in text:  # the head gets the extra cell when `room` is odd
        if display_width(head + char) > (room + 1) // 2:
            break
        head += char
    for char in reversed(text):
        if display_width(tail + char) > room - display_width(head):
            break
        tail = char + tail
    return head + ELLIPSIS + tail


def fitted(widths: List[int], floors: List[int], limit: int) -> List[int]:
    """Column widths whose sum (with the gaps) is at most `limit`: every column is capped at the
    largest one width that fits, so narrow columns stay whole and only the long ones give way, never
    below a column's floor (a table of many narrow columns may still exceed `limit`)."""
    room = limit - GAP * (len(widths) - 1)

    def capped(cap: int) -> List[int]:
        return [min(w, max(cap, floor)) for w, floor in zip(widths, floors)]

    if sum(widths) <= room:
        return list(widths)
    cap = max(widths)
    while cap > 0 and sum(capped(cap)) > room:
        cap -= 1
    best = capped(cap)
    spare = room - sum(best)  # the cells a whole cap leaves: to the widest cut columns, one each
    for i in sorted(range(len(best)), key=lambda i: -widths[i]):
        if spare <= 0:
            break
        if best[i] < widths[i]:
            best[i] += 1
            spare -= 1
    return best


def render_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], width: Optional[int] = -1) -> str:
    """Headers, a rule, then one line per row; empty cells show as `-`. `width`: the columns to fit
    (default: what `set_width` chose; None: no limit)."""
    cells: List[List[str]] = [[EMPTY if cell is None or cell == "" else terminal_safe(cell) for cell in row]
                              for row in rows]
    headers = [terminal_safe(h) for h in headers]
    widths = [max([display_width(h)] + [display_width(r[i]) for r in cells]) for i, h in enumerate(headers)]
    limit = _width.get() if width == -1 else width
    if limit is not None:
        floors = [min(w, max(NARROWEST, display_width(h))) for w, h in zip(widths, headers)]
        # Keys and paths (a `/` in a cell) give way first; dates, statuses, job ids only if that is not enough
        paths = [floors[i] if any("/" in r[i] for r in cells) else w for i, w in enumerate(widths)]
        widths = fitted(widths, paths, limit)
        widths = fitted(widths, floors, limit)
        cells = [[shorten(cell, widths[i]) for i, cell in enumerate(row)] for row in cells]
    lines = ["  ".join(pad(h, widths[i]) for i, h in enumerate(headers)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(pad(cell, widths[i]) for i, cell in enumerate(row)).rstrip() for row in cells]
    return "\n".join(lines)
