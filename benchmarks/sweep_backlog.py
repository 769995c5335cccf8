"""A backlog of open jobs drained across reconcile_pending's timer runs: how many runs it takes, and
the jobs each run settles, when every CI callback was lost and every COS and CI request takes 50 ms.

Why: after a CI outage `jobs/` can hold more open jobs than one 300 s invocation settles (about
13,000 at 50 ms). The sweep must stop before its deadline, return its (partial) report, and resume
where it stopped on the next run, until the backlog is gone (bulk/sweep_pages.py).

How: `--jobs` uploads (1 in 10 EICAR) go through scan_on_upload on the local SCF runtime with
`cloud.ci.faults.drop_callback_rate = 1.0`; once CI has finished every job, reconcile_pending runs
on the local SCF runtime with a timer event and a time limit of `--timer` seconds (SCF's
`time_limit_in_ms`; the local runtime kills an invocation that overruns it, as SCF does), again and
again until `jobs/` is empty. Runs follow each other at once: the timer's period (10 minutes) adds
nothing but waiting. Latency is injected during the runs only; COSGUARD_MAX_WORKERS=32, the default.

Scale: the real case is 20,000 jobs and 300 s runs. `--scale K` (default 10) divides the job count,
the time limit and the sweep's margin floor (COSGUARD_SWEEP_MARGIN_SECONDS, 5 s) by K, so the
backlog is the same number of runs long while the benchmark takes a tenth of the time on a 2-core
machine; `--scale 1` runs the real thing (about half an hour here).
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any, List

from _common import Bench, header, mixed_items, requests_served, swallowed_stdout, table
from cosguard.local.scf import Function, FunctionError
from cosguard.runtime import Runtime

TIMER_EVENT = {"Type": "Timer", "TriggerName": "reconcile", "Time": "2024-01-01T00:00:00Z", "Message": ""}
MARGIN_FLOOR_SECONDS = 5.0   # the default COSGUARD_SWEEP_MARGIN_SECONDS


def open_jobs(bench: Bench, ledger) -> int:
    return sum(1 for _ in ledger.gateway.list(ledger.bucket, prefix=f"{ledger.prefix}jobs/"))


def make_backlog(bench: Bench, count: int) -> None:
    """`count` uploads submitted through the trigger with callbacks dropped; waits for CI."""
    for start in range(0, count, 1000):
        batch = mixed_items(f"backlog{start:06d}/", min(1000, count - start), infected_every=10)
        bench.upload(batch)
        records = bench.take_records(len(batch), timeout=300)
        for first in range(0, len(records), 500):   # events of 500 records keep each invocation short
            bench.scan.invoke({"Records": records[first:first + 500]})
        print(f"  submitted {start + len(batch):,} of {count:,}", file=sys.stderr)
    if not bench.cloud.ci.backend.wait_idle(max(120.0, count / 10)):
        raise RuntimeError("CI did not finish the backlog's jobs")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20000, help="open jobs before scaling (default 20000)")
    parser.add_argument("--timer", type=float, default=300.0,
                        help="seconds per timer run before scaling (default 300)")
    parser.add_argument("--latency", type=float, default=50.0,
                        help="ms injected on every COS and CI request (default 50)")
    parser.add_argument("--scale", type=float, default=10.0,
                        help="divide jobs, time limit and margin floor by this (default 10; 1 = the real thing)")
    parser.add_argument("--max-runs", type=int, default=20)
    args = parser.parse_args(argv)
    jobs, timer = int(args.jobs / args.scale), args.timer / args.scale
    header(f"Sweep backlog: {jobs:,} open jobs drained by reconcile_pending runs of {timer:g} s "
           f"at {args.latency:g} ms per request (scale 1/{args.scale:g} of {args.jobs:,} jobs, {args.timer:g} s)")
    rows: List[List[Any]] = []
    with Bench(COSGUARD_SWEEP_MARGIN_SECONDS=f"{MARGIN_FLOOR_SECONDS / args.scale:g}") as bench:
        bench.cloud.ci.faults.drop_callback_rate = 1.0
        started = time.perf_counter()
        make_backlog(bench, jobs)
        print(f"  backlog ready in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        with swallowed_stdout():
            ledger = Runtime.from_env(bench.env).sweeper.ledgers()[0]
        left = open_jobs(bench, ledger)
        function = Function("reconcile_pending", bench.env, concurrency=1, time_limit_ms=int(timer * 1000))
        try:
            for run in range(1, args.max_runs + 1):
                if not left:
                    break
                before = left
                bench.cloud.ci.faults.latency_ms = bench.cloud.cos.faults.latency_ms = args.latency
                served = requests_served(bench.cloud)
                started = time.perf_counter()
                try:
                    report = function.invoke(TIMER_EVENT)
                except FunctionError as exc:   # cut off by the time limit: no report
                    report = {"error": str(exc)}
                seconds = time.perf_counter() - started
                served = requests_served(bench.cloud) - served
                bench.cloud.ci.faults.latency_ms = bench.cloud.cos.faults.latency_ms = 0
                left = open_jobs(bench, ledger)
                settled = before - left
                visited = report.get("visited", {})
                shape = ("cut off (no report)" if "error" in report
                         else "partial" if report.get("partial") else "whole")
                rows.append([run, round(seconds, 1), round(report.get("seconds", float("nan")), 1),
                             visited.get("jobs", 0), settled, round(settled / seconds, 1),
                             round(served / max(1, settled), 1), shape, "yes" if report.get("resumed") else "no",
                             left])
                print(f"  run {run}: {settled:,} settled in {seconds:.1f} s, {left:,} left", file=sys.stderr)
        finally:
            bench.cloud.ci.faults.latency_ms = bench.cloud.cos.faults.latency_ms = 0
            function.close()
    print()
    print(f"{jobs:,} open jobs (1 in 10 EICAR → moved to quarantine), every callback dropped; reconcile_pending "
          f"timer runs with a {timer:g} s time limit, {args.latency:g} ms injected on every COS and CI request "
          f"during the runs; COSGUARD_SWEEP_MARGIN_SECONDS={MARGIN_FLOOR_SECONDS / args.scale:g} (the sweep stops "
          f"dispatching at the larger of that and 10 % of the time limit before it).")
    print()
    print(table(["run", "invocation s", "sweep s (handler)", "jobs/ entries looked at", "jobs settled", "jobs/s",
                 "COS+CI requests per job", "report", "resumed", "open jobs left"], rows))
    print()
    print(f"runs to drain: {len(rows)}{'' if not left else f' (stopped with {left:,} left)'}")
    return 0 if not left else 1


if __name__ == "__main__":
    sys.exit(main())
