"""Soak: N uploads through the local SCF runtime with faults injected everywhere, one reconcile, then
an audit of every key. Exits 1 on any loss or any object left pending (not part of the pytest suite).

Uploads: ~10 % infected (EICAR, half of them nested in zip-in-tar.gz), odd keys (spaces, `%`, `+`,
non-ASCII, `/`-suffixed with content), keys near COS's 850-byte limit, uploads carrying ~1.9 KB of
their own metadata (near COS's 2 KB), appends to appendable objects, overwrites mid-scan (clean <->
infected) and re-uploads of identical bytes. Faults while uploading: CI 5xx and throttling, dropped and duplicated callbacks,
COS 5xx and throttling, function instances killed mid-invocation (SIGKILL, both functions).
Then faults stop, the leases of dead holders run out, one reconcile runs, and every key is audited
against what its last write holds:
  - infected last write: gone from the intake bucket (quarantined);
  - clean last write: still there with exactly those bytes, tagged `cosguard-status=clean`.

    python benchmarks/soak.py            # 1,000 uploads
    python benchmarks/soak.py -n 300     # a quicker run
    python benchmarks/soak.py -n 3000 --report   # then `cosguard report` over it: time and COS requests
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from typing import Dict, List, Optional, Tuple

from qcloud_cos.cos_exception import CosClientError, CosServiceError

from _common import header
from cosguard.bulk.backfill import Backfill, Options
from cosguard.local.samples import clean_text, eicar, eicar_zip_in_tar_gz
from cosguard.local.scf import LocalScf
from cosguard.local.stack import LocalCloud
from cosguard.runtime import Runtime

SECRET = "soak-callback-secret-0123456789ab"
ODD = ["with space {i}.txt", "percent%20{i}.txt", "plus+{i}.txt", "中文 {i}.txt", "dir{i}/with-content/"]


NESTED = eicar_zip_in_tar_gz()  # built once: archives carry timestamps
INFECTED = (eicar(), NESTED)


def long_key(i: int) -> str:
    """A legal key just under COS's 850-byte limit (its quarantine key would not fit)."""
    stem = f"soak/long/{i:05d}/"
    return stem + "k" * (840 - len(stem))


def big_metadata(i: int) -> Dict[str, str]:
    """~1.9 KB of the uploader's own metadata: legal, but no room left for cosguard's manifest."""
    return {f"x-cos-meta-pad{n}": f"{i:05d}" + "m" * 180 for n in range(10)}


Upload = Tuple[str, bytes, Dict[str, str], bool]
SPLIT = 30  # an appended upload's first append: EICAR's first 30 bytes are clean, the rest completes it


def plan(n: int, rng: random.Random) -> List[Upload]:
    """(key, body, metadata, appended) per upload, in upload order; later entries for a key overwrite
    earlier ones. An appended body is written as two appends (the first part clean on its own)."""
    uploads: List[Upload] = []
    for i in range(n):
        if i % 7 == 0:
            key = ODD[i % len(ODD)].format(i=i)
        elif i % 13 == 5:
            key = long_key(i)
        else:
            key = f"soak/{i // 100:02d}/file-{i:05d}.bin"
        if i % 10 == 3:
            body = eicar() if i % 20 == 3 else NESTED
        else:
            body = clean_text() + f" #{i} {rng.random()}".encode()
        appended = i % 17 == 9 or i % 40 == 3
        if appended:
            key = f"soak/append/{i:05d}.log"
        uploads.append((key, body, big_metadata(i) if i % 11 == 3 else {}, appended))
    return uploads


def put(cos, bucket: str, key: str, body: bytes, metadata: Optional[Dict[str, str]] = None) -> None:
    """The uploader retries its own PUT through COS's injected 5xx/throttling."""
    for attempt in range(20):
        try:
            cos.put_object(Bucket=bucket, Key=key, Body=body, Metadata=metadata or {})
            return
        except (CosServiceError, CosClientError):
            time.sleep(0.05 * (attempt + 1))
    raise RuntimeError(f"could not upload {key}")


def append(cos, bucket: str, key: str, body: bytes) -> None:
    """Two appends: the object exists (and is scanned) with its first part alone, then is completed.
    An injected fault refuses a request before it is carried out, so the uploader retries it as is."""
    for position, part in ((0, body[:SPLIT]), (SPLIT, body[SPLIT:])):
        for attempt in range(20):
            try:
                cos.append_object(Bucket=bucket, Key=key, Position=position, Data=part)
                break
            except (CosServiceError, CosClientError):
                time.sleep(0.05 * (attempt + 1))
        else:
            raise RuntimeError(f"could not append to {key}")


def audit(cos, intake: str, last: Dict[str, bytes]) -> Counter:
    figures: Counter = Counter()
    for key, body in last.items():
        infected = body in INFECTED
        exists = cos.object_exists(Bucket=intake, Key=key)
        if infected:
            figures["infected: quarantined" if not exists else "infected: LEFT IN PLACE"] += 1
            continue
        if not exists:
            figures["clean: LOST"] += 1
            print(f"  lost: {key!r}")
            continue
        stored = cos.get_object(Bucket=intake, Key=key)["Body"].get_raw_stream().read()
        tags = {t["Key"]: t["Value"] for t in
                (cos.get_object_tagging(Bucket=intake, Key=key).get("TagSet") or {}).get("Tag") or []}
        if stored != body:
            figures["clean: BYTES CHANGED"] += 1
        elif tags.get("cosguard-status") == "clean":
            figures["clean: tagged clean"] += 1
        else:
            figures[f"clean: LEFT {tags.get('cosguard-status') or 'untagged'}".upper()] += 1
            print(f"  left {tags.get('cosguard-status')}: {key!r}")
    return figures


def measure_report(cloud: LocalCloud, runtime: Runtime, html: Optional[str]) -> str:
    """`cosguard report --html` over the soak's ledger: collect the figures and render the page,
    timed, with the COS requests it made (the local COS's counters, before and after)."""
    from cosguard.bulk.figures import collect_figures
    from cosguard.ui.report_html import render
    before = cloud.cos.counters.snapshot()
    started = time.monotonic()
    figures = collect_figures(runtime.settings, runtime.gateway, runtime.sweeper.ledgers(),
                              runtime.scanner.sealer, since=7 * 86400, workers=runtime.settings.max_workers)
    page = render(figures)
    seconds = time.monotonic() - started
    made = {k: v - before.get(k, 0) for k, v in cloud.cos.counters.snapshot().items()
            if isinstance(v, int) and v != before.get(k, 0) and k != "bytes_read"}
    if html:
        with open(html, "w", encoding="utf-8") as out:
            out.write(page)
    totals = figures.totals()
    return (f"report: {seconds:.2f} s for {sum(totals.values())} closes ({totals}), "
            f"{len(figures.quarantine)} quarantined, {figures.pending_total} pending; page {len(page):,} bytes; "
            f"COS requests {sum(made.values())} {dict(sorted(made.items()))}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--uploads", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--kill-rate", type=float, default=0.05, help="instances killed mid-invocation")
    parser.add_argument("--ci-error-rate", type=float, default=0.05)
    parser.add_argument("--ci-throttle-rate", type=float, default=0.05)
    parser.add_argument("--cos-error-rate", type=float, default=0.01)
    parser.add_argument("--cos-throttle-rate", type=float, default=0.01)
    parser.add_argument("--drop-callbacks", type=float, default=0.1)
    parser.add_argument("--duplicate-callbacks", type=float, default=0.1)
    parser.add_argument("--overwrites", type=float, default=0.05, help="share of keys overwritten mid-scan")
    parser.add_argument("--reuploads", type=float, default=0.03, help="share re-uploaded with identical bytes")
    parser.add_argument("--time-limit-ms", type=int, default=5000, help="function timeout (lease bound)")
    parser.add_argument("--append-events", action="store_true",
                        help="the local COS publishes cos:ObjectCreated:Append (off, as SCF's trigger doc "
                             "583/9707 lists none: then a backfill after the reconcile finds the appends)")
    parser.add_argument("--report", action="store_true",
                        help="after the audit, collect the operator report's figures and render its page "
                             "(what `cosguard report --html` does) and print its time and COS requests")
    parser.add_argument("--report-html", metavar="FILE", help="with --report: also write the page here")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    header(f"Soak: {args.uploads} uploads with faults, one reconcile, audit of every key")
    intake, jail = f"soak{rng.randrange(16 ** 6):06x}-1250000000", f"jail{rng.randrange(16 ** 6):06x}-1250000000"
    cloud = LocalCloud([intake, jail], scan_delay=0.05, append_events=args.append_events).start()
    env = cloud.function_env(COSGUARD_CALLBACK_TOKEN=SECRET, COSGUARD_QUARANTINE_BUCKET=jail,
                             COSGUARD_BUCKETS=intake, COSGUARD_LOG_LEVEL="WARNING")
    scf = LocalScf(cloud, env, buckets=[intake], retry_delays=(1.0, 2.0), time_limit_ms=args.time_limit_ms,
                   concurrency=2).start()
    cos = cloud.client("cos")
    started = time.monotonic()
    try:
        cloud.cos.faults.seed(args.seed)
        for function in (scf.scan, scf.callback):
            function.seed_faults(args.seed)
            function.kill_rate = args.kill_rate
        ci, cf = cloud.ci.faults, cloud.cos.faults
        ci.error_rate, ci.throttle_rate = args.ci_error_rate, args.ci_throttle_rate
        ci.drop_callback_rate, ci.duplicate_callback_rate = args.drop_callbacks, args.duplicate_callbacks
        cf.error_rate, cf.throttle_rate = args.cos_error_rate, args.cos_throttle_rate
        last: Dict[str, bytes] = {}
        counts: Counter = Counter()
        uploads = plan(args.uploads, rng)
        for index, (key, body, metadata, appended) in enumerate(uploads):
            if appended:
                append(cos, intake, key, body)
                counts["appended uploads"] += 1
            else:
                put(cos, intake, key, body, metadata)
            last[key] = body
            counts["uploads"] += 1
            if rng.random() < args.overwrites:  # a new write while the first one is being scanned
                time.sleep(rng.uniform(0, 0.2))
                body = clean_text() + f" overwrite {index}".encode() if body in INFECTED else eicar()
                put(cos, intake, key, body)
                last[key] = body
                counts["overwrites mid-scan"] += 1
        for key in rng.sample(sorted(last), int(len(last) * args.reuploads)):
            put(cos, intake, key, last[key])  # identical bytes, a new write
            counts["re-uploads of identical bytes"] += 1
        counts["uploads"] += counts["overwrites mid-scan"] + counts["re-uploads of identical bytes"]
        scf.wait_idle(600)
        upload_seconds = time.monotonic() - started
        kills = scf.scan.kills + scf.callback.kills
        dead_letters = len(scf.invoker.failed)
        for function in (scf.scan, scf.callback):
            function.kill_rate = 0.0
        ci.error_rate = ci.throttle_rate = ci.drop_callback_rate = ci.duplicate_callback_rate = 0.0
        cf.error_rate = cf.throttle_rate = 0.0
        time.sleep(args.time_limit_ms / 1000.0 + 0.5)  # every lease a dead holder left has ended
        runtime = Runtime.from_env(scf.env)
        report = runtime.sweeper.sweep()  # the one reconcile
        scf.wait_idle(120)
        if not args.append_events:  # appends fired no event: what docs/operations.md has operators schedule
            counts["backfill submitted"] = Backfill(runtime, Options(intake)).run().counts.get("submitted", 0)
            scf.wait_idle(120)
        figures = audit(cos, intake, last)
        measured = measure_report(cloud, runtime, args.report_html) if args.report else None
    finally:
        scf.stop()
        cloud.stop()
    bad = sum(v for k, v in figures.items() if any(w in k for w in ("LEFT", "LOST", "CHANGED")))
    print(f"keys audited: {len(last)}; writes: {dict(counts)}")
    print(f"faults: instances killed mid-invocation {kills}; SCF dead letters {dead_letters}; "
          f"CI callbacks {cloud.ci.counters.snapshot()}")
    print(f"reconcile: applied {report.applied}, resubmitted {report.resubmitted}, pending {report.pending}, "
          f"unresolved {len(report.unresolved)}")
    for name, value in sorted(figures.items()):
        print(f"  {name:32} {value}")
    print(f"seconds: uploads+settling {upload_seconds:.1f}, total {time.monotonic() - started:.1f}")
    if measured:
        print(measured)
    print("RESULT:", "FAIL" if bad else "OK", f"({bad} keys lost or left pending)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
