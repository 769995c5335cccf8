"""The model on its own: ids, timestamps, validation, progression; no HTTP."""
from __future__ import annotations

import dataclasses
import random
import threading
import time

import pytest

from ci_samples import BUCKET, OTHER_BUCKET
from cosguard.local.ci import CiBackend, InvalidArgument, JobState, NoSuchJob, eicar_bytes
from cosguard.local.ci.scheduler import Scheduler
from cosguard.local.store import MemoryObjectStore, ObjectMissing


@pytest.fixture
def make_backend():
    made = []

    def make(**options) -> CiBackend:
        options.setdefault("store", MemoryObjectStore())
        backend = CiBackend(**options)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.shutdown()


def test_ids_come_from_the_injected_rng(make_backend):
    first = make_backend(rng=random.Random(7), scan_delay=0)
    second = make_backend(rng=random.Random(7), scan_delay=0)
    ids = [first.submit_job(BUCKET, object_key="k").job_id for _ in range(3)]
    assert ids == [second.submit_job(BUCKET, object_key="k").job_id for _ in range(3)]
    assert len(set(ids)) == 3
    assert ids[0] == "ss%032x" % random.Random(7).getrandbits(128)


def test_creation_time_is_china_standard_time(make_backend):
    backend = make_backend(clock=lambda: 1625631132.0)  # 2021-07-07T04:12:12Z
    assert backend.submit_job(BUCKET, object_key="k").creation_time_text == "2021-07-07T12:12:12+0800"


@pytest.mark.parametrize("kwargs, message", [
    ({}, "exactly one of Object and Url"),
    ({"object_key": "k", "url": "http://x.example/k"}, "exactly one of Object and Url"),
    ({"url": "ftp://x.example/k"}, "Input.Url"),
    ({"object_key": "k", "detect_type": "virus"}, "DetectType must be Virus"),
    ({"object_key": "k", "detect_type": None}, "DetectType must be Virus"),
    ({"object_key": "k", "callback": "callback.example.com"}, "Conf.Callback"),
    ({"object_key": "k", "callback": "http://"}, "Conf.Callback"),
])
def test_submit_validation(make_backend, kwargs, message):
    backend = make_backend()
    with pytest.raises(InvalidArgument) as caught:
        backend.submit_job(BUCKET, **kwargs)
    assert message in caught.value.message and caught.value.status == 400
    assert backend.jobs == {}


def test_https_callback_is_accepted(make_backend):
    job = make_backend().submit_job(BUCKET, object_key="k", callback="https://cb.example.com/x?t=1")
    assert job.callback == "https://cb.example.com/x?t=1"


def test_describe_is_scoped_to_the_bucket(make_backend):
    backend = make_backend()
    job = backend.submit_job(BUCKET, object_key="k")
    assert backend.describe_job(BUCKET, job.job_id).job_id == job.job_id
    with pytest.raises(NoSuchJob) as caught:
        backend.describe_job(OTHER_BUCKET, job.job_id)
    assert (caught.value.status, caught.value.code) == (404, "NoSuchJob")


def test_scan_delay_holds_the_result_back(make_backend):
    store = MemoryObjectStore()
    store.put(BUCKET, "eicar.com", eicar_bytes())
    backend = make_backend(store=store, scan_delay=0.4)
    started = time.monotonic()
    job = backend.submit_job(BUCKET, object_key="eicar.com")
    assert job.state == JobState.SUBMITTED
    done = backend.wait_for(job.job_id, 5)
    assert time.monotonic() - started >= 0.4
    assert (done.state, done.suggestion, done.detections[0].file_name) == ("Success", "block", "eicar.com")


def test_the_object_is_read_when_the_scan_runs(make_backend):
    """As in the cloud, what CI scans is the object as it is after the queueing delay."""
    store = MemoryObjectStore()
    store.put(BUCKET, "k", b"clean at submit time")
    backend = make_backend(store=store, scan_delay=0.3)
    job = backend.submit_job(BUCKET, object_key="k")
    store.put(BUCKET, "k", eicar_bytes())
    assert backend.wait_for(job.job_id, 5).suggestion == "block"


def test_copies_do_not_change_under_the_caller(make_backend):
    backend = make_backend(scan_delay=0)
    job = backend.submit_job(BUCKET, object_key="missing")
    backend.wait_idle(5)
    assert job.state == JobState.SUBMITTED
    assert backend.describe_job(BUCKET, job.job_id).state == JobState.FAILED


def test_notifier_sees_finished_jobs_with_callbacks_only(make_backend):
    seen = []
    backend = make_backend(scan_delay=0, notifier=seen.append)
    backend.submit_job(BUCKET, object_key="a")
    with_callback = backend.submit_job(BUCKET, object_key="b", callback="http://cb.example/")
    assert backend.wait_idle(5)
    assert [(job.job_id, job.state) for job in seen] == [(with_callback.job_id, JobState.FAILED)]


def test_reset_forgets_jobs(make_backend):
    backend = make_backend()
    job = backend.submit_job(BUCKET, object_key="k")
    backend.reset()
    assert backend.jobs == {}
    with pytest.raises(NoSuchJob):
        backend.describe_job(BUCKET, job.job_id)


def test_scheduler_runs_delayed_work_in_due_order():
    scheduler = Scheduler(workers=1, name="test")
    order, done = [], threading.Event()
    scheduler.call_later(0.2, lambda: (order.append("late"), done.set()))
    scheduler.call_later(0.05, order.append, "early")
    scheduler.call_soon(order.append, "now")
    assert done.wait(5)
    scheduler.shutdown()
    assert order == ["now", "early", "late"]
    scheduler.call_soon(order.append, "after shutdown")  # dropped, not an error
    time.sleep(0.05)
    assert order == ["now", "early", "late"]


def test_an_object_gone_between_lookup_and_read_fails_cleanly(make_backend):
    """A store may find the object yet fail to open it (local COS after an overwrite)."""

    class VanishingStore(MemoryObjectStore):
        def get(self, bucket, key, version_id=None):
            found = super().get(bucket, key, version_id)

            def gone():
                raise ObjectMissing(f"{bucket}/{key}")

            return dataclasses.replace(found, open=gone)

    store = VanishingStore()
    store.put(BUCKET, "k", b"x")
    backend = make_backend(store=store, scan_delay=0)
    done = backend.wait_for(backend.submit_job(BUCKET, object_key="k").job_id, 5)
    assert (done.state, done.code) == (JobState.FAILED, "ResourceNotFound")
