"""Upload→verdict latency, median and p95, through the whole local stack: local COS fires the
trigger, scan_on_upload runs on the local SCF runtime (async invocation queue), local CI scans with
its default 0.2 s scan delay and calls back quarantine_callback's function URL, which applies the
verdict.

Why: the time an infected object stays readable in the intake bucket is this latency.

How: `LocalDeployment` (what `cosguard local` runs: 2 instances per function), mixed uploads (one in
four EICAR). t0 is when the PUT returned; the verdict time is `closed_at` of the job's entry in the
ledger (`.cosguard/closed/<JobId>.json`), written right after the object was tagged clean or moved
to quarantine. Two load shapes: uploads paced at a fixed rate, and one burst.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Dict, List, Sequence, Tuple

from _common import header, ledger_docs, median, mixed_items, percentile, table
from cosguard.local.deployment import LocalDeployment

INTAKE = "intake-1250000000"


def run(deployment: LocalDeployment, tag: str, count: int, rate: float) -> Dict[str, Any]:
    """Upload `count` objects at `rate`/s (0: as fast as one client can), wait for every verdict."""
    cos = deployment.cloud.client("cos")
    items = mixed_items(f"{tag}/", count, infected_every=4)
    uploaded: Dict[str, float] = {}
    started = time.monotonic()
    for i, (key, body) in enumerate(items):
        if rate:
            pause = started + i / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        cos.put_object(Bucket=INTAKE, Key=key, Body=body)
        uploaded[key] = time.time()
    upload_seconds = time.monotonic() - started
    settled = deployment.wait_idle(300)
    closed = {d["key"]: d for d in ledger_docs(cos, deployment.quarantine_bucket, ".cosguard/closed/")
              if d["key"] in uploaded}
    latencies: Dict[str, List[float]] = {"clean": [], "infected": [], "all": []}
    outcomes: Dict[str, int] = {}
    for key, doc in closed.items():
        seconds = doc["closed_at"] - uploaded[key]
        kind = "infected" if key.endswith(".com") else "clean"
        latencies[kind].append(seconds)
        latencies["all"].append(seconds)
        outcomes[doc["outcome"]] = outcomes.get(doc["outcome"], 0) + 1
    return {"latencies": latencies, "outcomes": outcomes, "missing": count - len(closed),
            "upload_seconds": upload_seconds, "settled": settled}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--uploads", type=int, default=200, help="uploads per load shape (default 200)")
    parser.add_argument("--rate", type=float, default=10.0, help="paced uploads per second (default 10)")
    parser.add_argument("--scan-delay", type=float, default=0.2, help="local CI scan delay, s (default 0.2)")
    args = parser.parse_args(argv)
    header("Upload→verdict latency in the local stack (LocalDeployment)")
    shapes: Sequence[Tuple[str, float]] = ((f"paced {args.rate:g}/s", args.rate), ("burst", 0.0))
    rows = []
    notes = []
    with LocalDeployment([INTAKE], scan_delay=args.scan_delay) as deployment:
        run(deployment, "warmup", 4, 0.0)  # start both functions' instances; not reported
        for name, rate in shapes:
            result = run(deployment, name.split()[0], args.uploads, rate)
            for kind in ("all", "clean", "infected"):
                values = result["latencies"][kind]
                rows.append([name, kind, len(values), round(median(values) * 1000), round(percentile(values, 95) * 1000),
                             round(max(values) * 1000) if values else "-"])
            notes.append(f"{name}: uploads took {result['upload_seconds']:.1f} s; outcomes {result['outcomes']}; "
                         f"verdict missing for {result['missing']}" + ("" if result["settled"] else "; NOT settled"))
        failed = len(deployment.scf.invoker.failed)
    print()
    print(f"{args.uploads} uploads per shape, 1 in 4 EICAR (moved to quarantine), CI scan delay {args.scan_delay:g} s, "
          "scan_on_upload and quarantine_callback on the local SCF runtime (2 instances each), "
          "latency = ledger closed_at − PUT returned.")
    print()
    print(table(["load", "objects", "n", "median ms", "p95 ms", "max ms"], rows))
    print()
    for note in notes:
        print(note)
    print(f"trigger invocations that exhausted SCF's retries: {failed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
