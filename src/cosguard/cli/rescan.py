"""`cosguard rescan`: a new CI job for current objects whose last clean verdict is older than a
cut-off, on backfill's run path (cli/backfill.py, bulk/rescan.py)."""
from __future__ import annotations

import argparse
import re
import threading
import time
from typing import Any

from ..bulk.rescan import Rescan, RescanOptions
from . import backfill
from .common import configure_logs, runtime

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def duration(raw: str) -> float:
    """`30d`, `12h`, `90m`, `45s`, `2w` (a bare number is days) -> seconds."""
    found = re.match(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", raw or "")
    if not found:
        raise argparse.ArgumentTypeError(f"expected a duration like 30d, 12h or 90m, got {raw!r}")
    return float(found.group(1)) * _UNITS[found.group(2) or "d"]


def register(commands) -> None:
    p = commands.add_parser(
        "rescan", help="scan again the objects whose clean verdict is older than a cut-off",
        description="Submit a new CI job for every current object whose last clean verdict (the sealed "
                    "ledger record, never a tag) is older than --older-than: the same write, a new job. "
                    "Infected ones get the configured action and a `found_on_rescan` notification; clean "
                    "ones get a new verdict date. An object overwritten since is scanned as a new write. "
                    "Exit 1 when any object ended `error`, 130 when interrupted (the checkpoint is kept).")
    p.add_argument("--older-than", type=duration, required=True, metavar="AGE",
                   help="rescan verdicts older than this: 30d, 12h, 90m, 45s, 2w (a bare number is days)")
    p.add_argument("--max-scans", type=int, metavar="N",
                   help="stop once N scans were submitted (with --checkpoint, --resume continues)")
    backfill.add_run_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    rt = runtime(args)
    configure_logs(args, "INFO" if args.verbose else "")  # stderr; stdout is for the report
    before = time.time() - args.older_than
    def build(rt_: Any, options: Any, stop: threading.Event) -> Rescan:
        return Rescan(rt_, options, stop=stop)
    return backfill._run(args, rt, "rescan", build, RescanOptions, before=before,
                         max_scans=args.max_scans)
