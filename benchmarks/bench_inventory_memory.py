"""Memory of an inventory-driven backfill over a generated 1,000,000-line COS inventory report:
flat, because the report's CSV(.gz) files are streamed record by record and no claim set is loaded.

Why: `cosguard backfill` over ListObjects first reads the whole `claims/` set (8 bytes a claim,
bulk/claimset.py: 800 MB at 10^8 objects, in one process). `--inventory` holds neither the report
nor the claims: whoever scans reads one ledger record per listed object (bulk/inventory.py).

How: the report (manifest.json, manifest.checksum, `--files` gzip CSV files in COS's layout, rows
shaped as the local COS writes them: URL-encoded keys, quoted ETags) is generated into the
in-memory gateway (infra/memory.py) before measuring; then `Backfill` runs over it in this process
as a DRY RUN (`--dry-run`: every row read, decoded, checked against the skip rules and counted; no
per-object request). A full scan of a million objects would need a million objects in a bucket and
hours of this 2-core machine's CPU: the per-object work a scan adds is the scanner's, not the
listing's, and is bounded by `--workers`. Memory is read at every 100,000 rows: tracemalloc's
current and peak (Python allocations since the run started; the generated report, held by the
gateway before, is not counted) and the process's max RSS (which includes that report).
"""
from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import resource
import sys
import time
import tracemalloc

from _common import header, table
from cosguard.bulk.backfill import Backfill, Options
from cosguard.infra.config import Settings
from cosguard.infra.memory import MemoryGateway
from cosguard.runtime import Runtime

INTAKE, JAIL, REPORTS = "intake-1250000000", "jail-1250000000", "reports-1250000000"
ENV = {"TENCENTCLOUD_SECRETID": "AKIDexample", "TENCENTCLOUD_SECRETKEY": "secret",
       "COSGUARD_REGION": "ap-guangzhou", "COSGUARD_BUCKETS": INTAKE, "COSGUARD_QUARANTINE_BUCKET": JAIL,
       "COSGUARD_CALLBACK_URL": "https://1250000000-abc.ap-guangzhou.tencentscf.com/",
       "COSGUARD_CALLBACK_TOKEN": "memory-callback-secret-0123456789"}


def generate(gateway: MemoryGateway, lines: int, files: int) -> tuple:
    """The report, in COS's layout; (--inventory's location, compressed bytes)."""
    base = "inventory/1250000000/intake/bench"
    per_file, entries = -(-lines // files), []
    for number in range(files):
        text = io.StringIO(newline="")
        writer = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n")
        for i in range(number * per_file, min(lines, (number + 1) * per_file)):
            writer.writerow(["1250000000", "intake", f"data%2F{i // 1000:04d}%2Fobject+{i:07d}.bin", str(1024 + i % 4096),
                             "2026-01-02T03:04:05.000Z", f'"{hashlib.md5(str(i).encode()).hexdigest()}"', "STANDARD"])
        data = gzip.compress(text.getvalue().encode("utf-8"), compresslevel=6, mtime=0)
        key = f"{base}/data/part-{number:04d}.csv.gz"
        gateway.upload(REPORTS, key, data)
        entries.append({"key": key, "size": len(data), "MD5checksum": hashlib.md5(data).hexdigest()})
    manifest = json.dumps({"sourceAppid": "1250000000", "sourceBucket": "intake", "fileFormat": "CSV",
                           "fileSchema": "AppID, Bucket, Key, Size, LastModifiedDate, ETag, StorageClass",
                           "listObjectCount": lines, "files": entries}).encode()
    gateway.upload(REPORTS, f"{base}/20260102/manifest.json", manifest)
    gateway.upload(REPORTS, f"{base}/20260102/manifest.checksum", hashlib.md5(manifest).hexdigest().encode())
    return f"{REPORTS}/{base}/20260102/manifest.json", sum(e["size"] for e in entries)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="rows in the report (default 1,000,000)")
    parser.add_argument("--files", type=int, default=10, help="CSV.gz files it is split into (default 10)")
    parser.add_argument("--every", type=int, default=100_000, help="read memory every this many rows")
    args = parser.parse_args(argv)
    header(f"inventory backfill memory, {args.lines:,}-line report in {args.files} gzip CSV files, dry run, "
           "in-memory gateway")
    gateway = MemoryGateway([INTAKE, JAIL, REPORTS])
    started = time.perf_counter()
    location, size = generate(gateway, args.lines, args.files)
    print(f"report generated in {time.perf_counter() - started:.1f} s ({size / 2 ** 20:.1f} MiB compressed, "
          "held by the gateway)")
    runtime = Runtime(Settings.from_env(ENV), gateway=gateway)  # type: ignore[arg-type]
    rows, next_mark = [], [args.every]

    def on_page(report, marker):
        if report.listed >= next_mark[0]:
            current, peak = tracemalloc.get_traced_memory()
            rows.append([f"{report.listed:,}", marker.get("file"), marker.get("row"), round(current / 2 ** 20, 2),
                         round(peak / 2 ** 20, 2), round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)])
            next_mark[0] += args.every

    tracemalloc.start()
    started = time.perf_counter()
    report = Backfill(runtime, Options(INTAKE, dry_run=True, inventory=location), on_page=on_page).run()
    seconds = time.perf_counter() - started
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert report.complete and report.listed == args.lines and report.counts == {"to_scan": args.lines}, report.as_dict()
    print()
    print(table(["rows read", "file", "record in file", "traced MiB now", "traced MiB peak so far",
                 "max RSS MiB"], rows))
    print()
    print(f"{report.listed:,} rows in {seconds:.1f} s under tracemalloc ({report.listed / seconds:,.0f} rows/s); "
          f"Python memory at the end {current / 2 ** 20:.2f} MiB, peak {peak / 2 ** 20:.2f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
