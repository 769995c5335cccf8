"""Backfill throughput (objects/s) with 20 ms injected CI latency, against a serial loop of SDK
`ci_auditing_virus_submit` calls in the same run.

Why: a backfill of a large bucket is bounded by round trips. A serial loop pays CI's latency once
per object; `cosguard backfill` overlaps objects across workers, even though each object costs it
more requests (HEAD, the ledger's claim, the submission, the job entry, the settled claim, the
pending tag: five COS requests and one CI request). A re-run, where every object is already
claimed, costs listings only.

How: one LocalCloud on loopback, CI answering every API request 20 ms late
(`cloud.ci.faults.latency_ms = 20`), CI's callbacks dropped so only submission is measured. Each
measurement gets its own prefix of N fresh objects, written straight into the emulator's store.
The serial loop runs in this process; `cosguard backfill` runs as the operator would, in its own
process (`--env-file`, `--json`): its objects/s is its own report (listing included, process start
excluded). The local COS answers in this process, so the emulator's CPU bounds the backfill figures:
treat them as a floor for a real bucket, not a forecast.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import time

from _common import APPID, CALLBACK_TOKEN, header, table

from cosguard.local.samples import clean_text
from cosguard.local.stack import LocalCloud

CI_LATENCY_MS = 20


def seed(cloud: LocalCloud, bucket: str, prefix: str, count: int) -> None:
    backend, name = cloud.cos.moto_backend(), cloud.cos.names.to_moto(bucket)
    for i in range(count):
        backend.put_object(name, f"{prefix}{i:06d}.txt", clean_text() + f"#{i}\n".encode(),
                           disable_notification=True)


def serial_submits(cloud: LocalCloud, bucket: str, prefix: str, count: int) -> float:
    """The naive loop: one SDK submit after another, nothing else. Returns seconds."""
    ci = cloud.client("ci")
    started = time.perf_counter()
    for i in range(count):
        ci.ci_auditing_virus_submit(Bucket=bucket, Key=f"{prefix}{i:06d}.txt")
    return time.perf_counter() - started


def backfill(env_file: str, bucket: str, prefix: str, *extra: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "cosguard.cli", "backfill", "--env-file", env_file,
                           "--bucket", bucket, "--prefix", prefix, "--json", *extra],
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"cosguard backfill exited {done.returncode}: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=1000, help="objects per measurement (default 1000)")
    parser.add_argument("--workers", default="8,32", help="comma list of --workers values (default 8,32)")
    args = parser.parse_args(argv)
    n, workers = args.objects, [int(w) for w in args.workers.split(",") if w]
    header(f"backfill throughput, {n} objects, {CI_LATENCY_MS} ms injected CI latency")

    intake, jail = f"intake{time.time_ns() % 10 ** 8:08d}-{APPID}", f"jail{time.time_ns() % 10 ** 8:08d}-{APPID}"
    cloud = LocalCloud([intake, jail], scan_delay=0.05).start()
    try:
        cloud.ci.faults.latency_ms = CI_LATENCY_MS
        cloud.ci.faults.drop_callback_rate = 1.0
        env = cloud.function_env(COSGUARD_BUCKETS=intake, COSGUARD_QUARANTINE_BUCKET=jail,
                                 COSGUARD_CALLBACK_TOKEN=CALLBACK_TOKEN)
        env_file = pathlib.Path(tempfile.mkdtemp()) / "bench.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()), "utf-8")

        rows = []
        seed(cloud, intake, "serial/", n)
        serial_seconds = serial_submits(cloud, intake, "serial/", n)
        serial_rate = n / serial_seconds
        rows.append(["serial SDK submit loop", 1, n, round(serial_seconds, 2), round(serial_rate, 1), "1.0×"])
        for w in workers:
            prefix = f"w{w}/"
            seed(cloud, intake, prefix, n)
            dry = backfill(str(env_file), intake, prefix, "--dry-run")
            rows.append(["cosguard backfill --dry-run (no submit)", w, n, dry["seconds"], dry["objects_per_second"],
                         f"{dry['objects_per_second'] / serial_rate:.1f}×"])
            report = backfill(str(env_file), intake, prefix, "--workers", str(w))
            assert report["counts"] == {"submitted": n}, report["counts"]
            rows.append(["cosguard backfill", w, n, report["seconds"], report["objects_per_second"],
                         f"{report['objects_per_second'] / serial_rate:.1f}×"])
            again = backfill(str(env_file), intake, prefix, "--workers", str(w))
            assert again["counts"] == {"already_scanned": n}, again["counts"]
            rows.append(["cosguard backfill, re-run (all claimed, no submit)", w, n, again["seconds"],
                         again["objects_per_second"], f"{again['objects_per_second'] / serial_rate:.1f}×"])
        print()
        print(table(["run", "workers", "objects", "seconds", "objects/s", "× serial"], rows))
        print()
        print(f"CI jobs created: {len(cloud.ci.backend.jobs):,} (serial loop and backfill; no object twice "
              f"within a prefix). Backfill per object: HEAD, claim PUT, submit, job PUT, claim PUT, tag PUT.")
    finally:
        cloud.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
