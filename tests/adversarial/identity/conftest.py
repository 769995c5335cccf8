"""A deployment on the local cloud for the identity attacks: both functions and the sweep loaded from
functions/ as SCF loads them, CI calling the callback function's URL, and a notification sink."""
from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Dict, List, Optional

import pytest

from helpers import CALLBACK_SECRET, Context, unique_bucket
from cosguard.local.function_url import FunctionUrlServer
from cosguard.local.loader import load_handler
from cosguard.local.stack import LocalCloud

for _name in [n for n in os.environ if n.startswith(("TENCENTCLOUD_", "COSGUARD_"))]:
    del os.environ[_name]


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
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


class Stack:
    """`put` uploads through the SDK; `scan` runs the trigger on the events COS emitted; `settle`
    waits for CI and its callbacks; `sweep` runs reconcile_pending once."""

    def __init__(self, versioned: bool = False, **env: str):
        self.intake, self.jail = unique_bucket("intake"), unique_bucket("jail")
        self.cloud = LocalCloud([self.intake, self.jail], scan_delay=0.05,
                                versioned=[self.intake] if versioned else []).start()
        self.cos = self.cloud.client("cos")
        self.events: List[Dict[str, Any]] = []
        self.cloud.cos.subscribe(self.events.append, bucket=self.intake)
        self.sink = NotificationSink()
        self._callback = None
        self.callback_server = FunctionUrlServer(lambda e, c: self._callback(e, c), context_factory=Context).start()
        overrides = {"COSGUARD_QUARANTINE_BUCKET": self.jail, "COSGUARD_NOTIFY_URL": self.sink.url,
                     "COSGUARD_MAX_ATTEMPTS": "2"}
        overrides.update(env)
        self.env = {k: v for k, v in self.cloud.function_env(
            COSGUARD_CALLBACK_URL=self.callback_server.url, COSGUARD_CALLBACK_TOKEN=CALLBACK_SECRET,
            **overrides).items() if v != ""}
        self.scan_handler = load_handler("scan_on_upload", self.env)
        self._callback = load_handler("quarantine_callback", self.env)
        self.sweep_handler = load_handler("reconcile_pending", self.env)

    def runtime(self, handler) -> Any:
        return handler.__globals__["RUNTIME"]

    def close(self) -> None:
        self.callback_server.stop()
        self.sink.stop()
        self.cloud.stop()

    def put(self, key: str, body: bytes, **kwargs: Any) -> Dict[str, Any]:
        return self.cos.put_object(Bucket=self.intake, Key=key, Body=body, **kwargs)

    def take_events(self) -> Dict[str, Any]:
        self.cloud.cos.drain()
        taken, self.events[:] = list(self.events), []
        return {"Records": [r for e in taken for r in e["Records"]]}

    def scan(self, event: Optional[Dict[str, Any]] = None, context: Optional[Context] = None) -> Dict[str, Any]:
        return self.scan_handler(event if event is not None else self.take_events(), context or Context())

    def settle(self, timeout: float = 10.0) -> None:
        self.cloud.ci.wait_idle(timeout)

    def sweep(self) -> Dict[str, Any]:
        return self.sweep_handler({"Type": "Timer"}, Context())

    def body(self, key: str, bucket: Optional[str] = None) -> Optional[bytes]:
        if not self.cos.object_exists(Bucket=bucket or self.intake, Key=key):
            return None
        return self.cos.get_object(Bucket=bucket or self.intake, Key=key)["Body"].get_raw_stream().read()

    def tags(self, key: str) -> Dict[str, str]:
        response = self.cos.get_object_tagging(Bucket=self.intake, Key=key)
        return {t["Key"]: t["Value"] for t in response.get("TagSet", {}).get("Tag", [])}

    def quarantined(self) -> List[str]:
        response = self.cos.list_objects(Bucket=self.jail, Prefix="quarantine/")
        return [item["Key"] for item in response.get("Contents", [])]

    def jobs_created(self) -> int:
        return len(self.cloud.ci.backend.jobs)


@pytest.fixture
def deploy():
    made: List[Stack] = []

    def make(**kwargs: Any) -> Stack:
        made.append(Stack(**kwargs))
        return made[-1]

    yield make
    for stack in made:
        stack.close()


@pytest.fixture
def stack(deploy) -> Stack:
    return deploy()
