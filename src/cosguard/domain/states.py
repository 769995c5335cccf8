"""The ledger's states as enums, and the one classification of a document into a state.

Every value is the string already on disk (`state` of a `jobs/` or `actions/` claim), so documents
written by earlier releases read unchanged. The state diagram, with who makes each transition and
the exit of every state, is in ledger.py's docstring and docs/ledger-states.md.

Time here is COS's: a lease or a backoff is judged by how long ago COS says the document was
written (its Stamp: the answer's `Date` minus the document's `Last-Modified`), against a duration
the writer recorded with its own clock (a difference of two of its own readings, so its skew
cancels). Neither the writer's clock nor the reader's is compared with anyone else's.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

from ..infra.clock import Stamp
from ..infra.records import StrEnum

# COS's Date and Last-Modified have one-second resolution; a lease is over only this much after
# its holder's own deadline, as COS's clock measures it.
LEASE_MARGIN_SECONDS = 5
# A submission CI refused for good (e.g. a bucket not bound to CI, a role without permission) is
# submitted again after RETRY_BASE_SECONDS, doubling each time up to RETRY_CAP_SECONDS: an operator
# who fixes it sees the upload submitted by the next due sweep, and a fault nobody fixes costs one
# CI request per upload every few hours, never one per sweep.
RETRY_BASE_SECONDS = 600
RETRY_CAP_SECONDS = 6 * 3600


class JobState(StrEnum):
    """`state` of a `jobs/<digest>.json` claim: one upload in flight."""

    SUBMITTING = "submitting"   # claimed, no job recorded yet; its lease ends with its holder's deadline
    SUBMITTED = "submitted"     # a CI job is open; its verdict closes it
    FAILED = "failed"           # released after a failure; its `retry/` entry says why


class ActionState(StrEnum):
    """`state` of an `actions/<job id>.json` claim: one delivery acting on a verdict."""

    ACTING = "acting"


class RetryState(StrEnum):
    """What a `retry/<digest>.json` entry asks of the sweep (field `state`; older entries have only
    `retryable`, read by `retry_state`)."""

    RETRYING = "retrying"   # a failure that may heal: submitted again by every sweep
    REFUSED = "refused"     # CI (or COS) refused for good: submitted again with backoff
    HELD = "held"           # a human must look (CI scanned another key, an unreadable entry): reported


class Standing(StrEnum):
    """Where one open `jobs/` claim stands when read: what the sweep does with it and what `status`
    counts it as (`classify`, the one place that decides)."""

    WAITING = "waiting for CI"          # SUBMITTED: the verdict is CI's to give (sweep: query CI)
    SUBMITTING = "being submitted"      # SUBMITTING within its lease (sweep: wait)
    ORPHANED = "holder died"            # SUBMITTING past its lease (sweep: take it over, submit)
    FAILED = "submission failed"        # FAILED (sweep: its retry entry, or the claim itself, resubmits)

    @property
    def pending(self) -> bool:
        """Counted as `pending` (the object waits for a verdict); a failed one counts as `error`."""
        return self is not Standing.FAILED


def lease_over(started: Any, lease_until: Any, stamp: Optional[Stamp], now: Optional[float] = None) -> bool:
    """Whether a claim written at `started` with a lease to `lease_until` (both its holder's clock)
    has run out, as COS's clock measures the time since it was written (`stamp`). Only when COS
    gave no times (never, against COS) does the reader's own `now` decide."""
    if not isinstance(lease_until, (int, float)):
        return True   # not a claim's shape: it blocks nobody
    duration = lease_until - started if isinstance(started, (int, float)) and started else None
    age = stamp.age if stamp is not None else None
    if duration is None or age is None:
        return now is not None and now > lease_until + LEASE_MARGIN_SECONDS
    return age > max(0.0, duration) + LEASE_MARGIN_SECONDS


def lease_left(started: Any, lease_until: Any, stamp: Optional[Stamp]) -> int:
    """Seconds until `lease_over` (0 when unknown or over): for messages only."""
    if not isinstance(lease_until, (int, float)) or not isinstance(started, (int, float)):
        return 0
    age = stamp.age if stamp is not None else None
    if age is None:
        return 0
    return max(0, int(max(0.0, lease_until - started) + LEASE_MARGIN_SECONDS - age))


def classify(state: str, started: Any, lease_until: Any, stamp: Optional[Stamp],
             now: Optional[float] = None) -> Standing:
    """The standing of a `jobs/` claim in `state` (any other string is read as `failed`: it blocks
    nobody and the sweep resubmits the upload)."""
    if state == JobState.SUBMITTED.value:
        return Standing.WAITING
    if state == JobState.SUBMITTING.value:
        return Standing.ORPHANED if lease_over(started, lease_until, stamp, now) else Standing.SUBMITTING
    return Standing.FAILED


def retry_state(doc: Mapping[str, Any]) -> RetryState:
    """The state of a `retry/` entry. Entries from before `state` was written: `retryable` ones
    retry; of the others, the two kinds that asked for a human (their reasons say so) are held,
    and every other one was a submission refused for good."""
    try:
        return RetryState(str(doc.get("state")))
    except ValueError:
        pass
    if doc.get("retryable"):
        return RetryState.RETRYING
    reason = str(doc.get("reason") or "")
    if "a human must look" in reason or "differs from the recorded one" in reason:
        return RetryState.HELD
    return RetryState.REFUSED


def retry_delay(attempts: int) -> int:
    """Seconds a refused submission waits after its `attempts`-th failure."""
    return int(min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** max(0, min(attempts, 32) - 1)))


def retry_due(doc: Mapping[str, Any], stamp: Optional[Stamp], now: Optional[float] = None) -> bool:
    """Whether the sweep resubmits this `retry/` entry now: a retrying one always; a refused one
    once its `retry_after` (seconds) has passed since it was written, on COS's clock; a held one
    never."""
    state = retry_state(doc)
    if state is RetryState.RETRYING:
        return True
    if state is RetryState.HELD:
        return False
    wait = doc.get("retry_after")
    if not isinstance(wait, (int, float)) or isinstance(wait, bool):
        return True   # written before backoff existed: due at once, then backed off
    age = stamp.age if stamp is not None else None
    if age is None:
        failed_at = doc.get("failed_at")
        return now is None or not isinstance(failed_at, (int, float)) or now >= failed_at + wait
    return age >= wait


def retry_wait_left(doc: Mapping[str, Any], stamp: Optional[Stamp]) -> int:
    """Seconds until a refused entry is due (for reports)."""
    wait = doc.get("retry_after")
    age = stamp.age if stamp is not None else None
    if not isinstance(wait, (int, float)) or age is None:
        return 0
    return max(0, int(wait - age))


__all__ = ["ActionState", "JobState", "LEASE_MARGIN_SECONDS", "RETRY_BASE_SECONDS", "RETRY_CAP_SECONDS",
           "RetryState", "Standing", "classify", "lease_left", "lease_over", "retry_delay", "retry_due",
           "retry_state", "retry_wait_left"]
