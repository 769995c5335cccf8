"""The ledger's claims, leases and takeovers, driven in memory with an injected clock: every lease
ends by `clock.advance`, never by sleeping (the HTTP tests of the same protocol stay in
tests/adversarial/identity/test_claims.py)."""
from __future__ import annotations

import pytest

from cosguard.domain.ledger import ACTION_LEASE_SECONDS, ClaimBusy
from cosguard.domain.states import LEASE_MARGIN_SECONDS
from cosguard.domain.status import Outcome
from memory_world import INTAKE, World, clean_text, eicar


@pytest.fixture
def world() -> World:
    return World()


def test_a_claim_is_exclusive_until_its_lease_ends_then_taken_over(world):
    info = world.put("a.txt", clean_text())
    state, first = world.ledger.claim(info, lease=60)
    assert state == "claimed" and first.state == "submitting" and first.lease_until == world.clock() + 60
    with pytest.raises(ClaimBusy):
        world.ledger.claim(info, lease=60)
    world.clock.advance(60 + LEASE_MARGIN_SECONDS)   # the lease and its margin on COS's clock: the
    with pytest.raises(ClaimBusy):                     # holder may still be at work
        world.ledger.claim(info, lease=60)
    world.clock.advance(1)   # COS's clock has whole seconds
    state, second = world.ledger.claim(info, lease=60)
    assert state == "claimed" and second.previous_state == "submitting"
    assert second.lease_until == world.clock() + 60
    assert world.ledger.open_entry(INTAKE, "a.txt", first.identity).lease_until == second.lease_until


def test_a_released_claim_is_taken_over_at_once(world):
    info = world.put("a.txt", clean_text())
    _, entry = world.ledger.claim(info, lease=600)
    world.ledger.release_claim(entry)
    state, again = world.ledger.claim(info, lease=600)   # no time passes: `failed` blocks nobody
    assert state == "claimed" and again.previous_state == "failed"


def test_a_submitted_job_makes_every_later_claim_a_duplicate(world):
    info = world.put("a.txt", clean_text())
    _, entry = world.ledger.claim(info, lease=60)
    entry.job_id = "job-1"
    world.ledger.open_job(entry)
    world.clock.advance(10 * 3600)   # no lease on a submitted job: it stays open until its verdict
    state, found = world.ledger.claim(info, lease=60)
    assert state == "duplicate" and found.job_id == "job-1"


def test_closing_a_job_records_the_upload_as_handled_and_empties_jobs(world):
    info = world.put("a.txt", clean_text())
    _, entry = world.ledger.claim(info, lease=60)
    entry.job_id = "job-1"
    world.ledger.open_job(entry)
    world.ledger.close_job(entry, Outcome.CLEAN.value)
    assert world.ledger_keys("jobs") == [] and len(world.ledger_keys("claims")) == 1
    assert world.ledger.get_job("job-1").outcome == "clean"
    assert world.ledger.claim(info, lease=60) == ("duplicate", None)
    assert world.ledger_keys("jobs") == []   # the passing claim was removed again


def test_a_new_write_of_the_key_is_a_new_claim(world):
    first = world.put("a.txt", clean_text())
    _, entry = world.ledger.claim(first, lease=60)
    world.clock.advance(1)   # COS's Last-Modified has one-second resolution
    second = world.put("a.txt", clean_text())   # the same bytes, a new write
    assert second.etag == first.etag
    state, other = world.ledger.claim(second, lease=60)
    assert state == "claimed" and other.name != entry.name
    assert sorted(e.identity for e in world.ledger.open_entries_of(INTAKE, "a.txt")) == \
           sorted([entry.identity, other.identity])


def test_an_unsealed_claim_blocks_nobody(world):
    info = world.put("a.txt", clean_text())
    _, entry = world.ledger.claim(info, lease=600)
    key = f"{world.settings.state_prefix}jobs/{entry.name}.json"
    world.gateway.put_json(world.ledger.bucket, key, dict(entry.fields_dict(), lease_until=world.clock() + 10 ** 9))
    state, taken = world.ledger.claim(info, lease=600)   # the planted lease is not believed
    assert state == "claimed" and taken.previous_state == "failed"
    assert world.ledger.open_entry(INTAKE, "a.txt", entry.identity).lease_until == world.clock() + 600


def test_an_action_claim_is_exclusive_until_its_lease_ends(world):
    first = world.ledger.claim_action("job-1", lease=ACTION_LEASE_SECONDS)
    assert first["state"] == "acting" and "previous_state" not in first
    assert world.ledger.claim_action("job-1", lease=ACTION_LEASE_SECONDS) is None
    world.clock.advance(ACTION_LEASE_SECONDS + LEASE_MARGIN_SECONDS)
    assert world.ledger.claim_action("job-1", lease=ACTION_LEASE_SECONDS) is None
    world.clock.advance(1)
    taken = world.ledger.claim_action("job-1", lease=ACTION_LEASE_SECONDS)   # its holder died
    assert taken["previous_state"] == "acting" and taken["nonce"] != first["nonce"]
    world.ledger.release_action("job-1")
    assert "previous_state" not in world.ledger.claim_action("job-1", lease=ACTION_LEASE_SECONDS)


def test_retry_entries_are_recorded_listed_and_cleared(world):
    info = world.put("a.txt", clean_text())
    _, entry = world.ledger.claim(info, lease=60)
    world.ledger.record_retry(INTAKE, "a.txt", entry.identity, "CI was down", retryable=True)
    world.ledger.release_claim(entry)
    [retry] = list(world.ledger.retries())
    assert retry["reason"] == "CI was down" and retry["retryable"] and retry["failed_at"] == world.clock()
    world.ledger.clear_retry(INTAKE, "a.txt", entry.identity)
    world.ledger.clear_retry(INTAKE, "a.txt", entry.identity)   # twice is harmless
    assert list(world.ledger.retries()) == []


def test_drop_claim_forgets_only_a_failed_claim(world):
    info = world.put("a.txt", clean_text())
    _, entry = world.ledger.claim(info, lease=60)
    world.ledger.drop_claim(INTAKE, "a.txt", entry.identity)   # live: kept
    assert len(world.ledger_keys("jobs")) == 1
    world.ledger.release_claim(entry)
    world.ledger.drop_claim(INTAKE, "a.txt", entry.identity)
    assert world.ledger_keys("jobs") == []


def test_a_scan_that_cannot_submit_leaves_a_failed_claim_and_a_retry_entry(world):
    from cosguard.errors import CloudTransientError
    world.put("a.com", eicar())
    world.gateway.faults["SubmitVirusJob"] = CloudTransientError("CI is down", operation="SubmitVirusJob")
    result = world.scan("a.com")
    assert result.outcome is Outcome.ERROR and result.retryable
    assert [e.state for e in world.ledger.open_jobs()] == ["failed"]
    assert [r["retryable"] for r in world.ledger.retries()] == [True]
    del world.gateway.faults["SubmitVirusJob"]
    assert world.scan("a.com").outcome is Outcome.SUBMITTED   # SCF's retry takes the failed claim over
    assert list(world.ledger.retries()) == [] and [e.state for e in world.ledger.open_jobs()] == ["submitted"]
