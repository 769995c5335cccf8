"""`cosguard report --html`: one self-contained page a person reads offline. No script at all, no
font, image or style fetched (a Content-Security-Policy forbids every fetch but inline styles and
data: images); charts are inline SVG from ui/svg.py. Every text that comes from the ledger, COS or
CI (keys, bucket names, virus names, reasons) goes through `esc`."""
from __future__ import annotations

import time
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from ..bulk.figures_model import VERDICTS, Figures, iso
from .svg import esc, hbars, histogram, latency_bins, stacked_bars, trend

SECTIONS = (("verdicts", "Verdicts over time"), ("latency", "Upload → verdict latency"),
            ("viruses", "Top viruses"), ("pending", "Pending"), ("human", "Needs a human"),
            ("quarantine", "Quarantine"), ("restores", "Restores"), ("rescans", "Rescans"), ("cost", "Cost"))

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:16px 28px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#c5cad3}main{padding:8px 28px 40px;max-width:1100px}
section{background:#fff;border:1px solid #e1e4e8;border-radius:6px;margin:16px 0;padding:12px 18px}
h2{font-size:16px;margin:4px 0 10px}table{border-collapse:collapse;width:100%;margin:6px 0}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eef0f2;vertical-align:top;overflow-wrap:anywhere}
th{color:#5b6270;font-weight:600;white-space:nowrap}td.n{text-align:right;white-space:nowrap}code{background:#f1f2f4;padding:1px 4px}
.tiles{display:flex;gap:12px;flex-wrap:wrap}.tile{border:1px solid #e1e4e8;border-radius:6px;padding:8px 14px;min-width:110px}
.tile b{display:block;font-size:22px}.muted{color:#6b7280}.warn{color:#b42318}svg.chart{max-width:100%;height:auto}
"""
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]], numeric: Sequence[int] = (),
           name: str = "") -> str:
    body = "".join("<tr>" + "".join(f'<td{" class=n" if i in numeric else ""}>{esc(cell)}</td>'
                                    for i, cell in enumerate(row)) + "</tr>" for row in rows)
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    return (f'<table data-table="{esc(name)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
            if body else '<p class="muted">None.</p>')


def _age(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds} s"


def _size(n: int) -> str:
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def _tile(label: str, value: object, key: str) -> str:
    return f'<div class="tile" data-figure="{esc(key)}" data-value="{esc(value)}"><b>{esc(value)}</b>{esc(label)}</div>'


def _verdicts(f: Figures) -> str:
    totals = f.totals()
    tiles = "".join(_tile(v, totals[v], f"verdict-{v}") for v in VERDICTS)
    buckets = sorted({row.bucket for row in f.verdicts})
    charts: List[str] = []
    groups: List[Tuple[str, Dict[Tuple[str, str], int]]] = [("all buckets", {})]
    for row in f.verdicts:
        groups[0][1][(row.period, row.verdict)] = groups[0][1].get((row.period, row.verdict), 0) + row.count
    if len(buckets) > 1:
        for bucket in buckets:
            groups.append((bucket or "(bucket unknown)", {(r.period, r.verdict): r.count
                                                          for r in f.verdicts if r.bucket == bucket}))
    periods = list(f.periods())
    for title, counts in groups:
        charts.append(f"<h3>{esc(title)}</h3>" + (stacked_bars(f"verdicts {title}", periods, VERDICTS, counts)
                                                   if periods else '<p class="muted">No verdicts in the period.</p>'))
    rows = [(b or "(unknown)",) + tuple(sum(r.count for r in f.verdicts if r.bucket == b and r.verdict == v)
                                        for v in VERDICTS) for b in buckets]
    return (f'<div class="tiles">{tiles}</div>' + "".join(charts)
            + _table(["bucket"] + list(VERDICTS), rows, numeric=range(1, 6), name="verdicts-by-bucket")
            + f'<p class="muted">Per {esc(f.grain)} (UTC). "other": no verdict applied (the object changed or '
              'went before it, or CI lost the job and it was submitted again).</p>')


def _latency(f: Figures) -> str:
    up, sub = f.upload_latency, f.submit_latency

    def ranks(lat, what):
        return "".join(_tile(f"{name} {what}", "-" if v is None else f"{v} s", f"{what}-{name}")
                       for name, v in (("p50", lat.p50), ("p95", lat.p95), ("p99", lat.p99)))
    unknown = (f'<p class="muted">{up.unknown} closes predate the index facts: their latency is unknown.</p>'
               if up.unknown else "")
    return (f'<div class="tiles">{ranks(up, "upload")}{ranks(sub, "submission")}</div>'
            + "<h3>Distribution (upload → verdict)</h3>" + histogram("latency histogram", latency_bins(up.samples))
            + "<h3>Trend (p50 and p95 per period)</h3>" + trend("latency trend", _on_axis(f)) + unknown
            + '<p class="muted">From the upload (its Last-Modified) and from the job\'s submission to the verdict '
              'applied. A backfill\'s objects were uploaded long before: their submission latency is the one to read.</p>')


def _on_axis(f: Figures) -> List[Tuple[str, Dict[str, Optional[int]]]]:
    """The trend's points on the verdicts' time axis (a period without closes has none)."""
    known = dict(f.latency_trend)
    return [(period, known.get(period, {})) for period in f.periods()]


def _viruses(f: Figures) -> str:
    read = len(f.infections)
    note = (f'<p class="muted">Virus names from the newest {read} of {f.infections_total} infections '
            '(--detail).</p>' if read < f.infections_total else "")
    rows = [(v.name, o.bucket, o.key, o.when, o.now_at) for v in f.viruses for o in v.objects]
    return (hbars("top viruses", [(v.name, v.count) for v in f.viruses[:15]]) if f.viruses else "") + note + _table(
        ["virus", "bucket", "key", "when (UTC)", "where it is now"], rows, name="virus-objects")


def _pending(f: Figures) -> str:
    shown = len(f.pending)
    more = f'<p class="muted">The oldest {shown} of the open work.</p>' if shown and shown < f.pending_total else ""
    return (f'<div class="tiles">{_tile("pending", f.pending_total, "pending")}'
            f'{_tile("oldest pending", _age(f.oldest_pending_seconds) if f.pending_total else "-", "oldest")}</div>'
            + _table(["bucket", "key", "job", "status", "how", "waiting"],
                     [(p.bucket, p.key, p.job_id or "-", p.status, p.how, _age(p.age_seconds)) for p in f.pending],
                     name="pending") + more
            + '<p class="muted">The sweep (reconcile_pending, or <code>cosguard reconcile</code>) applies lost '
              'verdicts and submits failed work again.</p>')


def _human(f: Figures) -> str:
    shown = sum(1 for h in f.needs_human if h.kind == "possible write loss")
    more = (f'<p class="muted">The newest {shown} of {f.losses_total} possible write losses on record '
            '(--detail).</p>' if shown < f.losses_total else "")
    return (_table(["what", "bucket", "key", "why", "since (UTC)", "resolve with"],
                   [(h.kind, h.bucket, h.key, h.reason, h.when or "-", h.command) for h in f.needs_human],
                   name="needs-human") + more
            + '<p class="muted">A possible write loss (unversioned buckets): a write of the key may have been '
              'deleted with an infected upload by cosguard\'s DELETE. Check the key, ask for a re-upload if it '
              'is missing, then acknowledge it with the command shown.</p>')


def _quarantine(f: Figures) -> str:
    total = sum(q.size for q in f.quarantine)
    return (f'<div class="tiles">{_tile("objects", len(f.quarantine), "quarantine-objects")}'
            f'{_tile("bytes", _size(total), "quarantine-bytes")}</div>'
            + _table(["bucket", "key", "size", "quarantined (UTC)", "age"],
                     [(q.bucket, q.key, _size(q.size), q.modified, _age(q.age_seconds)) for q in f.quarantine],
                     numeric=(2,), name="quarantine")
            + '<p class="muted">Put one back with <code>cosguard restore KEY</code>.</p>')


def _restores(f: Figures) -> str:
    return (_tile("restores", f.restores_total, "restores")
            + _table(["job", "bucket", "key", "restored (UTC)"],
                     [(r.job_id, r.bucket, r.key or "-", r.when) for r in f.restores], name="restores"))


def _rescans(f: Figures) -> str:
    r = f.rescans
    totals = r.totals()
    counts: Dict[Tuple[str, str], int] = {}
    for row in r.verdicts:
        counts[(row.period, row.verdict)] = counts.get((row.period, row.verdict), 0) + row.count
    backlog = "off" if r.backlog is None else r.backlog
    tiles = (_tile("rescans", sum(totals.values()), "rescans") + _tile("found infected", r.found_total, "rescans-found")
             + _tile("due now", backlog, "rescans-backlog"))
    chart = (stacked_bars("rescans", list(f.periods()), VERDICTS, counts) if r.verdicts
             else '<p class="muted">No rescans in the period.</p>')
    more = (f'<p class="muted">The newest {len(r.found)} of {r.found_total} objects found infected on rescan '
            '(--detail).</p>' if len(r.found) < r.found_total else "")
    schedule = ('Scheduled rescans are off (COSGUARD_RESCAN_AFTER_DAYS unset).' if r.after_days is None else
                f'"Due now": writes whose clean verdict is older than {r.after_days:g} days, left for the '
                'scheduled rescans (COSGUARD_RESCAN_AFTER_DAYS).')
    return (f'<div class="tiles">{tiles}</div>' + chart
            + "<h3>Found infected on rescan</h3>"
            + _table(["bucket", "key", "virus", "first verdict (clean, UTC)", "rescan verdict (UTC)", "handled",
                      "where it is now"],
                     [(x.bucket, x.key, ", ".join(x.viruses), x.first_verdict or "-", x.when, x.handled, x.now_at)
                      for x in r.found], name="found-on-rescan") + more
            + f'<p class="muted">A rescan is a new CI job for a write already found clean (<code>cosguard '
              f'rescan</code>, or scheduled): its verdicts are counted here, not in "Verdicts over time", and '
              f'its wait is not an upload latency. {esc(schedule)}</p>')


def _cost(f: Figures) -> str:
    c = f.cost
    return (_table(["what", "in the period"],
                   [("CI virus scans (uploads and rescans)", c.ci_scans), ("CI requests (estimate)", c.ci_requests),
                    ("COS requests (estimate)", c.cos_requests),
                    (f"CI cost at {c.price_per_1000} {c.currency} per 1,000 scans", f"{c.amount:.2f} {c.currency}")],
                   numeric=(1,), name="cost")
            + '<p class="muted">Requests estimated per closed job from <code>benchmarks/bench_api_calls.py</code> '
              '(docs/performance.md); the price is an assumption unless passed with --price-per-1000.</p>')


def render(f: Figures) -> str:
    bodies = {"verdicts": _verdicts, "latency": _latency, "viruses": _viruses, "pending": _pending,
              "human": _human, "quarantine": _quarantine, "restores": _restores, "rescans": _rescans,
              "cost": _cost}
    scope = f"bucket {f.bucket}" if f.bucket else "every served bucket"
    warnings = "".join(f'<p class="warn">Not fully read (figures are partial): {esc(u)}</p>' for u in f.unreadable)
    nav = " · ".join(f'<a href="#{key}">{esc(title)}</a>' for key, title in SECTIONS)
    sections = "".join(f'<section id="{key}" data-section="{key}"><h2>{esc(title)}</h2>{bodies[key](f)}</section>'
                       for key, title in SECTIONS)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>cosguard report {esc(iso(f.since)[:10])} – {esc(iso(f.until)[:10])}</title>"
            f"<style>{STYLE}</style></head><body>"
            f"<header><h1>cosguard report</h1><p>{esc(iso(f.since))} – {esc(iso(f.until))}, {esc(scope)}; "
            f"written {esc(time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()))}</p></header>"
            f"<main><nav>{nav}</nav>{warnings}{sections}</main></body></html>\n")
