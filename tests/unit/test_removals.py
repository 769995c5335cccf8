"""domain/removals.py word for word: which of cosguard's own removals a lost write is blamed on, and
what an operator reads, logs and receives about it. The outcome (a write lost to cosguard's
unconditional DELETE is reported once, recorded, listed until acknowledged) is tested over HTTP in
tests/adversarial/identity/test_loss_records.py; these pin the texts and fields an operator acts on
(survivors of mutation testing, docs/mutation-testing.md)."""
from __future__ import annotations

import contextlib
import io
import json
import logging
from typing import Any, Dict, Iterator, List

import pytest

from cosguard.domain import removals
from cosguard.errors import CloudError
from cosguard.infra import logs
from memory_world import INTAKE, World

QUARANTINED = {"outcome": "quarantined", "job_id": "job-1", "closed_at": 1000}


@contextlib.contextmanager
def logged() -> Iterator[List[Dict[str, Any]]]:
    """The JSON lines domain/removals.py logs inside the block."""
    stream, lines = io.StringIO(), []
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("cosguard.domain.removals")
    logger.addHandler(handler)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        lines += [json.loads(line) for line in stream.getvalue().splitlines()]


class Notifier:
    def __init__(self) -> None:
        self.sent: List[Dict[str, Any]] = []

    def send(self, doc: Dict[str, Any]) -> bool:
        self.sent.append(doc)
        return True


# -- which removal -----------------------------------------------------------------------------------

def test_a_removal_is_found_past_claims_that_removed_nothing_or_closed_too_early():
    """Every claim is looked at: one that did not remove the key, has no close time, closed before
    the write or after `until`, is passed over, and the next one is still found."""
    claims = [{"outcome": "clean", "closed_at": 1000}, {"outcome": "quarantined", "closed_at": None},
              {"outcome": "deleted", "closed_at": 900}, {"outcome": "promoted", "closed_at": 2000},
              dict(QUARANTINED)]
    assert removals._closed_removal(claims, 1000, until=1500) == QUARANTINED


def test_the_clock_skew_is_a_closed_interval_on_both_sides():
    skew = removals.CLOCK_SKEW_SECONDS
    claim = {"outcome": "deleted", "closed_at": 1000}
    assert removals._closed_removal([claim], 1000 + skew, until=None) == claim        # closed skew before
    assert removals._closed_removal([claim], 1000 + skew + 1, until=None) is None
    assert removals._closed_removal([claim], 0, until=1000 - skew) == claim           # closed skew after
    assert removals._closed_removal([claim], 0, until=1000 - skew - 1) is None


def test_a_claim_of_a_write_cosguard_kept_is_never_blamed_even_with_a_close_time():
    assert removals._closed_removal([{"outcome": "clean", "closed_at": 1000}], 1000, None) is None
    assert removals._closed_removal([{"outcome": "error", "closed_at": 1000}], 1000, None) is not None


# -- what an operator reads --------------------------------------------------------------------------

def test_each_kind_of_removal_is_described_with_the_key_the_write_and_the_job():
    assert removals.describe("b", "k.txt", 1234.9, {"outcome": "acting", "job_id": "job-7"}) == (
        "a write of b/k.txt (at 1234) is gone while cosguard is acting on an earlier upload of the key "
        "(job job-7): it may have been removed by cosguard's DELETE; check the key and re-upload if it "
        "is missing")
    assert removals.describe("b", "k.txt", 1234.9, {"outcome": "unknown", "job_id": None}) == (
        "a write of b/k.txt (at 1234) is gone and cosguard could not read its own removals of the key: it "
        "may have been removed by cosguard's DELETE of an earlier upload; check the key and re-upload if "
        "it is missing")
    assert removals.describe("b", "k.txt", 1234.9, QUARANTINED) == (
        "a write of b/k.txt (at 1234) may have been removed by cosguard's DELETE of an earlier upload "
        "(job job-1, quarantined): COS's DELETE is unconditional on unversioned buckets; check the key "
        "and re-upload if it is missing")


def test_a_loss_is_recorded_logged_and_notified_once_with_every_field():
    world, notifier = World(), Notifier()
    with logged() as lines:
        detail = removals.report(notifier, world.ledger, INTAKE, "k.txt", 1000, QUARANTINED)
        assert removals.report(notifier, world.ledger, INTAKE, "k.txt", 1000, QUARANTINED) == detail
    assert detail == removals.describe(INTAKE, "k.txt", 1000, QUARANTINED)
    [entry] = world.ledger.loss_entries()
    record = world.ledger.read_loss(entry)
    assert record is not None
    assert (record["bucket"], record["key"], record["detail"], record["found_by"], record["removal_job"]) == (
        INTAKE, "k.txt", detail, "upload event", "job-1")
    assert [(line["level"], line["event"], line["bucket"], line["key"], line["job_id"], line["loss_id"],
             line["reason"]) for line in lines] == [
        ("WARNING", "possible_write_loss", INTAKE, "k.txt", "job-1", entry.loss_id, detail)]
    assert [(n["kind"], n["bucket"], n["key"], n["job_id"], n["outcome"], n["detail"]) for n in notifier.sent] == [
        ("possible_loss", INTAKE, "k.txt", "job-1", "possible_loss",
         f"{detail}; once dealt with: cosguard ledger ack {entry.loss_id} --bucket {INTAKE}")]


def test_a_loss_the_ledger_refuses_is_still_logged_and_notified(monkeypatch):
    world, notifier = World(), Notifier()

    def refused(*args, **kwargs):
        raise CloudError("no write access", code="AccessDenied")
    monkeypatch.setattr(world.ledger, "record_loss", refused)
    with logged() as lines:
        removals.report(notifier, world.ledger, INTAKE, "k.txt", 1000, QUARANTINED)
    assert [(line["level"], line["event"], line["bucket"], line["key"], line["job_id"], line["reason"])
            for line in lines[:1]] == [
        ("WARNING", "possible_loss_not_recorded", INTAKE, "k.txt", "job-1", "AccessDenied: no write access")]
    assert [line["event"] for line in lines] == ["possible_loss_not_recorded", "possible_write_loss"]
    detail = removals.describe(INTAKE, "k.txt", 1000, QUARANTINED)
    assert [n["detail"] for n in notifier.sent] == [detail]   # no record: no command to clear one


@pytest.mark.parametrize("code, shown", [("", "CloudError: gone"), ("NoSuchBucket", "NoSuchBucket: gone")])
def test_a_refusal_without_a_code_is_named_by_its_kind(monkeypatch, code, shown):
    world = World()

    def refused(*args, **kwargs):
        raise CloudError("gone", code=code)
    monkeypatch.setattr(world.ledger, "record_loss", refused)
    with logged() as lines:
        assert removals.record(world.ledger, INTAKE, "k.txt", 1000, QUARANTINED, "d", "verdict") == (None, True)
    assert [line["reason"] for line in lines] == [shown]


def test_the_finder_is_recorded_as_given():
    world = World()
    found_id, new = removals.record(world.ledger, INTAKE, "k.txt", 1000, QUARANTINED, "d", "verdict")
    assert new and found_id
    [entry] = world.ledger.loss_entries()
    assert (world.ledger.read_loss(entry) or {}).get("found_by") == "verdict"


# -- removal_after: what the ledger's removed/ records and open jobs say ---------------------------

class _Entry:
    job_id = "job-9"


def test_a_removal_closed_after_the_newer_write_is_not_blamed_for_it(monkeypatch):
    world = World()
    monkeypatch.setattr(world.ledger, "removals_of", lambda bucket, key: iter([{"outcome": "deleted",
                                                                               "closed_at": 3000}]))
    assert removals.removal_after(world.ledger, INTAKE, "k.txt", 1000, until=1500) is None
    assert removals.removal_after(world.ledger, INTAKE, "k.txt", 1000, until=3000) == {"outcome": "deleted",
                                                                                       "closed_at": 3000}


def test_a_key_found_gone_while_one_of_its_jobs_is_open_is_blamed_on_that_job(monkeypatch):
    world = World()
    monkeypatch.setattr(world.ledger, "removals_of", lambda bucket, key: iter([]))
    monkeypatch.setattr(world.ledger, "open_entries_of", lambda bucket, key: iter([_Entry()]))
    assert removals.removal_after(world.ledger, INTAKE, "k.txt", 1000) == {
        "outcome": "acting", "job_id": "job-9", "closed_at": None}
    assert removals.removal_after(world.ledger, INTAKE, "k.txt", 1000, until=2000) is None   # replaced, not gone


def test_removals_that_cannot_be_read_are_reported_as_unknown_and_logged(monkeypatch):
    world = World()

    def unreadable(bucket, key):
        raise CloudError("COS is down", code="ServiceUnavailable")
    monkeypatch.setattr(world.ledger, "removals_of", unreadable)
    with logged() as lines:
        assert removals.removal_after(world.ledger, INTAKE, "k.txt", 1000) == {
            "outcome": "unknown", "job_id": None, "closed_at": None}
    assert [(line["level"], line["event"], line["bucket"], line["key"], line["reason"]) for line in lines] == [
        ("WARNING", "removals_not_checked", INTAKE, "k.txt", "COS is down")]
