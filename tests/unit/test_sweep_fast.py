"""The sweep in memory, with an injected clock: lost callbacks, dead holders, failed submissions and
overdue jobs, each in milliseconds (the HTTP tests: tests/integration/test_operations.py,
tests/adversarial/identity/test_claims.py)."""
from __future__ import annotations

import pytest

from cosguard.domain.ledger import CLAIM_LEASE_SECONDS
from cosguard.domain.states import LEASE_MARGIN_SECONDS
from cosguard.errors import CloudPermanentError, CloudTransientError
from memory_world import World, clean_text, eicar


class Killed(BaseException):
    """What a function sees of SIGKILL: nothing after this point runs."""


@pytest.fixture
def world() -> World:
    return World()


def test_every_lost_callback_is_applied_by_one_sweep(world):
    world.put("a.com", eicar())
    world.put("b.txt", clean_text())
    world.scan("a.com"), world.scan("b.txt")
    report = world.sweep()
    assert report.pending == 2 and report.applied == {} and not report.problems
    world.ci.finish_all()   # ... and CI's callbacks never arrive
    report = world.sweep()
    assert report.applied == {"quarantined": 1, "clean": 1} and report.pending == 0
    assert world.gateway.body("intake-1250000000", "a.com") is None and len(world.quarantined("a.com")) == 1
    assert world.status_tag("b.txt") == "clean"
    assert world.ledger_keys("jobs") == []
    assert world.sweep().applied == {}


def test_a_pending_job_becomes_overdue_as_the_clock_passes_the_threshold(world):
    world.put("stuck.txt", clean_text())
    job_id = world.scan("stuck.txt").job_id
    world.clock.advance(world.settings.pending_overdue_seconds)
    report = world.sweep()
    assert report.pending == 1 and report.overdue == [] and not report.problems
    world.clock.advance(1)
    report = world.sweep()
    assert report.pending == 1 and report.problems
    assert [(o["job_id"], o["age_seconds"]) for o in report.overdue] == [
        (job_id, world.settings.pending_overdue_seconds + 1)]


def test_a_claim_whose_holder_died_is_resubmitted_once_its_lease_ends(world):
    world.put("stranded.com", eicar())
    submit = world.gateway.submit_virus_job

    def killed(*args, **kwargs):
        raise Killed()
    world.gateway.submit_virus_job = killed
    with pytest.raises(Killed):
        world.scan("stranded.com")
    world.gateway.submit_virus_job = submit
    report = world.sweep()
    assert report.pending == 1 and report.resubmitted == {}   # the holder may be alive
    world.clock.advance(CLAIM_LEASE_SECONDS + LEASE_MARGIN_SECONDS)
    assert world.sweep().resubmitted == {}
    world.clock.advance(1)
    assert world.sweep().resubmitted == {"submitted": 1}   # its holder died: taken over
    assert len(world.ci.jobs) == 1
    world.ci.finish_all()
    assert world.sweep().applied == {"quarantined": 1}
    assert world.gateway.body("intake-1250000000", "stranded.com") is None


def test_a_dead_holders_upload_deleted_since_is_closed_gone(world):
    world.put("gone.com", eicar())
    world.gateway.submit_virus_job = lambda *a, **k: (_ for _ in ()).throw(Killed())
    with pytest.raises(Killed):
        world.scan("gone.com")
    world.gateway.delete("intake-1250000000", "gone.com")
    world.clock.advance(CLAIM_LEASE_SECONDS + LEASE_MARGIN_SECONDS + 1)
    assert world.sweep().resubmitted == {"gone": 1}
    assert world.ledger_keys("jobs") == []


def test_a_failed_submission_is_resubmitted_when_ci_is_back(world):
    world.put("later.com", eicar())
    world.gateway.faults["SubmitVirusJob"] = CloudTransientError("503", operation="SubmitVirusJob")
    assert world.scan("later.com").retryable
    report = world.sweep()   # CI still down: the entry stays for the next sweep
    assert report.resubmitted == {"error": 1} and len(world.ledger_keys("retry")) == 1
    del world.gateway.faults["SubmitVirusJob"]
    assert world.sweep().resubmitted == {"submitted": 1}
    assert world.ledger_keys("retry") == []
    world.ci.finish_all()
    assert world.sweep().applied == {"quarantined": 1}
    assert world.sweep().as_dict()["resubmitted"] == {} and world.ledger_keys("jobs") == []


def test_a_failed_submission_whose_object_is_gone_is_dropped(world):
    world.put("brief.txt", clean_text())
    world.gateway.faults["SubmitVirusJob"] = CloudTransientError("503", operation="SubmitVirusJob")
    world.scan("brief.txt")
    del world.gateway.faults["SubmitVirusJob"]
    world.gateway.delete("intake-1250000000", "brief.txt")
    assert world.sweep().resubmitted == {"gone": 1}
    assert world.ledger_keys("retry") == [] and world.ledger_keys("jobs") == []


def test_a_job_ci_forgot_is_scanned_again(world):
    world.put("forgotten.com", eicar())
    first = world.scan("forgotten.com").job_id
    world.ci.forget(first)
    report = world.sweep()   # CI answers 404: the upload is recorded for a new submission, made at once
    assert report.resubmitted == {"submitted": 1} and len(world.ledger_keys("jobs")) == 1
    [second] = [job for job in world.ci.jobs if job != first]
    world.ci.finish(second)
    assert world.sweep().applied == {"quarantined": 1}
    assert world.ledger_keys("retry") == []


def test_a_job_of_an_overwritten_upload_closes_stale_and_the_new_write_is_scanned_on_its_own(world):
    world.put("swap.txt", eicar())
    old_job = world.scan("swap.txt").job_id
    world.clock.advance(1)
    world.put("swap.txt", clean_text())
    new_job = world.scan("swap.txt").job_id
    world.ci.finish_all()
    report = world.sweep()
    assert report.applied == {"stale": 1, "clean": 1}
    assert world.gateway.body("intake-1250000000", "swap.txt") == clean_text()
    assert world.ledger.get_job(old_job).outcome == "stale" and world.ledger.get_job(new_job).outcome == "clean"


def test_a_broken_ledger_read_is_reported_and_the_sweep_goes_on(world):
    world.put("a.txt", clean_text())
    world.scan("a.txt")
    world.ci.finish_all()
    world.gateway.faults["QueryVirusJob"] = CloudPermanentError("AccessDenied", code="AccessDenied", status=403)
    report = world.sweep()
    assert report.applied == {"error": 1} and report.problems
    del world.gateway.faults["QueryVirusJob"]
    assert world.sweep().applied == {"clean": 1}
