"""Applying a verdict is idempotent: redelivered, concurrent, or retried after a holder died, each
upload is acted on once. In memory, with an injected clock (the HTTP tests:
tests/adversarial/identity/test_claims.py, tests/integration/test_quarantine_callback.py)."""
from __future__ import annotations

import threading

import pytest

from cosguard.domain.ledger import ACTION_LEASE_SECONDS
from cosguard.domain.scan import ScanResult
from cosguard.domain.states import LEASE_MARGIN_SECONDS
from cosguard.domain.status import Outcome
from memory_world import INTAKE, World, clean_text, eicar


class Killed(BaseException):
    """What a function sees of SIGKILL: nothing after this point runs."""


@pytest.fixture
def world() -> World:
    return World()


def _scanned(world: World, key: str, body: bytes) -> str:
    world.put(key, body)
    job_id = world.scan(key).job_id
    world.ci.finish(job_id)
    return job_id


def test_a_redelivered_verdict_is_already_done(world):
    job_id = _scanned(world, "a.com", eicar())
    first = world.apply(job_id)
    assert first.outcome is Outcome.QUARANTINED and first.http_status == 200
    copies = world.gateway.calls["CopyObject"]
    again = world.apply(job_id)
    assert again.outcome is Outcome.ALREADY_DONE and again.http_status == 200
    assert world.gateway.calls["CopyObject"] == copies and len(world.quarantined("a.com")) == 1


def test_a_clean_verdict_tags_once(world):
    job_id = _scanned(world, "a.txt", clean_text())
    assert world.apply(job_id).outcome is Outcome.CLEAN
    tagged = world.gateway.calls["PutObjectTagging"]
    assert world.apply(job_id).outcome is Outcome.ALREADY_DONE
    assert world.gateway.calls["PutObjectTagging"] == tagged and world.status_tag("a.txt") == "clean"


def test_a_delivery_while_another_acts_answers_503_until_the_lease_ends(world):
    job_id = _scanned(world, "a.com", eicar())
    copy = world.gateway.copy

    def killed(*args, **kwargs):
        raise Killed()
    world.gateway.copy = killed
    with pytest.raises(Killed):
        world.apply(job_id)   # dies holding the action claim
    world.gateway.copy = copy
    busy = world.apply(job_id)
    assert busy.outcome is Outcome.PENDING and busy.http_status == 503   # CI retries; never "handled"
    assert world.gateway.body(INTAKE, "a.com") == eicar()
    world.clock.advance(ACTION_LEASE_SECONDS + LEASE_MARGIN_SECONDS + 1)
    done = world.apply(job_id)
    assert done.outcome is Outcome.QUARANTINED and world.gateway.body(INTAKE, "a.com") is None


def test_a_holder_that_died_after_its_copy_is_finished_by_the_next_delivery_with_one_copy(world):
    job_id = _scanned(world, "a.com", eicar())
    delete = world.gateway.delete

    def killed_on_the_upload(bucket, key, *args, **kwargs):
        if bucket == INTAKE:
            raise Killed()
        return delete(bucket, key, *args, **kwargs)
    world.gateway.delete = killed_on_the_upload
    with pytest.raises(Killed):
        world.apply(job_id)
    world.gateway.delete = delete
    assert len(world.quarantined("a.com")) == 1 and world.gateway.body(INTAKE, "a.com") == eicar()
    world.clock.advance(ACTION_LEASE_SECONDS + LEASE_MARGIN_SECONDS + 1)
    assert world.sweep().applied == {"quarantined": 1}
    assert len(world.quarantined("a.com")) == 1 and world.gateway.body(INTAKE, "a.com") is None
    assert world.apply(job_id).outcome is Outcome.ALREADY_DONE


def test_an_action_claim_left_behind_by_a_finished_holder_blocks_nothing(world):
    job_id = _scanned(world, "a.txt", clean_text())
    assert world.apply(job_id).outcome is Outcome.CLEAN
    assert world.ledger_keys("actions") == []   # deleted once the action is done
    assert world.ledger.claim_action(job_id)    # a holder that died after closing, before deleting it:
    assert len(world.ledger_keys("actions")) == 1   # left `acting`, harmless, the job is closed
    assert world.apply(job_id).outcome is Outcome.ALREADY_DONE
    world.clock.advance(ACTION_LEASE_SECONDS + LEASE_MARGIN_SECONDS + 1)
    assert world.apply(job_id).outcome is Outcome.ALREADY_DONE
    assert world.sweep().applied == {}


def _callback_before_the_record(world: World, key: str, callback) -> ScanResult:
    """Scan `key`; CI's callback (`callback(job_id)`) lands between the submit and the job's record."""
    put_tags, called = world.gateway.put_tags, []

    def tag_then_callback(bucket, key_, tags, version_id=None):
        put_tags(bucket, key_, tags, version_id)
        job_id = tags.get("cosguard-job")
        if job_id and not called:
            called.append(job_id)
            world.ci.finish(job_id)
            callback(job_id)
    world.gateway.put_tags = tag_then_callback
    try:
        return world.scan(key)
    finally:
        world.gateway.put_tags = put_tags


def test_a_verdict_before_the_submitter_recorded_its_job_waits(world):
    world.put("race.com", eicar())
    world.verdicts.pause = lambda seconds: None   # the submitter never records while the callback waits
    answers: list = []
    result = _callback_before_the_record(world, "race.com", lambda job_id: answers.append(world.apply(job_id)))
    assert result.outcome is Outcome.SUBMITTED
    assert answers[0].outcome is Outcome.PENDING and answers[0].http_status == 503
    assert world.apply(result.job_id).outcome is Outcome.QUARANTINED


def test_a_verdict_that_lands_while_the_submitter_records_its_job_is_applied_once_recorded(world):
    """CI may not retry a callback (docs/tencent-facts.md): one answered 503 would wait for the
    sweep. The callback waits (RECORDING_WAITS, open_jobs.py) for the record instead."""
    world.put("race.com", eicar())
    paused, recorded, answers, callbacks = threading.Event(), threading.Event(), [], []

    def wait_for_the_record(seconds):
        paused.set()
        assert recorded.wait(10), "the submitter never recorded the job"
    world.verdicts.pause = wait_for_the_record

    def deliver(job_id):
        callbacks.append(threading.Thread(target=lambda: answers.append(world.apply(job_id))))
        callbacks[0].start()
        assert paused.wait(10), "the callback did not wait for the record"
    result = _callback_before_the_record(world, "race.com", deliver)
    assert result.outcome is Outcome.SUBMITTED
    recorded.set()
    callbacks[0].join(10)
    assert [a.outcome for a in answers] == [Outcome.QUARANTINED] and answers[0].http_status == 200
    assert world.gateway.body(INTAKE, "race.com") is None and len(world.quarantined("race.com")) == 1


def test_a_verdict_for_an_overwritten_upload_is_stale_and_touches_nothing(world):
    job_id = _scanned(world, "swap.com", eicar())
    world.clock.advance(1)
    world.put("swap.com", clean_text())
    result = world.apply(job_id)
    assert result.outcome is Outcome.STALE
    assert world.gateway.body(INTAKE, "swap.com") == clean_text() and world.quarantined("swap.com") == []
    assert world.apply(job_id).outcome is Outcome.ALREADY_DONE
