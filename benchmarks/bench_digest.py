"""What the daily digest and the metrics line add to a reconcile_pending invocation: its time and
the COS + CI requests it makes, with and without the digest, after N uploads settled.

Why: the digest runs inside the reconcile timer's invocation once a day; it must stay a small
fraction of it, whatever the day's traffic (it reads cosguard report's figures: the history
index, open work and quarantine listings, never one read per job).

How: N uploads (1 in 10 EICAR) go through scan_on_upload on the local SCF runtime and their CI
callbacks are applied (a settled day: the index holds N closes, quarantine N/10 copies). Then
reconcile_pending runs on a fresh worker, first without COSGUARD_DIGEST_HOUR, then with it (hour 0:
due) and the webhook a local receiver. Each row: the invocation's wall time as the metrics line
reports it (`duration_ms`, cold start excluded) and the requests the local COS and CI answered
during it. A third run on the same day shows the marker stopping a second digest.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
from typing import Any, Dict, List

from werkzeug.wrappers import Request, Response

from _common import Bench, header, mixed_items, requests_served, table
from cosguard.local.httpserver import ThreadedServer
from cosguard.local.scf import Function

TIMER_EVENT = {"Type": "Timer", "TriggerName": "reconcile"}


class Sink:
    def __init__(self) -> None:
        self.received: List[Dict[str, Any]] = []
        self.server = ThreadedServer(self._app).start()

    def _app(self, environ, start_response):
        self.received.append(json.loads(Request(environ).get_data()))
        return Response("ok")(environ, start_response)


def reconcile(bench: Bench, **env: str) -> Dict[str, Any]:
    logs = io.StringIO()
    function = Function("reconcile_pending", dict(bench.env, **env), log_stream=logs,
                        time_limit_ms=bench.time_limit_ms)
    try:
        before = requests_served(bench.cloud)
        function.invoke(TIMER_EVENT)
        served = requests_served(bench.cloud) - before
    finally:
        function.close()
    lines = [json.loads(line) for line in logs.getvalue().splitlines() if line.startswith("{")]
    [metrics] = [line for line in lines if line["event"] == "metrics"]
    return {"ms": metrics["duration_ms"], "requests": served,
            "digest": any(line["event"] == "digest_sent" for line in lines)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--uploads", type=int, default=1000, help="uploads settled first (default 1000)")
    args = parser.parse_args(argv)
    header("The daily digest's cost inside one reconcile_pending invocation")
    sink = Sink()
    rows = []
    try:
        with Bench(scan_delay=0.01) as bench:
            bench.upload(mixed_items("day/", args.uploads, infected_every=10))
            records = bench.take_records(args.uploads)
            for start in range(0, len(records), 500):
                bench.scan.invoke({"Records": records[start:start + 500]})
            bench.settle(300)
            digest_env = {"COSGUARD_NOTIFY_URL": sink.server.endpoint + "/hook", "COSGUARD_DIGEST_HOUR": "0"}
            for label, env in (("without the digest", {}), ("with the digest (sent)", digest_env),
                               ("with the digest, same day again", digest_env)):
                r = reconcile(bench, **env)
                rows.append([label, r["ms"], r["requests"], "yes" if r["digest"] else "no"])
                print(f"  done: {label}", file=sys.stderr)
    finally:
        sink.server.stop()
    print()
    print(f"{args.uploads} uploads settled (1 in 10 EICAR, moved to quarantine); one reconcile_pending "
          "invocation per row on a fresh worker of the local SCF runtime; no injected latency.")
    print()
    print(table(["run", "invocation ms (metrics line)", "COS + CI requests", "digest sent"], rows))
    if sink.received:
        figures = sink.received[0]["figures"]
        print()
        print("digest figures: " + ", ".join(f"{k} {v}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
