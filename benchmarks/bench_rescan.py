"""What a rescan costs in requests per object, from the local cloud's request counters.

How: N small clean objects are backfilled and their verdicts applied (the sweep, no callbacks),
so each write has a clean record. Then, counting COS and CI requests in each phase:

    not due     `cosguard rescan` with a cut-off before every verdict: what a write not yet due costs
    due         the same with a cut-off after them: what submitting a rescan costs
    verdicts    the sweep applying the rescans' verdicts (what a callback would do, plus its listing)
    scheduled   one timer slice (COSGUARD_RESCAN_AFTER_DAYS=0) over the same writes, again due

    python benchmarks/bench_rescan.py            # 500 objects
    python benchmarks/bench_rescan.py -n 200
"""
from __future__ import annotations

import argparse
import time
from typing import Dict

from _common import diff, header, table
from cosguard.bulk.backfill import Backfill, Options
from cosguard.bulk.rescan import Rescan, RescanOptions
from cosguard.bulk.rescan_schedule import scheduled_rescans
from cosguard.infra.config import Settings
from cosguard.local.stack import LocalCloud
from cosguard.runtime import Runtime


def counts(cloud: LocalCloud) -> Dict[str, int]:
    cos = {f"COS {k}": v for k, v in cloud.cos.counters.snapshot().items() if k not in ("bytes_read", "injected")}
    ci = {f"CI {k}": v for k, v in cloud.ci.counters.snapshot().items() if k not in ("bytes_read", "injected")}
    return {**cos, **ci}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=500, help="objects (default 500)")
    n = parser.parse_args().n
    header(f"rescan: requests per object, {n} objects")
    intake, jail = "intake-1250000000", "jail-1250000000"
    cloud = LocalCloud([intake, jail], scan_delay=0.0).start()
    try:
        cloud.ci.faults.drop_callback_rate = 1.0   # verdicts applied by the sweep below, counted apart
        env = cloud.function_env(COSGUARD_BUCKETS=intake, COSGUARD_QUARANTINE_BUCKET=jail,
                                 COSGUARD_CALLBACK_TOKEN="bench-" + "x" * 32, COSGUARD_LOG_LEVEL="ERROR")
        rt = Runtime(Settings.from_env(env, require_callback_url=False))
        backend, bucket = cloud.cos.moto_backend(), cloud.cos.names.to_moto(intake)
        for i in range(n):
            backend.put_object(bucket, f"r/{i:06d}.txt", f"clean {i}\n".encode(), disable_notification=True)
        Backfill(rt, Options(intake, workers=16)).run()
        assert cloud.ci.wait_idle(120)
        rt.sweeper.sweep()
        time.sleep(1.1)   # COS dates are whole seconds: the cut-offs below fall after every verdict
        rows = []

        def phase(name: str, run) -> None:
            before = counts(cloud)
            outcome = run()
            delta = diff(counts(cloud), before)
            total = sum(delta.values())
            rows.append([name, str(outcome), f"{total / n:.2f}",
                         ", ".join(f"{k} {v / n:.2f}" for k, v in sorted(delta.items()))])

        verdicts_at = time.time()
        phase("not due", lambda: Rescan(rt, RescanOptions(intake, before=verdicts_at - 3600, workers=16)).run().counts)
        phase("due", lambda: Rescan(rt, RescanOptions(intake, before=verdicts_at, workers=16)).run().counts)
        assert cloud.ci.wait_idle(120)
        phase("verdicts", lambda: rt.sweeper.sweep().applied)
        time.sleep(1.1)
        timer = Runtime(Settings.from_env(dict(env, COSGUARD_RESCAN_AFTER_DAYS="0",
                                               COSGUARD_RESCAN_DAILY_BUDGET=str(n)), require_callback_url=False))
        phase("scheduled", lambda: scheduled_rescans(timer.scanner, deadline=_Forever()).as_dict()["counts"])
        print(table(["phase", "outcome", "requests/object", "by operation (per object)"], rows))
    finally:
        cloud.stop()


class _Forever:
    def remaining(self) -> float:
        return 1e9


if __name__ == "__main__":
    main()
