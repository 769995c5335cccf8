"""`cosguard backfill`: scan what a bucket held before cosguard watched it, from an operator's shell
(or fan the work out to `scan_on_upload` on SCF)."""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any, Callable, Optional, Tuple

from ..bulk.backfill import DEFAULT_PRICE_PER_1000, DEFAULT_WORKERS, Backfill, BackfillError, Options, Report
from ..bulk.invoke import SCF_HOST, ScfInvoker
from ..ui import progress as progress_output
from ..ui.progress import Progress
from . import arguments
from .common import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_USAGE,
    add_settings_arguments,
    configure_logs,
    print_json,
    print_table,
    runtime,
    say,
)

EXIT_INTERRUPTED = 130


def register(commands) -> None:
    p = commands.add_parser(
        "backfill", help="scan the objects already in a bucket",
        description="Scan existing objects through the same path as the upload trigger: skip rules, "
                    "unscannable rules, one job per object version. Objects the ledger already has a "
                    "claim for are skipped without a request. Exit 1 when any object ended `error`, "
                    "130 when interrupted (the checkpoint is kept).")
    add_run_arguments(p)
    p.set_defaults(run=run)


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """The options backfill and rescan share: where, how fast, dry run, checkpoints, fan-out."""
    add_settings_arguments(p)
    p.add_argument("--bucket", required=True, help="the served bucket, <name>-<appid>")
    p.add_argument("--prefix", default="", help="only keys under this prefix")
    p.add_argument("--workers", type=int,
                   help=f"objects in flight (default {DEFAULT_WORKERS}, or COSGUARD_MAX_WORKERS when larger)")
    p.add_argument("--rps", type=float, help="at most this many scans submitted per second (default: no cap)")
    p.add_argument("--page-size", type=int, default=1000, help="objects per listing page (default 1000)")
    p.add_argument("--dry-run", action="store_true",
                   help="list and count only: objects, bytes, estimated cost; no scan, no per-object request")
    p.add_argument("--price-per-1000", type=arguments.non_negative, default=DEFAULT_PRICE_PER_1000,
                   help=f"CNY per 1,000 CI virus scans for the estimate (default {DEFAULT_PRICE_PER_1000}: an "
                        "assumption, not Tencent's published price; pass your own)")
    p.add_argument("--checkpoint", metavar="FILE", help="record progress here after every listing page")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint FILE")
    p.add_argument("--inventory", metavar="BUCKET/PATH/manifest.json",
                   help="list from this COS inventory report instead of ListObjects: its CSV(.gz) files are "
                        "streamed, and whoever scans reads each listed write's ledger record (no claim set in memory)")
    p.add_argument("--inventory-keys", choices=("url", "raw"), default="url",
                   help="how the report spells keys: url (URL-encoded, what COS documents; default) or raw")
    p.add_argument("--versioned", choices=("auto", "yes", "no"), default="auto",
                   help="list object versions (yes) or objects (no); auto asks COS (GetBucketVersioning)")
    p.add_argument("--progress", action="store_true", help="show progress even when stderr is not a terminal (then one line every 10 s)")
    p.add_argument("--verbose", action="store_true", help="one JSON log line per object on stderr (by default none: the report says what happened)")
    f = p.add_argument_group("fan-out (SCF as the distributed engine)")
    f.add_argument("--fan-out", action="store_true",
                   help="invoke scan_on_upload asynchronously with batches of synthetic COS events "
                        "(with --inventory: one invocation per data file, which reads the file itself)")
    f.add_argument("--batch-size", type=int, default=100, help="records per invocation (default 100)")
    f.add_argument("--rows-per-invocation", type=int, metavar="N",
                   help="with --inventory: N records of a data file per invocation (default: the whole file; "
                        "this process then reads each file once to count its records)")
    f.add_argument("--function", help="deployed scan_on_upload function name, e.g. scan-on-upload-prod-cosguard")
    f.add_argument("--namespace", default="default", help="SCF namespace (default: default)")
    f.add_argument("--qualifier", help="function version or alias (default $LATEST)")
    f.add_argument("--scf-endpoint", default=f"https://{SCF_HOST}", help=argparse.SUPPRESS)


class ProgressBar:
    """Objects, bytes, rate, ETA (once the count is known) on stderr: a self-rewriting bar on a
    terminal, else one line every `quiet_interval` seconds (a log, not a run-together line)."""

    def __init__(self, backfill: Backfill, stream=None, interval: float = 0.5, quiet_interval: float = 10.0):
        self.progress = Progress(stream or sys.stderr)
        self.backfill = backfill
        self.interval = interval if self.progress.tty else quiet_interval
        self.progress.interval = 0.0  # this thread already paces the updates
        self.total: Optional[int] = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="cosguard-progress")
        self._counter = threading.Thread(target=self._count, daemon=True, name="cosguard-count")

    def _count(self) -> None:
        """Objects still to go, for the ETA: one more listing (pages only), alongside the run; an
        inventory's manifest says how many it lists."""
        if self.backfill.manifest is not None:
            self.total = self.backfill.manifest.object_count
            return
        total = 0
        try:
            for page in self.backfill.pages():
                if self._stop.is_set():
                    return
                total += len(page.entries)
        except Exception:  # the ETA is a nicety: a failed count leaves it unknown
            return
        self.total = total

    def start(self) -> "ProgressBar":
        self._counter.start()
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.progress.update(self.line(), self.backfill.report.processed, self.total)

    def line(self) -> str:
        r, total = self.backfill.report, self.total
        rate = r.processed / r.seconds if r.seconds > 0 else 0.0
        done = f"{r.processed:,}/{total:,} objects" if total else f"{r.processed:,} objects"
        eta = "?"
        if total and rate > 0:
            eta = _duration(max(0, total - r.processed) / rate)
        return f"backfill {r.bucket}/{r.prefix}  {done}  {_size(r.processed_bytes)}  {rate:,.1f} obj/s  ETA {eta}"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        if not self.progress.tty:  # a log gets the final figures as its last progress line
            self.progress.update(self.line(), force=True)
        self.progress.close(keep=False)  # the summary line follows


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024.0
    return f"{n} B"  # pragma: no cover


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def summary_line(report: Report, command: str = "backfill") -> str:
    c = report.counts
    parts = [f"{report.listed:,} listed"]
    names: Tuple[str, ...] = ("to_scan", "unscannable", "skipped", "already_scanned") if report.mode == "dry-run" else \
        ("files_sent", "error") if report.mode == "fan-out" and report.inventory else \
        ("sent", "error", "skipped", "already_scanned") if report.mode == "fan-out" else \
        ("rescanned", "not_due", "submitted", "duplicate", "skipped", "gone", "error") if report.mode == "rescan" \
        else ("submitted", "duplicate", "unscannable", "skipped", "already_scanned", "gone", "error")
    if command == "rescan" and report.mode == "dry-run":
        names = ("to_scan", "not_due", "no_verdict", "skipped", "error")
    parts += [f"{c.get(n, 0):,} {n.replace('_', ' ')}" for n in names]
    state = "failed" if report.failure else "stopped at --max-scans" if report.at_limit else \
        "interrupted" if report.interrupted else \
        "complete" if report.complete else "stopped"
    rate = report.processed / report.seconds if report.seconds > 0 else 0.0
    return (f"{command} {report.bucket}/{report.prefix} {report.mode} {state}: " + ", ".join(parts)
            + f"; {_size(report.scan_bytes)} to scan; {report.seconds:.1f} s ({rate:,.1f} obj/s)")


def _print_human(report: Report) -> None:
    print_table(["outcome", "objects"], sorted(report.counts.items()))
    if report.skip_reasons:
        print()
        print_table(["skipped because", "objects"], sorted(report.skip_reasons.items()))
    doc = report.as_dict()
    print()
    say(f"listed {report.listed:,} objects ({_size(report.bytes_listed)}) in {report.pages} page(s); "
          f"{doc['objects_per_second']:,} objects/s")
    if report.mode == "dry-run":
        cost = doc["estimated_cost"]
        say(f"would scan {cost['scans']:,} objects ({_size(report.scan_bytes)}); estimated CI cost "
              f"{cost['amount']:,.2f} {cost['currency']} at an assumed {cost['price_per_1000']} per 1,000 scans")
    if report.mode == "fan-out":
        say(f"{report.invocations:,} asynchronous invocations")
    if report.errors:
        print()
        print_table(["key", "error"], [[e["key"], e["reason"]] for e in report.errors[:20]])


def run(args: argparse.Namespace) -> int:
    rt = runtime(args)
    configure_logs(args, "INFO" if args.verbose else "")  # stderr; stdout is for the report
    return _run(args, rt)


def _run(args: argparse.Namespace, rt: Any, command: str = "backfill",
         build: Callable[[Any, Options, threading.Event], Backfill] = lambda rt, o, stop: Backfill(rt, o, stop=stop),
         options_class: Callable[..., Options] = Options, **extra: Any) -> int:
    """One run of `command` (backfill, or rescan.py's): options from `args`, then `build` the run."""
    invoker: Optional[ScfInvoker] = None
    if args.fan_out:
        if not args.function:
            say(f"cosguard {command}: --fan-out needs --function (the deployed scan_on_upload's name)",
                  file=sys.stderr)
            return EXIT_USAGE
        s = rt.settings
        invoker = ScfInvoker(s.secret_id, s.secret_key, s.region, args.function, namespace=args.namespace,
                             qualifier=args.qualifier, token=s.session_token, endpoint=args.scf_endpoint,
                             timeout=s.request_timeout, attempts=s.max_attempts)
    workers = args.workers or max(DEFAULT_WORKERS, rt.settings.max_workers)
    options = options_class(bucket=args.bucket, prefix=args.prefix, workers=workers,
                            rps=args.rps, page_size=args.page_size, dry_run=args.dry_run, checkpoint=args.checkpoint,
                            resume=args.resume, price_per_1000=args.price_per_1000,
                            versioned={"auto": None, "yes": True, "no": False}[args.versioned],
                            invoker=invoker, batch_size=args.batch_size, function=args.function or "scan_on_upload",
                            namespace=args.namespace, inventory=args.inventory,
                            inventory_keys=args.inventory_keys, rows_per_invocation=args.rows_per_invocation, **extra)
    if not (args.dry_run or args.fan_out or rt.settings.callback_url):
        say(f"cosguard {command}: COSGUARD_CALLBACK_URL is not set, so CI will not call back: verdicts "
              "wait for the reconcile sweep", file=sys.stderr)
    stop = threading.Event()
    try:
        backfill = build(rt, options, stop)
    except BackfillError as exc:
        say(f"cosguard {command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    bar = ProgressBar(backfill).start() if args.progress or progress_output.is_terminal(sys.stderr) else None
    previous = _install_interrupt(stop)
    try:
        report = backfill.run()
    finally:
        stop.set()  # ends the counting thread too
        if bar is not None:
            bar.close()
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    say(summary_line(report, command), file=sys.stderr)
    if report.failure:
        say(f"cosguard {command}: stopped early: {report.failure}", file=sys.stderr)
    if args.json:
        print_json(report.as_dict())
    else:
        _print_human(report)
    if report.failed:
        return EXIT_FINDINGS
    return EXIT_INTERRUPTED if report.interrupted and not report.at_limit else EXIT_OK


def _install_interrupt(stop: threading.Event):
    """First Ctrl-C: finish in-flight work, keep the checkpoint, stop. Second: abort at once."""
    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        sys.stderr.write("\ncosguard: stopping after in-flight work (Ctrl-C again to abort)\n")
    try:
        return signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread (embedded use): no handler, the caller owns `stop`
        return None
