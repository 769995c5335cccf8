"""Reconcile (sweep) time per 1,000 pending jobs: every CI callback dropped, so every verdict waits
for the sweep; then one reconcile_pending invocation (`Runtime.sweeper.sweep()`) applies them all.
Seconds and jobs/s, at 0 ms and at 50 ms injected on every COS and CI request, against a serial
sweep (COSGUARD_MAX_WORKERS=1) over fewer jobs in the same run (the sweep's cost is proportional to
the open jobs, so jobs/s compares).

Why: the sweep is the safety net for lost callbacks; it must clear a backlog well inside one
reconcile_pending invocation (and one timer period).

How: 1,000 uploads (1 in 10 EICAR) go through scan_on_upload on the local SCF runtime with
`cloud.ci.faults.drop_callback_rate = 1.0`; once CI has finished every job, reconcile_pending runs
once on a fresh worker process of the local SCF runtime with a timer event (the figure includes
its cold start; the handler's own `seconds` is shown too). COSGUARD_MAX_WORKERS=32, the default;
the serial row runs the same handler with COSGUARD_MAX_WORKERS=1 over `--serial-jobs` jobs.
Latency is injected only during the sweep (each request waits that long before it is answered).
"Reading jobs/ alone" times listing `.cosguard/jobs/` and reading every entry one by one from this
process, before the sweep and without injected latency (the sweep reads the entries in its pool).
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from _common import Bench, header, mixed_items, requests_served, swallowed_stdout, table
from cosguard.local.scf import Function
from cosguard.runtime import Runtime

CONFIGS: Sequence[Tuple[str, float, float]] = (("none", 0.0, 0.0), ("CI 20 ms", 20.0, 0.0),
                                               ("COS + CI 20 ms", 20.0, 20.0), ("COS + CI 50 ms", 50.0, 50.0))
DEFAULT_CONFIGS = ("none", "COS + CI 50 ms")
TIMER_EVENT = {"Type": "Timer", "TriggerName": "reconcile", "Time": "2024-01-01T00:00:00Z", "Message": ""}


def pending_jobs(bench: Bench, tag: str, count: int) -> int:
    """`count` uploads submitted through the trigger with callbacks dropped; waits for CI."""
    bench.upload(mixed_items(f"{tag}/", count, infected_every=10))
    records = bench.take_records(count)
    for start in range(0, count, 500):  # two events of 500 records keep each invocation short
        bench.scan.invoke({"Records": records[start:start + 500]})
    bench.cloud.ci.backend.wait_idle(120)
    return count


def sweep(bench: Bench, ci_ms: float, cos_ms: float, workers: Optional[int] = None) -> Dict[str, Any]:
    """One reconcile_pending invocation on a fresh worker, latency injected."""
    with swallowed_stdout():
        ledger = Runtime.from_env(bench.env).sweeper.ledgers()[0]
    env = dict(bench.env, **({"COSGUARD_MAX_WORKERS": str(workers)} if workers else {}))
    function = Function("reconcile_pending", env, concurrency=bench.concurrency, time_limit_ms=bench.time_limit_ms)
    try:
        started = time.perf_counter()
        entries = sum(1 for _ in ledger.open_jobs())   # serially, before latency is injected
        read_seconds = time.perf_counter() - started
        bench.cloud.ci.faults.latency_ms = ci_ms
        bench.cloud.cos.faults.latency_ms = cos_ms
        served_before = requests_served(bench.cloud)
        started = time.perf_counter()
        report = function.invoke(TIMER_EVENT)
        seconds = time.perf_counter() - started
        served = requests_served(bench.cloud) - served_before
    finally:
        bench.cloud.ci.faults.latency_ms = 0
        bench.cloud.cos.faults.latency_ms = 0
        function.close()
    return {"seconds": seconds, "report": report, "requests": served, "read_seconds": read_seconds,
            "entries": entries}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--jobs", type=int, default=1000, help="pending jobs per sweep (default 1000)")
    parser.add_argument("--serial-jobs", type=int, default=100,
                        help="pending jobs for the serial sweep (COSGUARD_MAX_WORKERS=1; default 100, 0: none)")
    parser.add_argument("--configs", nargs="+", choices=[c[0] for c in CONFIGS], default=list(DEFAULT_CONFIGS),
                        help=f"injected latency settings (default: {' and '.join(DEFAULT_CONFIGS)})")
    args = parser.parse_args(argv)
    header("Reconcile: one sweep over pending jobs whose callbacks were all dropped")
    rows: List[List[Any]] = []
    with Bench() as bench:
        bench.cloud.ci.faults.drop_callback_rate = 1.0
        for name, ci_ms, cos_ms in [c for c in CONFIGS if c[0] in args.configs]:
            tag = name.replace(" ", "").replace("+", "-")
            serial_rate = None
            for label, count, workers in (("serial (1 worker)", args.serial_jobs, 1),
                                          ("default (32 workers)", args.jobs, None)):
                if not count:
                    continue
                created = pending_jobs(bench, f"{tag}-{workers or 'default'}", count)
                r = sweep(bench, ci_ms, cos_ms, workers)
                report = r["report"]
                applied = ", ".join(f"{k} {v}" for k, v in sorted(report["applied"].items()))
                rate = created / r["seconds"]
                serial_rate = rate if workers == 1 else serial_rate
                rows.append([name, label, r["entries"], round(r["seconds"], 2), round(report["seconds"], 2),
                             round(rate, 1), f"{rate / serial_rate:.1f}×" if serial_rate else "",
                             round(r["seconds"] * 1000 / created, 1), round(r["requests"] / created, 1),
                             round(r["read_seconds"], 2), applied, report["pending"]])
                print(f"  done: {name}, {label}: {r['seconds']:.1f} s", file=sys.stderr)
    print()
    print(f"{args.jobs} pending jobs per sweep (1 in 10 EICAR → moved to quarantine), every callback dropped; "
          "one reconcile_pending invocation on the local SCF runtime (fresh worker); "
          "latency injected during the sweep only.")
    print()
    print(table(["injected latency", "sweep", "open jobs", "invocation s", "sweep s (handler)", "jobs/s", "× serial",
                 "s per 1,000 jobs", "COS+CI requests per job", "reading jobs/ alone, serial, 0 ms, s", "applied",
                 "still pending"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
