"""cosguard deployed on the local cloud for end-to-end attacks: the functions loaded from functions/
as SCF loads them, CI calling the callback function's URL, driven over HTTP through the SDK.

The adversarial suites build their stacks on `DeployedStack` and their fixtures on `stack_factory`.
"""
from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Callable, Dict, Iterator, List, Optional

from cosguard.infra.memory import ManualClock
from cosguard.local.function_url import FunctionUrlServer
from cosguard.local.loader import load_handler
from cosguard.local.stack import LocalCloud
from helpers import CALLBACK_SECRET, Context, settle_ci, unique_bucket, use_clock


def forget_developer_keys() -> None:
    """A developer's real keys must never reach the local cloud."""
    for name in [n for n in os.environ if n.startswith(("TENCENTCLOUD_", "COSGUARD_"))]:
        del os.environ[name]


class NotificationSink:
    """A webhook that records what cosguard notifies."""

    def __init__(self) -> None:
        received: List[Dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append(json.loads(body or b"{}"))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.received = received
        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


class DeployedStack:
    """`sources` intake buckets; quarantine and ledger in a private `jail` bucket, or (jail=False)
    in the intake bucket under `quarantine/` and `.cosguard/`, where uploaders can write.
    `notify=True` points COSGUARD_NOTIFY_URL at a recording sink (`self.sink`)."""

    def __init__(self, sources: int = 1, jail: bool = True, versioned: bool = False, scan_delay: float = 0.05,
                 notify: bool = False, **env: str):
        self.intakes = [unique_bucket("intake") for _ in range(sources)]
        self.intake = self.intakes[0]
        self.jail = unique_bucket("jail") if jail else self.intake
        buckets = self.intakes + ([self.jail] if jail else [])
        self.cloud = LocalCloud(buckets, scan_delay=scan_delay, versioned=self.intakes if versioned else []).start()
        self.cos = self.cloud.client("cos")
        self.events: List[Dict[str, Any]] = []
        for bucket in self.intakes:
            self.cloud.cos.subscribe(self.events.append, bucket=bucket)
        self.sink: Optional[NotificationSink] = NotificationSink() if notify else None
        self._callback: Optional[Callable] = None
        self.callback_server = FunctionUrlServer(lambda e, c: self._callback(e, c), context_factory=Context).start()
        overrides = {"COSGUARD_BUCKETS": ",".join(self.intakes),
                     "COSGUARD_QUARANTINE_BUCKET": self.jail if jail else "",
                     "COSGUARD_NOTIFY_URL": self.sink.url if self.sink else ""}
        overrides.update(env)
        self.env = {k: v for k, v in self.cloud.function_env(
            COSGUARD_CALLBACK_URL=self.callback_server.url, COSGUARD_CALLBACK_TOKEN=CALLBACK_SECRET,
            **overrides).items() if v != ""}
        self.scan_handler = load_handler("scan_on_upload", self.env)
        self._callback = load_handler("quarantine_callback", self.env)
        self.sweep_handler = load_handler("reconcile_pending", self.env)

    def close(self) -> None:
        self.callback_server.stop()
        if self.sink is not None:
            self.sink.stop()
        self.cloud.stop()

    @staticmethod
    def runtime_of(handler: Callable) -> Any:
        """A loaded function instance's Runtime (its gateway, ledger and sealer)."""
        return handler.__globals__["RUNTIME"]

    def freeze_clock(self) -> ManualClock:
        """Stop every function's clock (upload trigger, callback, sweep) at now: it moves only by
        `clock.advance(seconds)`, so a lease ends when the test says, however loaded the machine.
        (COS and CI keep the wall clock: for leases only, not for what compares with Last-Modified.)"""
        clock = ManualClock(start=time.time())
        for handler in (self.scan_handler, self._callback, self.sweep_handler):
            use_clock(self.runtime_of(handler), clock)
        return clock

    # -- what uploaders, COS and CI do -----------------------------------------------------------
    def put(self, key: str, body: bytes, bucket: Optional[str] = None, **kwargs: Any) -> Dict[str, Any]:
        return self.cos.put_object(Bucket=bucket or self.intake, Key=key, Body=body, **kwargs)

    def take_events(self) -> Dict[str, Any]:
        """Every event COS emitted since the last call, as one trigger event."""
        self.cloud.cos.drain()
        taken, self.events[:] = list(self.events), []
        return {"Records": [r for e in taken for r in e["Records"]]}

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until CI has finished every job and delivered (or given up on) every callback;
        AssertionError naming what is still busy when it does not go idle within `timeout`."""
        settle_ci(self.cloud.ci, timeout)

    def sweep(self) -> Dict[str, Any]:
        return self.sweep_handler({"Type": "Timer"}, Context())

    # -- what a user looks at -------------------------------------------------------------------
    def tags(self, key: str, bucket: Optional[str] = None) -> Dict[str, str]:
        response = self.cos.get_object_tagging(Bucket=bucket or self.intake, Key=key)
        return {t["Key"]: t["Value"] for t in response.get("TagSet", {}).get("Tag", [])}

    def jobs_created(self) -> int:
        return len(self.cloud.ci.backend.jobs)


def stack_factory(cls: Callable[..., DeployedStack]) -> Iterator[Callable[..., DeployedStack]]:
    """A fixture body: yields `make(**options)`, and stops every stack it made after the test."""
    made: List[DeployedStack] = []

    def make(**kwargs: Any) -> DeployedStack:
        made.append(cls(**kwargs))
        return made[-1]

    yield make
    for stack in made:
        stack.close()
