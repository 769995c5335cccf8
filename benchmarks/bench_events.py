"""scan_on_upload throughput by event size: wall time and records/s for events of 1, 10, 100 and
1000 records at 0 ms and 50 ms injected on every COS and CI request, against a serial handler
(COSGUARD_MAX_WORKERS=1, a smaller event) at the same latency, with the handler process's peak RSS; then the
peak RSS of quarantine_callback after it has handled the callbacks of 1000 jobs.

Why: COS may batch records into one event and CI's API is a network hop away; the event must fit in
SCF's time limit and the process in its memory size (the smallest is 64 MB).

How: the handler runs in a worker process of the local SCF runtime (`Function.invoke`: the figure
includes the JSON event crossing the process boundary, as SCF would pass it). Each configuration
gets a fresh instance, warmed by a 1-record invocation that is not timed; the timed event is built
from the COS events of that many fresh uploads. CI callbacks are dropped during the timed runs, so
the figure is the trigger alone; the callback run afterwards lets them through. The local COS, CI
and the worker share this machine's CPUs.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Dict, List, Optional

from _common import Bench, cpu_seconds, header, mixed_items, requests_served, table
from cosguard.local.scf import Function

SIZES = (1, 10, 100, 1000)
LATENCIES_MS = (0, 50)


def timed_event(bench: Bench, tag: str, size: int, latency_ms: float,
                workers: Optional[int] = None) -> Dict[str, Any]:
    bench.upload(mixed_items(f"{tag}/warm-", 1))
    warm_records = bench.take_records(1)
    bench.upload(mixed_items(f"{tag}/obj-", size, infected_every=10))
    records = bench.take_records(size)
    bench.cloud.ci.backend.wait_idle(120)  # the previous run's scans must not share this one's CPU
    env = dict(bench.env, **({"COSGUARD_MAX_WORKERS": str(workers)} if workers else {}))
    function = Function("scan_on_upload", env, concurrency=bench.concurrency, time_limit_ms=bench.time_limit_ms)
    try:
        bench.cloud.ci.faults.latency_ms = bench.cloud.cos.faults.latency_ms = latency_ms
        function.invoke({"Records": warm_records})  # cold start + first requests, not timed
        cpu_before, served_before = cpu_seconds(function), requests_served(bench.cloud)
        started = time.perf_counter()
        result = function.invoke({"Records": records})
        seconds = time.perf_counter() - started
        cpu = cpu_seconds(function) - cpu_before
        served = requests_served(bench.cloud) - served_before
        rss_kb = function.peak_rss_kb()
    finally:
        bench.cloud.ci.faults.latency_ms = bench.cloud.cos.faults.latency_ms = 0
        function.close()
    return {"seconds": seconds, "rss_kb": rss_kb, "counts": result.get("counts", {}), "cpu": cpu,
            "served": served}


def callback_run(bench: Bench, size: int) -> Dict[str, Any]:
    """`size` uploads (10% EICAR) through the trigger, every callback delivered to a fresh
    quarantine_callback instance pool; its peak RSS once all verdicts are applied."""
    bench.cloud.ci.backend.wait_idle(120)  # earlier runs' jobs end with their callbacks dropped
    bench.cloud.ci.faults.drop_callback_rate = 0.0
    bench.callback.close()
    bench.callback = bench.function("quarantine_callback")
    bench.upload(mixed_items("callbacks/obj-", size, infected_every=10))
    records = bench.take_records(size)
    scan = bench.function("scan_on_upload")
    try:
        started = time.perf_counter()
        scan.invoke({"Records": records})
        trigger_s = time.perf_counter() - started
        settled = bench.settle(300)
        total_s = time.perf_counter() - started
        answers = [i.result for i in bench.callback.invocations if i.ok]
        statuses: Dict[int, int] = {}
        for answer in answers:
            statuses[answer["statusCode"]] = statuses.get(answer["statusCode"], 0) + 1
        return {"trigger_s": trigger_s, "total_s": total_s, "settled": settled,
                "scan_rss_kb": scan.peak_rss_kb(), "callback_rss_kb": bench.callback.peak_rss_kb(),
                "callbacks": len(bench.callback.invocations), "instances": len(bench.callback._all),
                "statuses": statuses}
    finally:
        scan.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--latencies", type=float, nargs="+", default=list(LATENCIES_MS),
                        help="ms injected on every COS and CI request (default 0 50)")
    parser.add_argument("--serial-size", type=int, default=100,
                        help="records in the serial (COSGUARD_MAX_WORKERS=1) event per latency (default 100, 0: none)")
    args = parser.parse_args(argv)
    header("scan_on_upload: records per event vs wall time (local SCF runtime worker process)")
    rows: List[List[Any]] = []
    with Bench() as bench:
        bench.cloud.ci.faults.drop_callback_rate = 1.0
        for latency in args.latencies:
            serial_rate = None
            runs = [(args.serial_size, 1)] if args.serial_size else []
            for size, workers in runs + [(size, None) for size in args.sizes]:
                r = timed_event(bench, f"l{int(latency)}-n{size}-w{workers or 'default'}", size, latency, workers)
                rate = size / r["seconds"]
                serial_rate = rate if workers == 1 else serial_rate
                rows.append([size, "1 (serial)" if workers == 1 else "32 (default)", f"{latency:g}",
                             round(r["seconds"], 3), round(rate, 1),
                             f"{rate / serial_rate:.1f}×" if serial_rate else "",
                             round(r["cpu"] * 1000 / size, 1), round(r["served"] / r["seconds"]),
                             round(r["rss_kb"] / 1024, 1),
                             ", ".join(f"{k} {v}" for k, v in sorted(r["counts"].items()))])
                print(f"  done: {size} records, workers {workers or 'default'}, at {latency:g} ms in "
                      f"{r['seconds']:.2f} s", file=sys.stderr)
        cb = callback_run(bench, max(args.sizes))
    print()
    print("Warm worker, one invocation per row, 10% of objects EICAR, "
          "CI scan delay 0.2 s, callbacks dropped during these runs.")
    print()
    print(table(["records", "workers", "COS+CI latency ms", "wall s", "records/s", "× serial", "handler CPU ms/record",
                 "COS+CI requests/s served", "peak RSS MB (scan_on_upload)", "outcomes"],
                rows))
    print()
    print(f"Callback run: {max(args.sizes)} records, 10% EICAR, CI latency 0 ms, callbacks delivered to "
          f"quarantine_callback (local SCF runtime, {cb['instances']} instance(s), concurrency 2).")
    print()
    print(table(["function", "peak RSS MB", "SCF 64 MB fits", "notes"], [
        ["scan_on_upload", round(cb["scan_rss_kb"] / 1024, 1), "yes" if cb["scan_rss_kb"] < 64 * 1024 else "NO",
         f"{max(args.sizes)}-record event in {cb['trigger_s']:.2f} s"],
        ["quarantine_callback", round(cb["callback_rss_kb"] / 1024, 1),
         "yes" if cb["callback_rss_kb"] < 64 * 1024 else "NO",
         f"{cb['callbacks']} callbacks, answers {cb['statuses']}, all settled {cb['total_s']:.1f} s after the "
         f"event started" + ("" if cb["settled"] else " (NOT settled)")],
    ]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
