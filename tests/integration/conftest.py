"""A whole deployment on the local cloud: local COS + CI, both functions loaded from functions/
as SCF loads them, the callback function behind a function-URL endpoint that CI calls back."""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional

import pytest

from cosguard.local.function_url import FunctionUrlServer
from cosguard.local.loader import load_handler
from cosguard.local.stack import LocalCloud
from helpers import CALLBACK_SECRET, Context, quarantined_keys, settle_ci, unique_bucket

for _name in [n for n in os.environ if n.startswith(("TENCENTCLOUD_", "COSGUARD_"))]:
    del os.environ[_name]  # a developer's real keys must never reach the local cloud


class Deployment:
    """cosguard deployed on a LocalCloud: `put` uploads, `scan` runs the upload trigger on the
    events COS emitted, `settle` waits for CI's jobs and callbacks."""

    def __init__(self, callback_format: str = "xml", versioned: bool = False, scan_delay: float = 0.05,
                 **env_overrides: str):
        self.intake = unique_bucket("intake")
        self.jail = unique_bucket("jail")
        # CI retries a failed callback (3 times): whether it does is unknown, and the local CI's
        # default is no retry; these tests are about what a delivered verdict does, so a callback
        # lost to a stalled test process must not decide them. No retry, in every position of every
        # unknown: tests/integration/test_unknowns_matrix.py.
        self.cloud = LocalCloud([self.intake, self.jail], scan_delay=scan_delay,
                                callback_format=callback_format, callback_retries=3,
                                versioned=[self.intake] if versioned else []).start()
        self.cos = self.cloud.client("cos")
        self.events: List[Dict[str, Any]] = []
        self.cloud.cos.subscribe(self.events.append, bucket=self.intake)
        self._callback = None
        self.callback_server = FunctionUrlServer(lambda e, c: self._callback(e, c),
                                                 context_factory=Context).start()
        overrides = {"COSGUARD_QUARANTINE_BUCKET": self.jail}
        overrides.update(env_overrides)
        self.env = self.cloud.function_env(COSGUARD_CALLBACK_URL=self.callback_server.url,
                                           COSGUARD_CALLBACK_TOKEN=CALLBACK_SECRET, **overrides)
        self.env = {k: v for k, v in self.env.items() if v != ""}
        self.scan_handler = load_handler("scan_on_upload", self.env)
        self._callback = load_handler("quarantine_callback", self.env)

    @property
    def callback_handler(self):
        return self._callback

    def close(self) -> None:
        self.callback_server.stop()
        self.cloud.stop()

    def put(self, key: str, body: bytes, bucket: Optional[str] = None, **kwargs: Any) -> Dict[str, Any]:
        return self.cos.put_object(Bucket=bucket or self.intake, Key=key, Body=body, **kwargs)

    def take_events(self) -> List[Dict[str, Any]]:
        self.cloud.cos.drain()
        taken, self.events[:] = list(self.events), []
        return taken

    def combined_event(self) -> Dict[str, Any]:
        """All pending COS events as one multi-record event, as COS may batch them."""
        return {"Records": [r for e in self.take_events() for r in e["Records"]]}

    def scan(self, event: Optional[Dict[str, Any]] = None, context: Optional[Context] = None) -> Dict[str, Any]:
        return self.scan_handler(event if event is not None else self.combined_event(), context or Context())

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until CI has finished every job and delivered (or given up on) every callback;
        AssertionError naming what is still busy when it does not go idle within `timeout`."""
        settle_ci(self.cloud.ci, timeout)

    def tags(self, key: str, bucket: Optional[str] = None) -> Dict[str, str]:
        response = self.cos.get_object_tagging(Bucket=bucket or self.intake, Key=key)
        return {t["Key"]: t["Value"] for t in response.get("TagSet", {}).get("Tag", [])}

    def exists(self, key: str, bucket: Optional[str] = None) -> bool:
        return self.cos.object_exists(Bucket=bucket or self.intake, Key=key)

    def keys(self, bucket: Optional[str] = None, prefix: str = "") -> List[str]:
        response = self.cos.list_objects(Bucket=bucket or self.intake, Prefix=prefix)
        return [item["Key"] for item in response.get("Contents", [])]

    def ledger_keys(self, kind: str) -> List[str]:
        """cosguard's ledger documents of one kind (`jobs`, `retry`, `claims`, ...): the state bucket
        is the jail here, under the default `.cosguard/` prefix."""
        return self.keys(bucket=self.jail, prefix=f".cosguard/{kind}/")

    def quarantined(self, key: str, bucket: Optional[str] = None) -> Optional[str]:
        """The quarantine key of `key`'s copy in the jail (the newest when there are several)."""
        found = quarantined_keys(self.cos, self.jail, bucket or self.intake, key)
        return found[-1] if found else None

    def callback_url(self, job_id: str) -> str:
        """The callback URL cosguard gave CI for this job (per object, expiring)."""
        return self.cloud.ci.backend.jobs[job_id].callback

    def jobs_submitted(self) -> int:
        """Submit requests CI received, failed ones included."""
        return self.cloud.ci.counters.snapshot().get("SubmitVirusJob", 0)

    def jobs_created(self) -> int:
        """Jobs CI actually created."""
        return len(self.cloud.ci.backend.jobs)


@pytest.fixture
def deploy():
    """`deploy(**env)` starts a deployment; all are stopped after the test."""
    made: List[Deployment] = []

    def make(**kwargs: Any) -> Deployment:
        deployment = Deployment(**kwargs)
        made.append(deployment)
        return deployment

    yield make
    for deployment in made:
        deployment.close()


@pytest.fixture
def deployment(deploy) -> Deployment:
    return deploy()


@pytest.fixture
def quiet(deploy) -> Deployment:
    """A deployment whose callbacks CI drops: objects stay `pending`, as between submit and verdict."""
    deployment = deploy()
    deployment.cloud.ci.faults.drop_callback_rate = 1.0
    return deployment
