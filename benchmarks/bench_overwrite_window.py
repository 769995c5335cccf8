"""The overwrite window on unversioned buckets: the time between cosguard's re-check HEAD and its
DELETE taking effect, with injected COS latency.

Why: COS's DELETE Object takes no condition (doc 436/7743), so a write that lands inside this
window is deleted with the infected upload it replaces (cosguard then reports it by name, see
src/cosguard/domain/removals.py). The window is what an uploader racing a verdict must hit.

How: a local cloud whose COS ignores a DELETE's If-Match (COS's documented semantics); cosguard's
own `Actions.delete` (the `_delete_original` path every quarantine, delete and promotion takes) on
N objects per latency, its gateway's HEAD and DELETE timed at the client: the window opens when the
re-check HEAD is sent (a write landing after COS read the object escapes the check) and closes
when the DELETE's answer arrives (COS has applied it by then). Injected latency delays every
request on the server by that many milliseconds (`Faults.latency_ms`), as a far region would.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Dict, List

from _common import CALLBACK_TOKEN, header, median, percentile, table
from cosguard.domain.actions import Actions
from cosguard.infra.cloud import CloudGateway
from cosguard.infra.config import Settings
from cosguard.local.stack import LocalCloud

INTAKE = "intake-1250000000"


def measure(cloud: LocalCloud, actions: Actions, gateway: CloudGateway, latency_ms: float, count: int
            ) -> List[float]:
    """Window (ms) of `count` removals with `latency_ms` injected on every COS request."""
    cos = cloud.client("cos")
    keys = [f"window/{latency_ms:g}/{i:03d}.bin" for i in range(count)]
    for key in keys:
        cos.put_object(Bucket=INTAKE, Key=key, Body=b"x" * 1024)
    infos = [gateway.head(INTAKE, key) for key in keys]
    marks: Dict[str, float] = {}
    head, delete = gateway.head, gateway.delete

    def timed_head(bucket, key, version_id=None):
        marks["head_sent"] = time.perf_counter()
        return head(bucket, key, version_id)

    def timed_delete(*args, **kwargs):
        answer = delete(*args, **kwargs)
        marks["delete_done"] = time.perf_counter()
        return answer

    gateway.head, gateway.delete = timed_head, timed_delete
    cloud.cos.faults.latency_ms = latency_ms
    windows = []
    try:
        for info in infos:
            actions.delete(info)
            windows.append((marks["delete_done"] - marks["head_sent"]) * 1000.0)
    finally:
        cloud.cos.faults.latency_ms = 0.0
        gateway.head, gateway.delete = head, delete
    return windows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=30, help="removals per latency (default 30)")
    parser.add_argument("--latency", type=float, action="append", default=[],
                        help="injected latency in ms (repeatable; default 0, 10, 50, 100)")
    args = parser.parse_args(argv)
    latencies = args.latency or [0.0, 10.0, 50.0, 100.0]
    header("overwrite window: re-check HEAD sent → DELETE answered (unversioned bucket)")
    with LocalCloud([INTAKE], delete_honours_if_match=False) as cloud:
        settings = Settings.from_env(cloud.function_env(COSGUARD_CALLBACK_TOKEN=CALLBACK_TOKEN),
                                     require_callback_url=False)
        gateway = CloudGateway(settings)
        actions = Actions(settings, gateway)
        rows = []
        for latency in latencies:
            windows = measure(cloud, actions, gateway, latency, args.count)
            rows.append((f"{latency:g}", len(windows), round(median(windows), 1),
                         round(percentile(windows, 95), 1), round(max(windows), 1)))
    print(table(["injected latency ms", "removals", "window median ms", "p95 ms", "max ms"], rows))
    print("# a write landing inside the window is deleted with the infected upload and reported by name;"
          " versioned intake buckets have no window")
    return 0


if __name__ == "__main__":
    sys.exit(main())
