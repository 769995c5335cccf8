"""API calls per object on each path (clean, infected → move, skipped, duplicate, unscannable), from
the local cloud's own request counters, split into the upload trigger and the CI callback; plus the
bytes the functions read with GetObject, split into ledger documents and object bytes (target: 0).

Why: every COS/CI request is billed and adds latency, and cosguard must never download the objects
it protects (CI reads them itself). Counting at the server side catches calls the code does not
admit to (SDK retries, redirects, extra HEADs).

How: both functions run in worker processes on the local SCF runtime. For each path, N objects are
uploaded, then the trigger is invoked once per COS event (as COS does); CI's callbacks are held at
the function-URL door until the trigger phase is counted, then let through. COS counts come from
`cloud.cos.counters`, CI counts from `cloud.ci.counters` (CI reads object bytes in-process from the
store, not through COS's API, so it adds nothing to either). GetObject bytes are split by key with a
WSGI meter in front of the local COS: keys under `.cosguard/` are ledger documents, everything else
is object bytes; the meter's total is checked against `counters.bytes_read`.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Dict, List, Tuple

from _common import Bench, diff, header, mixed_items, table
from cosguard.local.samples import eicar


def _invoke_each(bench: Bench, records: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return [bench.scan.invoke({"Records": [record]}) for record in records]


class Counts:
    """Snapshots of COS, CI, the GetObject meter and CI's callback deliveries."""

    def __init__(self, bench: Bench):
        self.bench = bench
        self.cos = bench.cloud.cos.counters.snapshot()
        self.ci = bench.cloud.ci.counters.snapshot()
        self.meter = bench.meter.snapshot()
        self.deliveries = len(bench.cloud.ci.deliveries)
        self.cos.pop("injected", None)
        self.bytes_read = self.cos.pop("bytes_read", 0)

    def since(self, before: "Counts") -> Dict[str, Any]:
        return {"cos": diff(self.cos, before.cos), "ci": diff(self.ci, before.ci),
                "meter": diff(self.meter, before.meter), "bytes_read": self.bytes_read - before.bytes_read,
                "deliveries": self.deliveries - before.deliveries}


def run_path(bench: Bench, name: str, items: List[Tuple[str, bytes]], *, records=None,
             simulate_size: int = 0, expect_callbacks: bool = True) -> Tuple[List[Dict[str, Any]], Dict, Dict, List]:
    """Upload (unless `records` are given), count the trigger, then let callbacks in and count them."""
    bench.gate.clear()
    if records is None:
        if simulate_size:
            for key, _ in items:
                bench.cloud.cos.simulate_size(bench.intake, key, simulate_size)
        bench.upload(items)
        records = bench.take_records(len(items))
    start = Counts(bench)
    results = _invoke_each(bench, records)
    after_trigger = Counts(bench)
    if expect_callbacks:
        bench.cloud.ci.backend.wait_idle(60)
    bench.gate.set()
    bench.settle(60)
    time.sleep(0.05)
    after_callback = Counts(bench)
    return records, after_trigger.since(start), after_callback.since(after_trigger), results


def per_object(counts: Dict[str, int], n: int) -> str:
    if not counts:
        return "-"
    return ", ".join(f"{api} {_num(v / n)}" for api, v in counts.items())


def _num(x: float) -> str:
    return f"{x:g}" if abs(x - round(x)) < 1e-9 else f"{x:.2f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--objects", type=int, default=10, help="objects per path (default 10)")
    args = parser.parse_args(argv)
    n = args.objects
    header("API calls per object, by path (local cloud counters)")
    rows: List[List[Any]] = []
    outcomes: Dict[str, Any] = {}
    with Bench(meter=True, callback_gate=True) as bench:
        # Warm both function instances first, so cold-start work is not charged to the first path.
        run_path(bench, "warm-up", mixed_items("warmup/", 2, infected_every=2))

        paths: List[Tuple[str, Dict[str, Any]]] = []
        clean_records, trig, cb, res = run_path(bench, "clean", mixed_items("clean/", n))
        paths.append(("clean", dict(trigger=trig, callback=cb, results=res)))
        _, trig, cb, res = run_path(bench, "infected", [(f"infected/{i:03d}.com", eicar()) for i in range(n)])
        paths.append(("infected (move)", dict(trigger=trig, callback=cb, results=res)))
        _, trig, cb, res = run_path(bench, "skip-key", [(f"folder{i:03d}/", b"") for i in range(n)],
                                    expect_callbacks=False)
        paths.append(("skipped: folder marker (key rule)", dict(trigger=trig, callback=cb, results=res)))
        _, trig, cb, res = run_path(bench, "skip-empty", [(f"empty/{i:03d}.txt", b"") for i in range(n)],
                                    expect_callbacks=False)
        paths.append(("skipped: empty object (HEAD rule)", dict(trigger=trig, callback=cb, results=res)))
        _, trig, cb, res = run_path(bench, "duplicate", [], records=clean_records, expect_callbacks=False)
        paths.append(("duplicate (same events again)", dict(trigger=trig, callback=cb, results=res)))
        _, trig, cb, res = run_path(bench, "unscannable", mixed_items("huge/", n), simulate_size=2 * 1024 ** 3,
                                    expect_callbacks=False)
        paths.append(("unscannable (2 GB, simulated)", dict(trigger=trig, callback=cb, results=res)))
        bench.cloud.ci.faults.duplicate_callback_rate = 1.0
        _, trig, cb, res = run_path(bench, "clean-dup-callback", mixed_items("clean2/", n))
        bench.cloud.ci.faults.duplicate_callback_rate = 0.0
        paths.append(("clean, CI calls back twice", dict(trigger=trig, callback=cb, results=res)))

        checks = []
        for name, data in paths:
            counts: Dict[str, int] = {}
            for r in data["results"]:
                for outcome, c in r.get("counts", {}).items():
                    counts[outcome] = counts.get(outcome, 0) + c
            outcomes[name] = counts
            for phase in ("trigger", "callback"):
                d = data[phase]
                cos_total = sum(d["cos"].values())
                ci_total = sum(d["ci"].values())
                if phase == "callback" and not cos_total and not ci_total and not d["deliveries"]:
                    continue
                meter = d["meter"]
                rows.append([name, phase + (f" ({d['deliveries'] / n:g} cb/obj)" if phase == "callback" else ""),
                             _num(cos_total / n), _num(meter.get("ledger_requests", 0) / n),
                             per_object(d["cos"], n), _num(ci_total / n),
                             per_object(d["ci"], n), meter.get("object_bytes", 0),
                             meter.get("ledger_bytes", 0) // n])
                checks.append(meter.get("object_bytes", 0) + meter.get("ledger_bytes", 0) == d["bytes_read"])
    print()
    print(f"{n} objects per path; per-object averages; scan_on_upload invoked once per COS event; "
          "both functions in worker processes (local SCF runtime); CI scan delay 0.2 s.")
    print()
    print(table(["path", "phase", "COS calls", "of which ledger", "COS calls by API (per object)", "CI calls",
                 "CI calls by API", "object bytes read (total)", "ledger bytes read / object"], rows))
    print()
    print("trigger outcomes per path: " + "; ".join(f"{k}: {v}" for k, v in outcomes.items()))
    print(f"meter total == local COS bytes_read in every window: {all(checks)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
