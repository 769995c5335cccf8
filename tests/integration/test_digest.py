"""The daily digest (COSGUARD_DIGEST_HOUR): the real reconcile function on the local SCF sends it to
a local webhook once a day, whatever the number of timer runs and instances; a digest the webhook
refused is sent by the next run. (Hour 0: due at any time of the day, so no clock is faked.)"""
from __future__ import annotations

import io
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List

import pytest
from werkzeug.wrappers import Request, Response

from cosguard.local.httpserver import ThreadedServer
from cosguard.local.samples import clean_text, eicar
from cosguard.local.scf import Function, LocalScf
from cosguard.local.stack import LocalCloud
from helpers import CALLBACK_SECRET, unique_bucket


class Webhook:
    """A local receiver for notifications; `status` is what it answers."""

    def __init__(self, status: int = 200):
        self.status = status
        self.received: List[Dict[str, Any]] = []
        self.server = ThreadedServer(self._app).start()

    def _app(self, environ, start_response):
        self.received.append(json.loads(Request(environ).get_data()))
        return Response("ok", status=self.status)(environ, start_response)

    @property
    def url(self) -> str:
        return self.server.endpoint + "/hook"

    def digests(self) -> List[Dict[str, Any]]:
        return [m for m in self.received if m.get("kind") == "digest" or "daily digest" in json.dumps(m)]


@pytest.fixture
def world():
    intake, jail = unique_bucket("intake"), unique_bucket("jail")
    cloud = LocalCloud([intake, jail], scan_delay=0.05).start()
    hook = Webhook()
    env = cloud.function_env(COSGUARD_CALLBACK_TOKEN=CALLBACK_SECRET, COSGUARD_QUARANTINE_BUCKET=jail,
                             COSGUARD_BUCKETS=intake, COSGUARD_NOTIFY_URL=hook.url, COSGUARD_DIGEST_HOUR="0")
    yield cloud, hook, env, intake, jail
    hook.server.stop()
    cloud.stop()


def uploads_settled(cloud, env, intake, objects: Dict[str, bytes]) -> None:
    scf = LocalScf(cloud, env, buckets=[intake]).start()
    cos = cloud.client("cos")
    for key, body in objects.items():
        cos.put_object(Bucket=intake, Key=key, Body=body)
    assert scf.wait_idle(20)
    scf.stop()


def reconcile(env, logs: io.StringIO, times: int = 1, concurrently: bool = False) -> List[Dict[str, Any]]:
    env = dict(env, COSGUARD_CALLBACK_URL="http://127.0.0.1:9/callback")   # the sweep submits nothing here
    timer = Function("reconcile_pending", env, concurrency=max(2, times), log_stream=logs)
    try:
        if concurrently:
            with ThreadPoolExecutor(times) as pool:
                return list(pool.map(lambda _: timer.invoke({"Type": "Timer"}), range(times)))
        return [timer.invoke({"Type": "Timer"}) for _ in range(times)]
    finally:
        timer.close()


def events(logs: io.StringIO, name: str) -> List[Dict[str, Any]]:
    lines = [json.loads(line) for line in logs.getvalue().splitlines() if line.startswith("{")]
    return [line for line in lines if line["event"] == name]


def test_one_digest_a_day_across_runs_and_concurrent_instances(world):
    cloud, hook, env, intake, jail = world
    cloud.ci.faults.stuck_jobs = {"d/slow.txt"}
    uploads_settled(cloud, env, intake, {"d/slow.txt": b"CI never finishes", "d/notes.txt": clean_text(),
                                         "d/eicar.com": eicar()})
    logs = io.StringIO()
    reports = reconcile(env, logs, times=3, concurrently=True) + reconcile(env, logs, times=2)
    assert all(r["pending"] == 1 for r in reports)
    [digest] = hook.digests()
    assert digest["day"] == time.strftime("%Y-%m-%d", time.gmtime())
    assert digest["figures"]["pending"] == 1 and digest["buckets"] == [intake]
    assert 0 <= digest["figures"]["oldest_pending_seconds"] < 60
    # the report's figures of the last 24 hours (bulk/figures.py), from the ledger's history index
    assert digest["source_note"].startswith("the last 24 hours")
    assert (digest["figures"]["verdicts"], digest["figures"]["clean"], digest["figures"]["infected"]) == (2, 1, 1)
    assert digest["figures"]["in quarantine"] == 1 and digest["figures"]["upload_to_verdict_p50_seconds"] is not None
    assert [v["count"] for v in digest["viruses"]] == [1] and "eicar" in digest["viruses"][0]["name"].lower()
    assert [(a["what"], a["key"]) for a in digest["attention"]] == [("infected", "d/eicar.com")]
    [sent] = events(logs, "digest_sent")
    marker_bucket, marker_key = sent["marker"].split("/", 1)
    assert marker_bucket == jail and cloud.client("cos").object_exists(Bucket=jail, Key=marker_key)


def test_a_digest_the_webhook_refused_is_sent_by_the_next_run(world):
    cloud, hook, env, intake, jail = world
    hook.status = 500
    logs = io.StringIO()
    reconcile(env, logs)
    assert len(hook.digests()) == 1 and [e["reason"] for e in events(logs, "digest_failed")] == [
        "the webhook did not take it"]
    hook.status = 200
    reconcile(env, logs, times=2)
    assert len(hook.digests()) == 2 and len(events(logs, "digest_sent")) == 1


def test_no_digest_without_the_setting(world):
    cloud, hook, env, intake, jail = world
    logs = io.StringIO()
    reconcile(dict(env, COSGUARD_DIGEST_HOUR=""), logs)
    assert hook.digests() == [] and events(logs, "digest_sent") == []
