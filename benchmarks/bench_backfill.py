"""Backfill throughput (objects/s) against a serial loop of SDK `ci_auditing_virus_submit` calls,
in the same run, with 0, 20 and 50 ms injected on *every* COS and CI request.

Why: a backfill of a large bucket is bounded by round trips, not CPU. A serial loop pays one
round trip per object; `cosguard backfill` pays six (HEAD, the ledger's create-only claim, the
handled-record check, the submission, the pending tag, the job entry) but keeps `--workers` objects
in flight (default 64). A re-run, where every object is already claimed, costs listings only.
Each row also prints the CPU spent per object by the backfill process and by the emulator, and how
busy that kept the machine: near 100%, CPU (not the injected latency) is what bounds the run.

Requests per object: every COS and CI request the backfill row made (the emulator's counters),
÷ objects. The inventory row (`--inventory`, when this checkout has it) runs the same objects'
fresh copy from a COS inventory report made on the spot: no claim set, one ledger read per
listed object instead (a handled object then costs that read only, no HEAD).

How: one LocalCloud on loopback; `cloud.cos.faults.latency_ms` and `cloud.ci.faults.latency_ms`
set to the row's latency (each request waits that long before it is answered); CI's callbacks
dropped so only submission is measured. Each row gets its own prefix of N fresh objects, written
straight into the emulator's store. The serial loop runs in this process; `cosguard backfill`
runs as the operator would, in its own process (`--env-file`, `--json`, default settings): its
objects/s is its own report (listing included, process start excluded). The fan-out row hands
batches of 100 synthetic records to scan_on_upload on the local SCF runtime (`--instances` worker
processes, SCF's async queue) and is timed until every object has its CI job. The inventory
fan-out row makes a report of 8 data files first (untimed) and sends one invocation per file: each
worker reads its file (MD5 checked) and scans its rows. The local COS and CI
answer in this process, on the same 2 CPUs as the backfill: at 0 ms the emulator's CPU is the
limit, so that row is a floor for a real bucket, not a forecast.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

from _common import APPID, CALLBACK_TOKEN, header, table
from cosguard.local.samples import clean_text
from cosguard.local.stack import LocalCloud

LATENCIES_MS = (0, 20, 50)
CPUS = os.cpu_count() or 1


def cpu_seconds(who: int) -> float:
    """User + system CPU of this process (every thread: the emulator) or of its finished children."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


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


def requests(cloud: LocalCloud) -> dict:
    counts = {f"cos:{k}": v for k, v in cloud.cos.counters.snapshot().items() if k not in ("bytes_read", "injected")}
    counts.update({f"ci:{k}": v for k, v in cloud.ci.counters.snapshot().items() if k not in ("bytes_read", "injected")})
    return counts


def per_object(after: dict, before: dict, n: int) -> tuple:
    """(requests per object, the breakdown per API, per object) between two `requests()` snapshots."""
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)}
    return (round(sum(delta.values()) / n, 2),
            ", ".join(f"{k} {v / n:.2f}" for k, v in sorted(delta.items(), key=lambda kv: -kv[1]) if v / n >= 0.01))


def inventory_report(cloud: LocalCloud, bucket: str, prefix: str, rows_per_file: int = 1000) -> str:
    """A COS inventory report of `prefix`, run now; --inventory's <bucket>/<manifest key>."""
    reports = f"reports-{APPID}"
    if not cloud.cos.bucket_exists(reports):
        cloud.cos.create_bucket(reports)
    cloud.cos.inventories.dialect.rows_per_file = rows_per_file
    cloud.client("cos").put_bucket_inventory(Bucket=bucket, Id="bench", InventoryConfiguration={
        "Destination": {"COSBucketDestination": {"Bucket": f"qcs::cos:{cloud.cos.region}::{reports}", "Format": "CSV"}},
        "IsEnabled": "true", "IncludedObjectVersions": "Current", "Schedule": {"Frequency": "Daily"},
        "Filter": {"Prefix": prefix}, "OptionalFields": {"Field": ["Size", "LastModifiedDate", "ETag"]}})
    return f"{reports}/{cloud.cos.run_inventory(bucket, 'bench')}"


def fan_out(cloud: LocalCloud, env: dict, bucket: str, prefix: str, count: int, instances: int,
            inventory: bool = False) -> dict:
    """Backfill --fan-out onto the local SCF runtime: timed until every object has a CI job. With
    `inventory`, from a report of 8 data files made beforehand (untimed): one invocation per file."""
    from cosguard.bulk.backfill import Backfill, Options
    from cosguard.bulk.invoke import LocalInvoker
    from cosguard.local.scf import LocalScf
    from cosguard.runtime import Runtime

    scf = LocalScf(cloud, env, buckets=[], concurrency=instances, time_limit_ms=600_000).start()
    try:
        runtime = Runtime.from_env(env, require_callback_url=False)
        location = inventory_report(cloud, bucket, prefix, max(1, count // 8)) if inventory else None
        jobs_before = len(cloud.ci.backend.jobs)
        started = time.perf_counter()
        report = Backfill(runtime, Options(bucket, "" if inventory else prefix, inventory=location,
                                           invoker=LocalInvoker(scf.invoker.enqueue), batch_size=100)).run()
        scf.invoker.wait_idle(600)
        seconds = time.perf_counter() - started
        jobs = len(cloud.ci.backend.jobs) - jobs_before
        sent = {"files_sent": 8} if inventory else {"sent": count}
        assert report.counts == sent and jobs == count and not scf.invoker.failed, (report.counts, jobs)
        return {"seconds": seconds, "invocations": report.invocations}
    finally:
        scf.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=2000, help="objects per measurement (default 2000)")
    parser.add_argument("--latencies", type=float, nargs="+", default=list(LATENCIES_MS),
                        help="ms injected on every COS and CI request (default 0 20 50)")
    parser.add_argument("--workers", type=int, help="--workers for cosguard backfill (default: its default)")
    parser.add_argument("--instances", type=int, nargs="*", default=[1, 2, 4],
                        help="scan_on_upload instances for the fan-out rows, at the last latency (default 1 2 4; none: no row)")
    parser.add_argument("--no-inventory-fan-out", dest="inventory_fan_out", action="store_false",
                        help="skip the --inventory --fan-out rows (one invocation per data file of 8)")
    parser.add_argument("--rerun", action="store_true", help="also time a re-run (all claimed)")
    args = parser.parse_args(argv)
    n = args.objects
    header(f"backfill throughput, {n} objects, {', '.join(f'{x:g}' for x in args.latencies)} ms injected on "
           f"every COS and CI request")

    intake, jail = f"intake{time.time_ns() % 10 ** 8:08d}-{APPID}", f"jail{time.time_ns() % 10 ** 8:08d}-{APPID}"
    cloud = LocalCloud([intake, jail], scan_delay=0.05).start()
    extra = ["--workers", str(args.workers)] if args.workers else []
    try:
        cloud.ci.faults.drop_callback_rate = 1.0
        env = cloud.function_env(COSGUARD_BUCKETS=intake, COSGUARD_QUARANTINE_BUCKET=jail,
                                 COSGUARD_CALLBACK_TOKEN=CALLBACK_TOKEN)
        env_file = pathlib.Path(tempfile.mkdtemp()) / "bench.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()), "utf-8")

        rows, backfill_rates, inventory_rates, breakdowns = [], {}, {}, []
        has_inventory = hasattr(cloud.cos, "run_inventory")
        for ms in args.latencies:
            tag = f"{ms:g}ms"
            seed(cloud, intake, f"serial{tag}/", n)
            seed(cloud, intake, f"backfill{tag}/", n)
            cloud.ci.backend.wait_idle(300)
            cloud.cos.faults.latency_ms = cloud.ci.faults.latency_ms = ms
            try:
                before = cpu_seconds(resource.RUSAGE_SELF)
                seconds = serial_submits(cloud, intake, f"serial{tag}/", n)
                serial_rate = n / seconds
                cloud.ci.backend.wait_idle(300)   # the loop's scans must not share the backfill's CPU
                rows.append([f"{ms:g} ms", "serial SDK submit loop", n, round(seconds, 2), round(serial_rate, 1),
                             "1.0×", "1.0", "-", round((cpu_seconds(resource.RUSAGE_SELF) - before) * 1000 / n, 1),
                             f"{(cpu_seconds(resource.RUSAGE_SELF) - before) / seconds / CPUS:.0%}"])
                before = cpu_seconds(resource.RUSAGE_SELF), cpu_seconds(resource.RUSAGE_CHILDREN)
                counted = requests(cloud)
                started = time.perf_counter()
                report = backfill(str(env_file), intake, f"backfill{tag}/", *extra)
                wall = time.perf_counter() - started
                cloud.ci.backend.wait_idle(300)   # its scans are the emulator's work too
                own = cpu_seconds(resource.RUSAGE_CHILDREN) - before[1]
                emulator = cpu_seconds(resource.RUSAGE_SELF) - before[0]
                assert report["counts"] == {"submitted": n}, report["counts"]
                backfill_rates[ms] = report["objects_per_second"]
                per, breakdown = per_object(requests(cloud), counted, n)
                breakdowns.append(f"{ms:g} ms, backfill: {breakdown}")
                rows.append([f"{ms:g} ms", f"cosguard backfill{' --workers ' + str(args.workers) if extra else ''}",
                             n, report["seconds"], report["objects_per_second"],
                             f"{report['objects_per_second'] / serial_rate:.1f}×", per, round(own * 1000 / n, 1),
                             round(emulator * 1000 / n, 1), f"{(own + emulator) / wall / CPUS:.0%}"])
                if has_inventory:
                    seed(cloud, intake, f"inventory{tag}/", n)
                    cloud.ci.backend.wait_idle(300)
                    location = inventory_report(cloud, intake, f"inventory{tag}/")
                    before = cpu_seconds(resource.RUSAGE_SELF), cpu_seconds(resource.RUSAGE_CHILDREN)
                    counted = requests(cloud)
                    started = time.perf_counter()
                    report = backfill(str(env_file), intake, "", "--inventory", location, *extra)
                    wall = time.perf_counter() - started
                    cloud.ci.backend.wait_idle(300)
                    own = cpu_seconds(resource.RUSAGE_CHILDREN) - before[1]
                    emulator = cpu_seconds(resource.RUSAGE_SELF) - before[0]
                    assert report["counts"] == {"submitted": n}, report["counts"]
                    inventory_rates[ms] = report["objects_per_second"]
                    per, breakdown = per_object(requests(cloud), counted, n)
                    breakdowns.append(f"{ms:g} ms, backfill --inventory: {breakdown}")
                    rows.append([f"{ms:g} ms", "cosguard backfill --inventory", n, report["seconds"],
                                 report["objects_per_second"], f"{report['objects_per_second'] / serial_rate:.1f}×",
                                 per, round(own * 1000 / n, 1), round(emulator * 1000 / n, 1),
                                 f"{(own + emulator) / wall / CPUS:.0%}"])
                if args.rerun:
                    counted = requests(cloud)
                    again = backfill(str(env_file), intake, f"backfill{tag}/", *extra)
                    assert again["counts"] == {"already_scanned": n}, again["counts"]
                    rows.append([f"{ms:g} ms", "cosguard backfill, re-run (all claimed)", n, again["seconds"],
                                 again["objects_per_second"], f"{again['objects_per_second'] / serial_rate:.1f}×",
                                 per_object(requests(cloud), counted, n)[0], "-", "-", "-"])
                for instances in (args.instances if ms == args.latencies[-1] else []):
                    seed(cloud, intake, f"fanout{instances}x{tag}/", n)
                    cloud.ci.backend.wait_idle(300)
                    r = fan_out(cloud, env, intake, f"fanout{instances}x{tag}/", n, instances)
                    rate = n / r["seconds"]
                    rows.append([f"{ms:g} ms", f"cosguard backfill --fan-out, {instances} scan_on_upload "
                                 f"instance{'s' if instances > 1 else ''} ({r['invocations']} invocations)", n,
                                 round(r["seconds"], 2), round(rate, 1), f"{rate / serial_rate:.1f}×", "-", "-", "-", "-"])
                    if has_inventory and args.inventory_fan_out:   # workers read the report's files
                        seed(cloud, intake, f"invfan{instances}x{tag}/", n)
                        r = fan_out(cloud, env, intake, f"invfan{instances}x{tag}/", n, instances, inventory=True)
                        rate = n / r["seconds"]
                        rows.append([f"{ms:g} ms", f"cosguard backfill --inventory --fan-out, {instances} "
                                     f"instance{'s' if instances > 1 else ''} ({r['invocations']} files)", n,
                                     round(r["seconds"], 2), round(rate, 1), f"{rate / serial_rate:.1f}×",
                                     "-", "-", "-", "-"])
            finally:
                cloud.cos.faults.latency_ms = cloud.ci.faults.latency_ms = 0
            print(f"  done: {ms:g} ms: {rows[-3:]}", file=sys.stderr)
        print()
        print(table(["injected latency (COS and CI)", "run", "objects", "seconds", "objects/s", "× serial",
                     "requests/object", "backfill CPU ms/object", "emulator CPU ms/object", f"CPU busy (of {CPUS})"], rows))
        print()
        lowest = min(backfill_rates)
        print("Latency hidden (backfill objects/s at each latency ÷ at the lowest, "
              f"{lowest:g} ms; 1.0 = the injected round trips cost nothing): "
              + ", ".join(f"{ms:g} ms {rate / backfill_rates[lowest]:.2f}" for ms, rate in backfill_rates.items()))
        if inventory_rates:
            print("Latency hidden, backfill --inventory: " + ", ".join(
                f"{ms:g} ms {rate / inventory_rates[lowest]:.2f}" for ms, rate in inventory_rates.items()))
        print("Requests per object, by API: " + "; ".join(breakdowns))
        print(f"CI jobs created: {len(cloud.ci.backend.jobs):,} (no object twice within a prefix). Backfill per "
              "object: HEAD, claim PUT (create-only), handled-record GET, submit, tag PUT, job PUT.")
        print("CPU columns: the backfill process's own CPU (process start included) and this process's, which is "
              "the emulator (local COS and CI, its scans included; for the serial row also the SDK loop). "
              "Near 100% busy, the machine's CPU, not the injected latency, bounds the run.")
    finally:
        cloud.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
