"""The local COS's requests/s on a fixed mix (PutObject, HeadObject, PutObjectTagging, GetObject,
CopyObject, DeleteObject x2 per round), in one run: before (moto's Flask app answers everything,
`COSGUARD_LOCAL_FASTPATH=0`) and after (the fast path answers the hot object operations from
moto's backend, the default), both with connections kept alive; and moto's app with connections
closed after every answer (werkzeug's behaviour, `COSGUARD_LOCAL_KEEPALIVE=0`).

Why: every test and every benchmark talks to the emulator over HTTP through the SDK; its
requests/s bounds them all.

How: a fresh LocalCos per measurement (the switches are read when it is built), in this process
by default (as the tests and benchmarks run it: client and server share one interpreter), or in a
process of its own with `--server-process` (the server's own capacity, on a core of its own).
`--threads` client threads, each with its own SDK client sharing one `requests` session (pool
sized to the threads, no proxy lookups in the environment: the load generator should spend as
little CPU as it can), each running rounds of the mix on its own keys for `--seconds`.
Measurements alternate between the modes (`--repeats` times) so a change in the machine's load
hits all; the table shows the median of each mode.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from typing import Any, Dict, Iterator, List

from _common import APPID, header, table
from cosguard.local.cos import LocalCos

MIX = ("PutObject", "HeadObject", "PutObjectTagging", "GetObject", "CopyObject", "DeleteObject", "DeleteObject")


def session(pool: int):
    import requests

    s = requests.Session()
    s.trust_env = False   # skip the proxy/netrc environment lookups on every request
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=pool)
    s.mount("http://", adapter)
    return s


# (label, COSGUARD_LOCAL_KEEPALIVE, COSGUARD_LOCAL_FASTPATH)
MODES = (("moto's app, connection closed after each answer (KEEPALIVE=0 FASTPATH=0)", "0", "0"),
         ("before: moto's app, keep-alive (FASTPATH=0)", "1", "0"),
         ("after: fast path, keep-alive (default)", "1", "1"))


@contextlib.contextmanager
def local_cos(bucket: str, keep_alive: str, fast_path: str, separate: bool) -> Iterator[Any]:
    """A started LocalCos holding `bucket`; yields (the SDK's CosConfig for it, its region)."""
    if not separate:
        os.environ["COSGUARD_LOCAL_KEEPALIVE"] = keep_alive
        os.environ["COSGUARD_LOCAL_FASTPATH"] = fast_path
        cos = LocalCos().start()
        os.environ.pop("COSGUARD_LOCAL_KEEPALIVE", None)
        os.environ.pop("COSGUARD_LOCAL_FASTPATH", None)
        try:
            cos.create_bucket(bucket)
            yield cos.client_config(), cos.region
        finally:
            cos.stop()
        return
    from qcloud_cos import CosConfig

    child = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve", bucket, keep_alive,
                              fast_path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        served = json.loads(child.stdout.readline())
        yield CosConfig(Region=served["region"], SecretId=served["secret_id"],
                        SecretKey=served["secret_key"], Scheme="http", IP="127.0.0.1",
                        Port=served["port"]), served["region"]
    finally:
        child.stdin.close()
        child.wait(timeout=30)


def serve(bucket: str, keep_alive: str, fast_path: str) -> None:
    """`--serve`: a LocalCos in this process until stdin closes (for `--server-process`)."""
    os.environ["COSGUARD_LOCAL_KEEPALIVE"] = keep_alive
    os.environ["COSGUARD_LOCAL_FASTPATH"] = fast_path
    cos = LocalCos().start()
    cos.create_bucket(bucket)
    print(json.dumps({"port": cos.port, "region": cos.region, "secret_id": cos.credentials.secret_id,
                      "secret_key": cos.credentials.secret_key}), flush=True)
    sys.stdin.read()
    cos.stop()


def measure(keep_alive: str, fast_path: str, threads: int, seconds: float,
            separate: bool = False) -> Dict[str, float]:
    from qcloud_cos import CosS3Client

    bucket = f"mix{time.time_ns() % 10 ** 8:08d}-{APPID}"
    with local_cos(bucket, keep_alive, fast_path, separate) as (config, region):
        shared = session(threads)
        stop = threading.Event()
        done: List[int] = [0] * threads
        errors: List[str] = []
        body = b"x" * 2048

        def worker(n: int) -> None:
            client = CosS3Client(config, retry=0, session=shared)
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
                        "Bucket": bucket, "Key": key, "Region": region})
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
        return {"requests": sum(done), "seconds": elapsed, "rps": sum(done) / elapsed}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=4, help="client threads (default 4)")
    parser.add_argument("--seconds", type=float, default=8.0, help="per measurement (default 8)")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per mode (default 3)")
    parser.add_argument("--server-process", action="store_true",
                        help="run the LocalCos in a process of its own (default: in this one)")
    parser.add_argument("--serve", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(*args.serve)
        return 0
    where = "its own process" if args.server_process else "the clients' process"
    header(f"local COS requests/s, fixed mix, {args.threads} client threads, server in {where}, "
           f"{args.repeats} × {args.seconds:g} s per mode, modes interleaved")
    results: Dict[str, List[float]] = {label: [] for label, _, _ in MODES}
    for _ in range(args.repeats):
        for label, keep_alive, fast_path in MODES:
            r = measure(keep_alive, fast_path, args.threads, args.seconds, args.server_process)
            results[label].append(r["rps"])
            print(f"  {label}: {r['rps']:.0f} requests/s", file=sys.stderr)
    medians = {label: statistics.median(runs) for label, runs in results.items()}
    close, before = medians[MODES[0][0]], medians[MODES[1][0]]
    print()
    print(table(["local COS", "requests/s (median)", "all runs", "× closed", "× before"], [
        [label, round(medians[label], 1), " / ".join(f"{x:.0f}" for x in results[label]),
         f"{medians[label] / close:.2f}×", f"{medians[label] / before:.2f}×"]
        for label, _, _ in MODES]))
    print()
    print("Mix per round: " + ", ".join(MIX) + " (2 KiB objects); client and server share the CPUs.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
