"""Charts as inline SVG, drawn by our code (no library, nothing fetched): stacked bars, horizontal
bars, a histogram and a trend line. Every mark carries its figures as `data-*` attributes and a
`<title>` (what a pointer shows, and what the browser test reads); every text is escaped (`esc`)."""
from __future__ import annotations

import html
from typing import Dict, List, Optional, Sequence, Tuple

from ..infra.text import terminal_safe

COLOURS = {"clean": "#3a9d5d", "infected": "#d64545", "unscannable": "#9b7ad6", "error": "#e0a030",
           "other": "#8a8f98", "p50": "#3867d6", "p95": "#e0a030", "p99": "#d64545", "bar": "#3867d6"}


def esc(text: object) -> str:
    """Text as HTML shows it and never runs it: control and bidi characters written out
    (infra/text.py), then `<>&"'` escaped (safe in text and in quoted attributes)."""
    return html.escape(terminal_safe(text), quote=True)


def _attrs(data: Dict[str, object]) -> str:
    return " ".join(f'data-{name}="{esc(value)}"' for name, value in data.items())


def stacked_bars(name: str, periods: Sequence[str], series: Sequence[str],
                 counts: Dict[Tuple[str, str], int], width: int = 760, height: int = 220) -> str:
    """One bar per period, stacked by series (verdict); `counts[(period, series)]`."""
    left, bottom, top = 44, 40, 10
    plot_w, plot_h = width - left - 10, height - bottom - top
    totals = [sum(counts.get((p, s), 0) for s in series) for p in periods]
    peak = max(totals + [1])
    step = plot_w / max(1, len(periods))
    bar = max(2.0, min(48.0, step * 0.7))
    parts = [f'<svg class="chart" role="img" aria-label="{esc(name)}" data-chart="{esc(name)}" '
             f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">', _axis(left, top, plot_w, plot_h, peak)]
    for i, period in enumerate(periods):
        x = left + i * step + (step - bar) / 2
        y = float(top + plot_h)
        for s in series:
            n = counts.get((period, s), 0)
            if not n:
                continue
            h = plot_h * n / peak
            y -= h
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{COLOURS.get(s, "#555")}" '
                         f'{_attrs({"period": period, "series": s, "count": n})}><title>{esc(period)}: {n} {esc(s)}</title></rect>')
        if len(periods) <= 12 or i % -(-len(periods) // 12) == 0:
            parts.append(f'<text x="{x + bar / 2:.1f}" y="{top + plot_h + 14}" font-size="10" text-anchor="middle">'
                         f'{esc(period[5:].replace("T", " ") + ("h" if len(period) > 10 else ""))}</text>')
    parts.append(_legend(series, left, height - 12))
    parts.append("</svg>")
    return "".join(parts)


def _axis(left: int, top: int, plot_w: float, plot_h: float, peak: float, unit: str = "") -> str:
    return (f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#999"/>'
            f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#999"/>'
            f'<text x="{left - 4}" y="{top + 8}" font-size="10" text-anchor="end">{esc(_short(peak))}{unit}</text>'
            f'<text x="{left - 4}" y="{top + plot_h}" font-size="10" text-anchor="end">0</text>')


def _short(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:.1f}"


def _legend(series: Sequence[str], x: int, y: int) -> str:
    parts = []
    for s in series:
        parts.append(f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{COLOURS.get(s, "#555")}"/>'
                     f'<text x="{x + 14}" y="{y}" font-size="11">{esc(s)}</text>')
        x += 24 + 7 * len(s)
    return "".join(parts)


def hbars(name: str, rows: Sequence[Tuple[str, int]], width: int = 760) -> str:
    """One horizontal bar per (label, count), largest first as given."""
    label_w, row_h = 260, 22
    height = max(1, len(rows)) * row_h + 10
    peak = max([n for _, n in rows] + [1])
    parts = [f'<svg class="chart" role="img" aria-label="{esc(name)}" data-chart="{esc(name)}" '
             f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">']
    for i, (label, n) in enumerate(rows):
        y = 5 + i * row_h
        w = (width - label_w - 60) * n / peak
        shown = label if len(label) <= 40 else label[:39] + "…"
        parts.append(f'<text x="{label_w - 6}" y="{y + 14}" font-size="12" text-anchor="end">{esc(shown)}</text>'
                     f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row_h - 6}" fill="{COLOURS["infected"]}" '
                     f'{_attrs({"label": label, "count": n})}><title>{esc(label)}: {n}</title></rect>'
                     f'<text x="{label_w + w + 6:.1f}" y="{y + 14}" font-size="12">{n}</text>')
    parts.append("</svg>")
    return "".join(parts)


LATENCY_BINS: List[Tuple[str, float]] = [("<1 s", 1), ("1-2 s", 2), ("2-5 s", 5), ("5-10 s", 10), ("10-30 s", 30),
                                         ("30-60 s", 60), ("1-5 min", 300), ("5-15 min", 900), ("15-60 min", 3600),
                                         ("1-24 h", 86400), (">1 day", float("inf"))]


def latency_bins(samples: Sequence[int]) -> List[Tuple[str, int]]:
    counts = [0] * len(LATENCY_BINS)
    for value in samples:
        counts[next(i for i, (_, upper) in enumerate(LATENCY_BINS) if value < upper)] += 1
    return [(label, n) for (label, _), n in zip(LATENCY_BINS, counts)]


def histogram(name: str, bins: Sequence[Tuple[str, int]], width: int = 760, height: int = 200) -> str:
    left, bottom, top = 44, 30, 10
    plot_w, plot_h = width - left - 10, height - bottom - top
    peak = max([n for _, n in bins] + [1])
    step = plot_w / max(1, len(bins))
    parts = [f'<svg class="chart" role="img" aria-label="{esc(name)}" data-chart="{esc(name)}" '
             f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">', _axis(left, top, plot_w, plot_h, peak)]
    for i, (label, n) in enumerate(bins):
        h = plot_h * n / peak
        x = left + i * step + step * 0.1
        parts.append(f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{step * 0.8:.1f}" height="{h:.1f}" '
                     f'fill="{COLOURS["bar"]}" {_attrs({"bin": label, "count": n})}><title>{esc(label)}: {n}</title></rect>'
                     f'<text x="{x + step * 0.4:.1f}" y="{top + plot_h + 14}" font-size="10" text-anchor="middle">{esc(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def trend(name: str, points: Sequence[Tuple[str, Dict[str, Optional[int]]]], series: Sequence[str] = ("p50", "p95"),
          width: int = 760, height: int = 200) -> str:
    """One line per series (a percentile) over the periods."""
    left, bottom, top = 44, 40, 10
    plot_w, plot_h = width - left - 10, height - bottom - top
    peak = max([v for _, ranks in points for s in series for v in [ranks.get(s)] if v is not None] + [1])
    step = plot_w / max(1, len(points))   # the middle of each period's slot, as the bars stand
    parts = [f'<svg class="chart" role="img" aria-label="{esc(name)}" data-chart="{esc(name)}" '
             f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">', _axis(left, top, plot_w, plot_h, peak, " s")]
    for s in series:
        coords = []
        for i, (period, ranks) in enumerate(points):
            value = ranks.get(s)
            if value is None:
                continue
            x, y = left + (i + 0.5) * step, top + plot_h - plot_h * value / peak
            coords.append(f"{x:.1f},{y:.1f}")
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{COLOURS[s]}" '
                         f'{_attrs({"period": period, "series": s, "seconds": value})}>'
                         f'<title>{esc(period)} {esc(s)}: {value} s</title></circle>')
        if len(coords) > 1:
            parts.append(f'<polyline fill="none" stroke="{COLOURS[s]}" stroke-width="2" points="{" ".join(coords)}"/>')
    parts.append(_legend(series, left, height - 12))
    parts.append("</svg>")
    return "".join(parts)
