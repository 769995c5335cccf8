"""The ledger's size per 1,000 uploads, what `cosguard status` costs, and the backfill's claim memory.

Why: the ledger used to grow forever (claims/, closed/ and actions/ were never deleted) and
`status` read every closed/ record one GET at a time, so both grew with the deployment's whole
history. Now lifecycle rules expire them (docs/retention.md) and status counts from a time index
by LIST alone.

How: N uploads (10 % EICAR) through both functions on the local SCF runtime; once CI is idle the
state prefix is listed per folder (objects, bytes). The figures per 1,000 uploads are what the
ledger gains; what stays resident is that rate times each folder's retention, where it used to be
times the deployment's age. Then, from the local COS's request counters: `cosguard status` as
shipped (index LIST + one closed/ GET per printed row), against the loop it replaced, replayed
(LIST closed/ + one GET per closed job). Last, tracemalloc over the backfill's set of handled
uploads: a Python set of ledger names (before) against `bulk/claimset.ClaimSet` (after).

    python benchmarks/bench_ledger_size.py            # 1,000 uploads
    python benchmarks/bench_ledger_size.py -n 300 --claims 200000
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import tempfile
import tracemalloc
from collections import defaultdict
from typing import Dict, Tuple

from _common import Bench, diff, header, table
from cosguard.bulk.claimset import ClaimSet
from cosguard.cli import main as cli
from cosguard.domain.ledger import digest
from cosguard.infra.config import Settings
from cosguard.local.samples import clean_text, eicar
from cosguard.runtime import Runtime

PREFIX = ".cosguard/"


def ledger_size(bench: Bench) -> Dict[str, Tuple[int, int]]:
    sizes: Dict[str, list] = defaultdict(lambda: [0, 0])
    marker = ""
    while True:
        answer = bench.cos.list_objects(Bucket=bench.jail, Prefix=PREFIX, Marker=marker, MaxKeys=1000)
        contents = answer.get("Contents") or []
        for item in contents:
            folder = item["Key"][len(PREFIX):].split("/", 1)[0]
            sizes[folder][0] += 1
            sizes[folder][1] += int(item["Size"])
        if str(answer.get("IsTruncated")).lower() != "true" or not contents:
            break
        marker = answer.get("NextMarker") or contents[-1]["Key"]
    return {k: (v[0], v[1]) for k, v in sizes.items()}


def status_requests(bench: Bench, env_file: str) -> Dict[str, int]:
    before = bench.cloud.cos.counters.snapshot()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        cli(["status", "--env-file", env_file, "--json"])
    return _requests(diff(bench.cloud.cos.counters.snapshot(), before))


def _requests(counts: Dict[str, int]) -> Dict[str, int]:
    return {k: v for k, v in counts.items() if k not in ("bytes_read", "injected")}


def replayed_old_status(bench: Bench, runtime: Runtime) -> Dict[str, int]:
    """What status did before the index: LIST closed/, then one GET per closed job."""
    before = bench.cloud.cos.counters.snapshot()
    gateway = runtime.gateway
    for item in gateway.list(bench.jail, prefix=f"{PREFIX}closed/"):
        gateway.get_json(bench.jail, str(item["Key"]))
    return _requests(diff(bench.cloud.cos.counters.snapshot(), before))


def claim_memory(n: int) -> Tuple[int, int]:
    names = (digest("intake-1250000000", f"k/{i}", f"etag{i}") for i in range(n))
    tracemalloc.start()
    as_set = set(names)
    set_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    tracemalloc.start()
    compact = ClaimSet(digest("intake-1250000000", f"k/{i}", f"etag{i}") for i in range(n)).freeze()
    claim_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(compact) == len(as_set)
    return set_bytes, claim_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=1000, help="uploads (default 1000)")
    parser.add_argument("--claims", type=int, default=1_000_000, help="names in the claim-memory row")
    args = parser.parse_args()
    header("Ledger size per 1,000 uploads, status requests, backfill claim memory")
    with Bench(scan_delay=0.0, concurrency=2) as bench:
        items = [(f"size/{i:05d}.{'com' if i % 10 == 0 else 'txt'}", eicar() if i % 10 == 0 else clean_text())
                 for i in range(args.n)]
        bench.upload(items)
        records = bench.take_records(len(items))
        for start in range(0, len(records), 100):
            bench.scan.invoke({"Records": records[start:start + 100]})
        assert bench.settle(600), "CI did not go idle"
        sizes = ledger_size(bench)
        settings = Settings.from_env(bench.env)
        retention = {"actions": settings.retain_actions_days, "closed": settings.retain_closed_days,
                     "index": settings.retain_closed_days, "removed": settings.retain_closed_days,
                     "claims": settings.retain_claims_days}
        per = 1000 / args.n
        rows = [[folder, round(objects * per), round(bytes_ * per), "(none)" if folder == "index" else "forever",
                 f"{retention[folder]} days" if retention.get(folder) else "forever (open work)"]
                for folder, (objects, bytes_) in sorted(sizes.items())]
        total_objects = sum(o for o, _ in sizes.values())
        total_bytes = sum(b for _, b in sizes.values())
        rows.append(["total", round(total_objects * per), round(total_bytes * per), "", ""])
        print(f"\nLedger written per 1,000 uploads ({args.n} uploads, 10 % infected); kept before / after:\n")
        print(table(["folder", "objects", "bytes", "kept before", "kept after"], rows))
        with tempfile.NamedTemporaryFile("w", suffix=".env", delete=False) as env:
            env.write("".join(f"{k}={v}\n" for k, v in bench.env.items()))
        try:
            after = status_requests(bench, env.name)
        finally:
            os.unlink(env.name)
        print(f"\n(status, as shipped, per API: {after})")
        before = replayed_old_status(bench, Runtime.from_env(bench.env))
        print(f"\n`cosguard status` requests for {sizes.get('closed', (0, 0))[0]} closed jobs:\n")
        print(table(["", "ListObjects (GetBucket)", "GetObject", "total"],
                    [["before (closed/ loop, replayed)", before.get("GetBucket", 0), before.get("GetObject", 0),
                      sum(before.values())],
                     ["after (time index, --recent 10)", after.get("GetBucket", 0), after.get("GetObject", 0),
                      sum(after.values())]]))
    set_bytes, claim_bytes = claim_memory(args.claims)
    print(f"\nBackfill: memory for {args.claims:,} handled uploads (tracemalloc):\n")
    print(table(["", "MB"], [["set of ledger names (before)", round(set_bytes / 2 ** 20, 1)],
                             ["ClaimSet, 8 bytes each (after)", round(claim_bytes / 2 ** 20, 1)]]))


if __name__ == "__main__":
    main()
