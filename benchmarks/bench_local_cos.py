"""The local COS's requests/s on a fixed mix (PutObject, HeadObject, PutObjectTagging, GetObject,
CopyObject, DeleteObject x2 per round), with connections closed after every answer (werkzeug's
behaviour, `COSGUARD_LOCAL_KEEPALIVE=0`) and kept alive (HTTP/1.1 persistent, the default), in
one run.

Why: every test and every benchmark talks to the emulator over HTTP through the SDK; its
requests/s bounds them all.

How: a fresh LocalCos per mode; `--threads` client threads, each with its own SDK client sharing
one `requests` session (pool sized to the threads), each running rounds of the mix on its own keys
for `--seconds`. Rounds alternate between the modes (`--repeats` times) so a change in the
machine's load hits both; the table shows the median of each mode.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from typing import Dict, List

from _common import APPID, header, table

from cosguard.local.cos import LocalCos

MIX = ("PutObject", "HeadObject", "PutObjectTagging", "GetObject", "CopyObject", "DeleteObject", "DeleteObject")


def session(pool: int):
    import requests

    s = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=pool)
    s.mount("http://", adapter)
    return s


def measure(keep_alive: bool, threads: int, seconds: float) -> Dict[str, float]:
    from qcloud_cos import CosS3Client

    os.environ["COSGUARD_LOCAL_KEEPALIVE"] = "1" if keep_alive else "0"
    bucket = f"mix{time.time_ns() % 10 ** 8:08d}-{APPID}"
    cos = LocalCos().start()
    try:
        cos.create_bucket(bucket)
        shared = session(threads)
        stop = threading.Event()
        done: List[int] = [0] * threads
        errors: List[str] = []
        body = b"x" * 2048

        def worker(n: int) -> None:
            client = CosS3Client(cos.client_config(), retry=0, session=shared)
            i = 0
            try:
                while not stop.is_set():
                    key, copy = f"t{n}/{i}.bin", f"t{n}/{i}.copy"
                    client.put_object(Bucket=bucket, Key=key, Body=body)
                    client.head_object(Bucket=bucket, Key=key)
                    client.put_object_tagging(Bucket=bucket, Key=key,
                                              Tagging={"TagSet": {"Tag": [{"Key": "k", "Value": "v"}]}})
                    client.get_object(Bucket=bucket, Key=key)["Body"].get_raw_stream().read()
                    client.copy_object(Bucket=bucket, Key=copy, CopySource={
                        "Bucket": bucket, "Key": key, "Region": cos.region})
                    client.delete_object(Bucket=bucket, Key=key)
                    client.delete_object(Bucket=bucket, Key=copy)
                    done[n] += len(MIX)
                    i += 1
            except Exception as exc:  # noqa: BLE001 - reported, not hidden
                errors.append(f"{type(exc).__name__}: {exc}")

        workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
        started = time.perf_counter()
        for w in workers:
            w.start()
        time.sleep(seconds)
        stop.set()
        for w in workers:
            w.join()
        elapsed = time.perf_counter() - started
        if errors:
            raise RuntimeError(f"{len(errors)} client errors, first: {errors[0]}")
        counted = sum(v for k, v in cos.counters.snapshot().items() if k not in ("bytes_read", "injected"))
        return {"requests": counted, "seconds": elapsed, "rps": sum(done) / elapsed}
    finally:
        cos.stop()
        os.environ.pop("COSGUARD_LOCAL_KEEPALIVE", None)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=4, help="client threads (default 4)")
    parser.add_argument("--seconds", type=float, default=8.0, help="per measurement (default 8)")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per mode (default 3)")
    args = parser.parse_args(argv)
    header(f"local COS requests/s, fixed mix, {args.threads} client threads, "
           f"{args.repeats} × {args.seconds:g} s per mode, modes interleaved")
    results: Dict[bool, List[float]] = {False: [], True: []}
    for _ in range(args.repeats):
        for keep_alive in (False, True):
            r = measure(keep_alive, args.threads, args.seconds)
            results[keep_alive].append(r["rps"])
            print(f"  {'keep-alive' if keep_alive else 'close     '}: {r['rps']:.0f} requests/s", file=sys.stderr)
    close, alive = statistics.median(results[False]), statistics.median(results[True])
    print()
    print(table(["connections", "requests/s (median)", "all runs", "× close"], [
        ["closed after each answer (COSGUARD_LOCAL_KEEPALIVE=0)", round(close, 1),
         " / ".join(f"{x:.0f}" for x in results[False]), "1.0×"],
        ["kept alive (default)", round(alive, 1), " / ".join(f"{x:.0f}" for x in results[True]),
         f"{alive / close:.2f}×"],
    ]))
    print()
    print("Mix per round: " + ", ".join(MIX) + " (2 KiB objects); client and server share the CPUs.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
