"""`cosguard report`: what cosguard did in a period, as a page a person reads offline (--html), as
JSON (--json), or as a short summary; figures from bulk/figures.py, the page from ui/report_html.py."""
from __future__ import annotations

import argparse
import os
import sys

from ..bulk.backfill import DEFAULT_PRICE_PER_1000
from . import arguments
from .common import EXIT_FINDINGS, EXIT_OK, add_settings_arguments, print_json, print_table, reachable, runtime, say
from .failures import UsageError


def register(commands) -> None:
    p = commands.add_parser("report", help="verdicts, latency, viruses, pending work, quarantine and cost "
                                           "of a period (an HTML page, JSON or a summary)",
                            description="Read the ledger's bounded sources (its time index, its open work, "
                                        "the quarantine listing) and report on the last DAYS days. Exit 1 "
                                        "when something needs a human or a ledger could not be read.")
    add_settings_arguments(p)
    p.add_argument("--html", metavar="FILE", help="write the report as one self-contained HTML page (no "
                                                  "script, nothing fetched: readable offline)")
    p.add_argument("--since", type=arguments.days, default=7, metavar="DAYS",
                   help="the period: the last DAYS days (default 7; up to 2 drawn per hour, longer per day)")
    p.add_argument("--bucket", help="only this served bucket (default: every one)")
    p.add_argument("--detail", type=arguments.count, default=50, metavar="N",
                   help="rows read for the lists: newest infections and restores, oldest pending (default 50)")
    p.add_argument("--price-per-1000", type=arguments.non_negative, default=DEFAULT_PRICE_PER_1000,
                   help=f"CNY per 1,000 CI virus scans for the cost estimate (default {DEFAULT_PRICE_PER_1000}: "
                        "an assumption, not Tencent's published price; pass your own)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..bulk.figures import collect_figures
    rt = runtime(args)
    if args.bucket is not None:
        arguments.served([args.bucket], rt.settings)
    if args.html and os.path.isdir(args.html):
        raise UsageError(f"--html {args.html}: a directory; name the file to write")
    ledgers = rt.sweeper.ledgers([args.bucket] if args.bucket else None)
    reachable(rt, ledgers)
    figures = collect_figures(rt.settings, rt.gateway, ledgers, rt.scanner.sealer, since=args.since * 86400,
                              bucket=args.bucket, detail=args.detail, price_per_1000=args.price_per_1000,
                              workers=rt.settings.max_workers)
    if args.html:
        write_html(figures, args.html)
    if args.json:
        print_json(figures.as_dict())
    else:
        summary(figures)
        if args.html:
            say(f"report written to {os.path.abspath(args.html)}")
    for problem in figures.unreadable:
        say(f"cosguard report: not fully read (figures are partial): {problem}", file=sys.stderr)
    return EXIT_FINDINGS if figures.needs_human or figures.losses_total or figures.unreadable else EXIT_OK


def report_for(env, path: str, since_days: float = 7) -> None:
    """The HTML report of the deployment whose functions' environment is `env` (the demo's)."""
    from ..bulk.figures import collect_figures
    from ..runtime import Runtime
    rt = Runtime.from_env(dict(env), require_callback_url=False)
    figures = collect_figures(rt.settings, rt.gateway, rt.sweeper.ledgers(), rt.scanner.sealer,
                              since=since_days * 86400, workers=rt.settings.max_workers)
    write_html(figures, path)


def write_html(figures, path: str) -> None:
    from ..ui.report_html import render
    with open(path, "w", encoding="utf-8") as out:
        out.write(render(figures))


def summary(figures) -> None:
    totals = figures.totals()
    up = figures.upload_latency
    rows = [["verdicts", verdict, count] for verdict, count in totals.items()]
    rows += [["upload -> verdict (s)", name, "-" if value is None else value]
             for name, value in (("p50", up.p50), ("p95", up.p95), ("p99", up.p99))]
    rows += [["pending", "oldest (s)" if figures.pending_total else "-", figures.oldest_pending_seconds],
             ["pending", "objects", figures.pending_total],
             ["needs a human", "-", len(figures.needs_human)],
             ["needs a human", "possible write losses", figures.losses_total],
             ["quarantine", "objects", len(figures.quarantine)],
             ["restores", "-", figures.restores_total],
             ["rescans", "done", sum(figures.rescans.totals().values())],
             ["rescans", "found infected", figures.rescans.found_total],
             ["rescans", "due now", "off" if figures.rescans.backlog is None else figures.rescans.backlog],
             ["cost", "CI scans", figures.cost.ci_scans],
             ["cost", f"estimate ({figures.cost.currency})", f"{figures.cost.amount:.2f}"]]
    print_table(["figure", "what", "value"], rows)
    if figures.rescans.found:
        print()
        say("found infected on rescan (first verdict -> rescan verdict, UTC):")
        for found in figures.rescans.found:
            say(f"  {found.bucket}/{found.key}: {found.first_verdict or '?'} -> {found.when}, {found.handled}")
    if figures.needs_human:
        print()
        say("needs a human (each with the command that resolves it, whole):")
        for item in figures.needs_human:
            say(f"  {item.kind}: {item.bucket}/{item.key}")
            say(f"    {item.command}")
        if len([h for h in figures.needs_human if h.kind == "possible write loss"]) < figures.losses_total:
            say(f"(the newest of {figures.losses_total} possible write losses on record: --detail)")
