"""A local cloud holding objects cosguard never saw: no trigger is wired to the intake bucket, so an
upload is just an existing object until a backfill scans it. The callback function is loaded
in-process behind a function URL, so CI's verdicts are acted on as in production."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional, Sequence, Tuple

from cosguard.bulk.backfill import Backfill, Options, Report
from cosguard.infra.config import Settings
from cosguard.local.function_url import FunctionUrlServer
from cosguard.local.loader import load_handler
from cosguard.local.samples import clean_text, eicar
from cosguard.local.stack import LocalCloud
from cosguard.runtime import Runtime
from helpers import CALLBACK_SECRET, unique_bucket

for _name in [n for n in os.environ if n.startswith(("TENCENTCLOUD_", "COSGUARD_"))]:
    del os.environ[_name]  # a developer's real keys must never reach the local cloud


def _context() -> Dict[str, Any]:
    return {"request_id": f"req-{time.time_ns()}", "memory_limit_in_mb": 128, "time_limit_in_ms": 30000}


class Stack:
    def __init__(self, versioned: bool = False, scan_delay: float = 0.02, **env: str):
        self.intake, self.jail = unique_bucket("intake"), unique_bucket("jail")
        self.cloud = LocalCloud([self.intake, self.jail], scan_delay=scan_delay,
                                versioned=[self.intake] if versioned else []).start()
        self.cos = self.cloud.client("cos")
        self._callback = None
        self.callback_server = FunctionUrlServer(lambda e, c: self._callback(e, c),
                                                 context_factory=_context).start()
        self.env = self.cloud.function_env(
            COSGUARD_BUCKETS=self.intake, COSGUARD_QUARANTINE_BUCKET=self.jail,
            COSGUARD_CALLBACK_URL=self.callback_server.url, COSGUARD_CALLBACK_TOKEN=CALLBACK_SECRET,
            COSGUARD_LOG_LEVEL="WARNING", **env)
        self._callback = load_handler("quarantine_callback", self.env)

    def close(self) -> None:
        self.callback_server.stop()
        self.cloud.stop()

    def runtime(self) -> Runtime:
        return Runtime(Settings.from_env(self.env, require_callback_url=False))

    def backfill(self, runtime: Optional[Runtime] = None, **options: Any) -> Tuple[Backfill, Report]:
        backfill = Backfill(runtime or self.runtime(), Options(bucket=self.intake, **options))
        return backfill, backfill.run()

    def upload(self, items: Sequence[Tuple[str, bytes]], workers: int = 16) -> None:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda item: self.cos.put_object(Bucket=self.intake, Key=item[0], Body=item[1]),
                          items))

    def seed(self, items: Sequence[Tuple[str, bytes]]) -> None:
        """Objects written straight into the emulator's store, no HTTP and no event: what a bucket
        held before cosguard was installed, created fast (the PUT path is tested in tests/local_cos)."""
        backend, bucket = self.cloud.cos.moto_backend(), self.cloud.cos.names.to_moto(self.intake)
        for key, body in items:
            backend.put_object(bucket, key, body, disable_notification=True)

    def env_file(self, directory: pathlib.Path) -> str:
        path = directory / "cosguard.env"
        path.write_text("".join(f"{k}={v}\n" for k, v in self.env.items()), "utf-8")
        return str(path)

    def cli(self, directory: pathlib.Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        """`cosguard backfill --bucket <intake> ARGS` in its own process (the emulator keeps this
        one's CPU to itself), configured by an env file as an operator would. `timeout` only
        guards against a hang: speed is the benchmarks' business, not a test's."""
        return subprocess.run([sys.executable, "-m", "cosguard.cli", "backfill", "--env-file",
                               self.env_file(directory), "--bucket", self.intake, *args],
                              capture_output=True, text=True, timeout=timeout)

    def inventory(self, gzip: bool = True, key_encoding: str = "form", rows_per_file: int = 25,
                  fields: Sequence[str] = ("Size", "LastModifiedDate", "ETag", "StorageClass")) -> str:
        """A COS inventory report of the intake bucket, configured through the SDK (PUT Bucket
        inventory) and run now, as COS's daily run would: `--inventory`'s <bucket>/<manifest key>."""
        reports = f"reports-{self.intake.rsplit('-', 1)[1]}"
        if not self.cloud.cos.bucket_exists(reports):
            self.cloud.cos.create_bucket(reports)
        dialect = self.cloud.cos.inventories.dialect
        dialect.gzip, dialect.key_encoding, dialect.rows_per_file = gzip, key_encoding, rows_per_file
        self.cos.put_bucket_inventory(Bucket=self.intake, Id="cosguard", InventoryConfiguration={
            "Destination": {"COSBucketDestination": {"Bucket": f"qcs::cos:{self.cloud.cos.region}::{reports}",
                                                     "Format": "CSV", "Prefix": "inventory"}},
            "IsEnabled": "true", "IncludedObjectVersions": "Current", "Schedule": {"Frequency": "Daily"},
            "OptionalFields": {"Field": list(fields)}})
        return f"{reports}/{self.cloud.cos.run_inventory(self.intake, 'cosguard')}"

    def jobs(self) -> int:
        """Jobs CI created."""
        return len(self.cloud.ci.backend.jobs)

    def submits(self) -> int:
        return self.cloud.ci.counters.snapshot().get("SubmitVirusJob", 0)

    def heads(self) -> int:
        return self.cloud.cos.counters.snapshot().get("HeadObject", 0)

    def tags(self, key: str) -> Dict[str, str]:
        tags = self.cos.get_object_tagging(Bucket=self.intake, Key=key).get("TagSet", {}).get("Tag") or []
        return {t["Key"]: t["Value"] for t in tags}

    def keys(self, bucket: str, prefix: str = "") -> List[str]:
        keys, marker = [], ""
        while True:
            page = self.cos.list_objects(Bucket=bucket, Prefix=prefix, Marker=marker, MaxKeys=1000)
            contents = page.get("Contents") or []
            keys += [c["Key"] for c in contents]
            if str(page.get("IsTruncated")).lower() != "true" or not contents:
                return keys
            marker = contents[-1]["Key"]


def mixed(count: int, infected_every: int = 0, prefix: str = "data/") -> List[Tuple[str, bytes]]:
    """`count` small objects; every `infected_every`-th is EICAR."""
    items = []
    for i in range(count):
        infected = bool(infected_every) and i % infected_every == infected_every - 1
        items.append((f"{prefix}{i:05d}{'.com' if infected else '.txt'}",
                      eicar() if infected else clean_text() + f"#{i}\n".encode()))
    return items


def tc3_signature(secret_key: str, timestamp: int, host: str, content_type: str, body: bytes,
                  service: str = "scf") -> str:
    """TC3-HMAC-SHA256 as Tencent's API 3.0 signature page spells it out, step by step: the
    receiver's own check, written apart from cosguard.bulk.invoke so a shared mistake cannot pass."""
    import hashlib
    import hmac

    day = time.strftime("%Y-%m-%d", time.gmtime(timestamp))
    canonical_request = (f"POST\n/\n\ncontent-type:{content_type}\nhost:{host}\n\ncontent-type;host\n"
                         + hashlib.sha256(body).hexdigest())
    string_to_sign = (f"TC3-HMAC-SHA256\n{timestamp}\n{day}/{service}/tc3_request\n"
                      + hashlib.sha256(canonical_request.encode()).hexdigest())
    key = hmac.new(("TC3" + secret_key).encode(), day.encode(), hashlib.sha256).digest()
    key = hmac.new(key, service.encode(), hashlib.sha256).digest()
    key = hmac.new(key, b"tc3_request", hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


class FakeScfApi:
    """A local stand-in for https://scf.tencentcloudapi.com: records each request, checks its
    signature, answers like the API (scripted errors first), and hands the event of every
    accepted Invoke to `forward` (e.g. the local SCF runtime's async queue)."""

    def __init__(self, secret_id: str, secret_key: str, forward=None):
        import http.server
        import json
        import threading
        import uuid

        self.secret_id, self.secret_key, self.forward = secret_id, secret_key, forward
        self.requests: List[Dict[str, Any]] = []
        self.script: List[Dict[str, Any]] = []   # error bodies answered before any success
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                record = {"path": self.path, "headers": dict(self.headers), "body": body}
                record["signature_ok"] = api.signature_ok(record)
                api.requests.append(record)
                if api.script:
                    answer = {"Response": {"Error": api.script.pop(0), "RequestId": str(uuid.uuid4())}}
                elif not record["signature_ok"]:
                    answer = {"Response": {"Error": {"Code": "AuthFailure.SignatureFailure", "Message": "bad"},
                                           "RequestId": str(uuid.uuid4())}}
                else:
                    if api.forward is not None:
                        api.forward(json.loads(json.loads(body)["ClientContext"]))
                    answer = {"Response": {"Result": {"FunctionRequestId": str(uuid.uuid4())},
                                           "RequestId": str(uuid.uuid4())}}
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01},
                                       daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def signature_ok(self, record: Dict[str, Any]) -> bool:
        h = {k.lower(): v for k, v in record["headers"].items()}
        expected = tc3_signature(self.secret_key, int(h.get("x-tc-timestamp", "0")), h.get("host", ""),
                                 h.get("content-type", ""), record["body"])
        day = time.strftime("%Y-%m-%d", time.gmtime(int(h.get("x-tc-timestamp", "0"))))
        return h.get("authorization") == (
            f"TC3-HMAC-SHA256 Credential={self.secret_id}/{day}/scf/tc3_request, "
            f"SignedHeaders=content-type;host, Signature={expected}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
