"""The ledger's state classification (domain/states.py): pure functions of a document and its
Stamp, so every reading of a claim or retry entry is decided the same way everywhere."""
from __future__ import annotations

import pytest

from cosguard.domain.states import (
    LEASE_MARGIN_SECONDS,
    RETRY_BASE_SECONDS,
    RETRY_CAP_SECONDS,
    RetryState,
    Standing,
    classify,
    lease_over,
    retry_delay,
    retry_due,
    retry_state,
)
from cosguard.infra.clock import Stamp

WRITTEN = 1_800_000_000


def stamp(age):
    return Stamp(etag="e", last_modified=WRITTEN, server_time=WRITTEN + age)


@pytest.mark.parametrize("state, age, expected", [
    ("submitted", 10 ** 6, Standing.WAITING),
    ("submitting", 30 + LEASE_MARGIN_SECONDS, Standing.SUBMITTING),
    ("submitting", 31 + LEASE_MARGIN_SECONDS, Standing.ORPHANED),
    ("failed", 0, Standing.FAILED),
    ("anything else", 0, Standing.FAILED),   # blocks nobody; the sweep resubmits the upload
])
def test_a_claim_stands_by_its_state_and_its_lease_on_cos_s_clock(state, age, expected):
    # written with a clock a day off: only the lease's length (30 s) counts, never its end
    assert classify(state, 5_000.0, 5_030.0, stamp(age), now=10 ** 10) is expected


def test_without_cos_s_times_the_reader_s_clock_decides():
    assert lease_over(100.0, 130.0, Stamp(), now=130.0 + LEASE_MARGIN_SECONDS + 1)
    assert not lease_over(100.0, 130.0, Stamp(), now=131.0)
    assert lease_over(100.0, "soon", stamp(0))   # not a claim's shape: blocks nobody


@pytest.mark.parametrize("doc, expected", [
    ({"retryable": True}, RetryState.RETRYING),
    ({"retryable": False, "reason": "BucketNotBound: not bound"}, RetryState.REFUSED),
    ({"retryable": False, "reason": "CI's object differs from the recorded one (CI names 'x')"}, RetryState.HELD),
    ({"retryable": False, "reason": "the entry for job j cannot be read (x): a human must look"}, RetryState.HELD),
    ({"retryable": False, "state": "held"}, RetryState.HELD),
    ({"retryable": True, "state": "bogus"}, RetryState.RETRYING),
])
def test_retry_entries_from_before_and_after_states_were_written(doc, expected):
    assert retry_state(doc) is expected


def test_refused_submissions_back_off_doubling_up_to_a_cap():
    assert [retry_delay(n) for n in (1, 2, 3)] == [RETRY_BASE_SECONDS, 2 * RETRY_BASE_SECONDS, 4 * RETRY_BASE_SECONDS]
    assert retry_delay(50) == RETRY_CAP_SECONDS
    refused = {"retryable": False, "state": "refused", "retry_after": 600}
    assert not retry_due(refused, stamp(599)) and retry_due(refused, stamp(600))
    assert retry_due({"retryable": False}, stamp(0))            # an old entry: due at once
    assert not retry_due({"state": "held"}, stamp(10 ** 6))    # a human must look
