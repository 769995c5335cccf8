"""Helpers shared by every test folder (import as `helpers`; conftest modules share one name)."""
from __future__ import annotations

import contextlib
import json
import pathlib
import time
import types
import uuid

EVENTS = pathlib.Path(__file__).parent / "events"
ROOT = pathlib.Path(__file__).parent.parent
CALLBACK_SECRET = "local-callback-secret-0123456789"


def load_event(name: str):
    """A captured or documented event from tests/events/."""
    path = EVENTS / name
    return json.loads(path.read_text("utf-8")) if path.suffix == ".json" else path.read_bytes()


def unique_bucket(name: str = "intake") -> str:
    return f"{name}{uuid.uuid4().hex[:8]}-1250000000"


class Context(dict):
    """SCF's context dict, with the fields the runtime reads."""

    def __init__(self, time_limit_ms: int = 30000):
        super().__init__(request_id=f"req-{time.time_ns()}", memory_limit_in_mb=128,
                         time_limit_in_ms=time_limit_ms, function_name="local")


def quarantined_keys(cos, quarantine_bucket: str, source_bucket: str, key: str, prefix: str = "quarantine/"):
    """The quarantined copies of `source_bucket`/`key`: `<prefix><source bucket>/<job or version>/<key>`."""
    listed = cos.list_objects(Bucket=quarantine_bucket, Prefix=f"{prefix}{source_bucket}/").get("Contents", [])
    base = f"{prefix}{source_bucket}/"
    return sorted(item["Key"] for item in listed if item["Key"][len(base):].split("/", 1)[-1] == key)


def settle_ci(ci, timeout: float) -> None:
    """Wait until the local CI (`LocalCloud.ci`) has finished every job and delivered (or given up
    on) every callback. An AssertionError naming what is still busy if it does not go idle within
    `timeout`: a test never goes on to assert on a cloud that is still working."""
    if ci.wait_idle(timeout):
        return
    running = [f"{job.job_id} ({job.object_key or 'a Url'}: {job.state})" for job in ci.backend.jobs.values()
               if not (job.finished or job.stuck)]
    deliveries = getattr(ci.dispatcher, "_pending", "?")   # queued or being retried
    raise AssertionError(f"the local CI did not go idle within {timeout} s: "
                         f"{len(running)} job(s) still running {running}, {deliveries} callback delivery(ies) pending")


def use_clock(runtime, clock) -> None:
    """Every service of a function instance's Runtime reads `clock` (e.g. infra/memory.ManualClock):
    leases, ages and URL expiries move when the test says, not while it sleeps."""
    for service in (runtime.scanner, runtime.verdicts, runtime.sweeper, runtime.callbacks):
        service.clock = clock


@contextlib.contextmanager
def signing_as_of(seconds_ago: float):
    """cos-python-sdk-v5 signs with its clock (q-sign-time from 60 s before it to `Expired` after):
    signed as if `seconds_ago` seconds earlier, a URL is already expired, without waiting for it."""
    from qcloud_cos import cos_auth
    real = cos_auth.time
    cos_auth.time = types.SimpleNamespace(time=lambda: real.time() - seconds_ago)
    try:
        yield
    finally:
        cos_auth.time = real


@contextlib.contextmanager
def local_scf_deployment():
    """A LocalCloud (intake and quarantine buckets) with the three functions on a LocalScf whose COS
    trigger watches the intake bucket; yields (cloud, scf, intake, jail, logs), logs the functions'."""
    import io

    from cosguard.local.scf import LocalScf
    from cosguard.local.stack import LocalCloud
    intake, jail = unique_bucket("intake"), unique_bucket("jail")
    cloud = LocalCloud([intake, jail], scan_delay=0.05).start()
    env = cloud.function_env(COSGUARD_CALLBACK_TOKEN=CALLBACK_SECRET, COSGUARD_QUARANTINE_BUCKET=jail,
                             COSGUARD_MAX_ATTEMPTS="1", COSGUARD_BUCKETS=intake)
    logs = io.StringIO()
    scf = LocalScf(cloud, env, buckets=[intake], retry_delays=(0.2, 0.2), log_stream=logs).start()
    try:
        yield cloud, scf, intake, jail, logs
    finally:
        scf.stop()
        cloud.stop()


def write_around(target, method: str, write, call: int = 1, after: bool = False) -> list:
    """`write()` lands right before (or `after`) `target`'s `call`-th `method` call: an uploader's
    write racing cosguard at that exact step (before a gateway's copy is after every check of the
    verdict). Returns the calls seen, so a test can tell it ran."""
    real, calls = getattr(target, method), []

    def write_and_call(*args, **kwargs):
        calls.append(1)
        if len(calls) == call and not after:
            write()
        answer = real(*args, **kwargs)
        if len(calls) == call and after:
            write()
        return answer
    setattr(target, method, write_and_call)
    return calls
