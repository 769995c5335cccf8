"""Issue 18, item 1: on a versioned intake bucket a verdict is applied to the version it was about,
whatever is current. CI scans a key, not a version, so a job whose version was overwritten before its
verdict may have read either; that version is scanned again pinned to its id (CI's Url input with a
pre-signed GET) and the pinned verdict acts on it by version id. Every outcome is judged per version
in COS: EICAR versions end quarantined, deleted or tagged infected; clean versions are never moved
or deleted; an operator is told where a version was left for a rescan.

Whether CI fetches a Url input with its query (the signature and versionId) is undocumented; the
local CI drops it by default (the worse answer): then the pinned scan fails, and the version is
handled as a failed scan, notified. Both positions are tested."""
from __future__ import annotations

from typing import Dict, List

import pytest

from cosguard.local.samples import clean_text, eicar
from helpers import write_around

KEY = "doc.exe"


def _put(stack, body: bytes) -> str:
    return stack.put(KEY, body)["x-cos-version-id"]


def _upload_v1_then_v2(stack, first: bytes, second: bytes, ci_reads: str) -> tuple:
    """v1 then v2 of KEY, each scanned on its own event. `ci_reads="v1"`: v1's job finishes before
    v2 lands, and its callback is lost (the sweep applies it later); `"v2"`: CI is held until v2
    has landed, so v1's job reads v2's bytes."""
    ci = stack.cloud.ci
    if ci_reads == "v1":
        ci.faults.drop_callback_rate = 1.0
        v1 = _put(stack, first)
        stack.scan()
        stack.settle()
        v2 = _put(stack, second)
        stack.scan()
        stack.settle()
        ci.faults.drop_callback_rate = 0.0
        stack.sweep()          # v1's verdict: not believed, v1 scanned again pinned; v2's applied
    else:
        ci.faults.stuck_jobs = {KEY}
        v1 = _put(stack, first)
        stack.scan()
        v2 = _put(stack, second)
        stack.scan()
        ci.backend.release(KEY)  # both jobs read the key now: v2's bytes
    for _ in range(3):          # verdicts through callbacks, then the pinned job's
        stack.settle()
    return v1, v2


def _pinned_urls_kept(stack) -> None:
    stack.cloud.ci.faults.url_query_dropped = False


def _alerts(stack) -> List[Dict]:
    return [n for n in stack.sink.received if "pinned" in str(n)]


@pytest.mark.parametrize("ci_reads", ["v1", "v2"])
@pytest.mark.parametrize("action", ["move", "delete", "tag"])
def test_an_eicar_overwritten_by_clean_bytes_before_its_verdict_is_handled_by_version(deploy, ci_reads, action):
    stack = deploy(versioned=True, COSGUARD_INFECTED_ACTION=action)
    _pinned_urls_kept(stack)
    v1, v2 = _upload_v1_then_v2(stack, eicar(), clean_text(), ci_reads)
    assert stack.version_body(KEY, v2) == clean_text() and stack.version_tags(KEY, v2)["cosguard-status"] == "clean"
    if action == "move":
        assert stack.version_body(KEY, v1) is None and stack.quarantined_bodies() == [eicar()]
    elif action == "delete":
        assert stack.version_body(KEY, v1) is None and stack.quarantined() == []
    else:
        assert stack.version_body(KEY, v1) == eicar() and stack.version_tags(KEY, v1)["cosguard-status"] == "infected"
    assert stack.body(KEY) == clean_text()
    assert _alerts(stack), stack.sink.received   # v1 was left for a rescan: an operator is told
    stack.cos.delete_object(Bucket=stack.intake, Key=KEY, VersionId=v2)   # v1 is current again
    if action == "tag":
        assert stack.tags(KEY)["cosguard-status"] == "infected"
    else:
        assert stack.body(KEY) is None      # a plain GET never serves the EICAR


@pytest.mark.parametrize("ci_reads", ["v1", "v2"])
def test_clean_bytes_overwritten_by_an_eicar_are_never_moved(deploy, ci_reads):
    stack = deploy(versioned=True)
    _pinned_urls_kept(stack)
    v1, v2 = _upload_v1_then_v2(stack, clean_text(), eicar(), ci_reads)
    assert stack.version_body(KEY, v1) == clean_text() and stack.version_tags(KEY, v1)["cosguard-status"] == "clean"
    assert stack.version_body(KEY, v2) is None and stack.quarantined_bodies() == [eicar()]
    assert stack.body(KEY) == clean_text()  # removing v2 made v1 current again: it is clean


@pytest.mark.parametrize("failed_action", ["tag", "quarantine"])
def test_when_ci_drops_the_pinned_urls_query_the_version_is_a_failed_scan_and_notified(deploy, failed_action):
    """The local CI's default: the pre-signed URL loses its signature, the pinned job fails."""
    stack = deploy(versioned=True, COSGUARD_FAILED_ACTION=failed_action)
    assert stack.cloud.ci.faults.url_query_dropped
    v1, v2 = _upload_v1_then_v2(stack, eicar(), clean_text(), "v2")
    assert stack.version_body(KEY, v2) == clean_text()
    if failed_action == "quarantine":
        assert stack.version_body(KEY, v1) is None and stack.quarantined_bodies() == [eicar()]
    else:
        assert stack.version_tags(KEY, v1)["cosguard-status"] == "error"
    assert _alerts(stack)
    failed = [n for n in stack.sink.received if "ResourceDownloadFailed" in str(n)]
    assert failed, stack.sink.received


def test_a_version_exposed_by_a_promotion_is_scanned(deploy):
    """Fail-closed mode: promoting v2 removes it from intake, making an unscanned v1 current (here
    a version written while no trigger ran): v1 is scanned like an upload of its own."""
    stack = deploy(versioned=True, COSGUARD_CLEAN_DESTINATION="/released/")
    v1 = _put(stack, eicar())
    stack.take_events()                   # v1's event never reached cosguard
    _put(stack, clean_text())
    stack.scan()
    for _ in range(3):
        stack.settle()
    assert stack.body(f"released/{KEY}") == clean_text()
    assert stack.version_body(KEY, v1) is None and stack.quarantined_bodies() == [eicar()]
    assert stack.body(KEY) is None


def test_a_clean_old_version_is_tagged_not_promoted_over_the_newer_write(deploy):
    stack = deploy(versioned=True, COSGUARD_CLEAN_DESTINATION="/released/")
    _pinned_urls_kept(stack)
    v1, _ = _upload_v1_then_v2(stack, clean_text(), b"a newer clean write", "v1")
    # the sweep applies both verdicts at once: v1's may find v2's promotion holding the destination's
    # lock (503) and is then applied by the next sweep (test_promotion_order.py orders them exactly)
    stack.sweep()
    stack.settle()
    assert stack.body(f"released/{KEY}") == b"a newer clean write"
    assert stack.version_tags(KEY, v1)["cosguard-status"] == "clean"


def test_a_stale_promotion_removes_its_destination_copy(deploy):
    """Unversioned, fail-closed: the intake object is overwritten between the promotion's copy and
    its removal of the original; the copy of the older write is taken back, the newer write is
    promoted by its own verdict."""
    stack = deploy(COSGUARD_CLEAN_DESTINATION="/released/")
    stack.cloud.ci.faults.drop_callback_rate = 1.0
    stack.put(KEY, clean_text())
    stack.scan()
    stack.settle()
    gateway = stack.runtime(stack.sweep_handler).gateway
    write_around(gateway, "copy", lambda: stack.put(KEY, b"the uploader's newer file"), after=True)
    assert stack.sweep()["applied"] == {"stale": 1}
    assert not stack.cos.object_exists(Bucket=stack.intake, Key=f"released/{KEY}")
    assert stack.body(KEY) == b"the uploader's newer file"
    assert any("was removed" in str(n) for n in stack.sink.received), stack.sink.received
    stack.cloud.ci.faults.drop_callback_rate = 0.0
    stack.scan()
    stack.settle()
    assert stack.body(f"released/{KEY}") == b"the uploader's newer file"


def test_a_version_whose_submission_failed_and_was_overwritten_is_submitted_pinned(deploy):
    """CI was down for v1's submission (a retry entry); v2 landed before the sweep: v1 is still
    there by its id, and the sweep submits it pinned instead of dropping it."""
    from cosguard.errors import SubmissionError
    stack = deploy(versioned=True)
    _pinned_urls_kept(stack)
    stack.runtime(stack.scan_handler).gateway.backoff.sleep = lambda seconds: None
    stack.cloud.ci.faults.error_rate = 1.0
    v1 = _put(stack, eicar())
    with pytest.raises(SubmissionError):
        stack.scan()
    stack.cloud.ci.faults.error_rate = 0.0
    v2 = _put(stack, clean_text())
    stack.scan()
    assert stack.sweep()["resubmitted"] == {"submitted": 1}
    for _ in range(2):
        stack.settle()
    assert stack.version_body(KEY, v1) is None and stack.quarantined_bodies() == [eicar()]
    assert stack.version_body(KEY, v2) == clean_text() and stack.version_tags(KEY, v2)["cosguard-status"] == "clean"
    assert stack.sweep()["resubmitted"] == {}


class Killed(BaseException):
    """What the function sees of SIGKILL: nothing after this point runs."""


def test_a_version_whose_submitter_died_and_was_overwritten_is_submitted_pinned(deploy):
    """v1's submitter died between its claim and CI's submission; v2 landed before the sweep took
    the claim over: v1 is submitted pinned to its version, never closed `stale` unscanned."""
    from cosguard.domain.ledger import CLAIM_LEASE_SECONDS
    stack = deploy(versioned=True)
    _pinned_urls_kept(stack)
    gateway = stack.runtime(stack.scan_handler).gateway
    submit = gateway.submit_virus_job

    def killed(*args, **kwargs):
        raise Killed()
    gateway.submit_virus_job = killed
    v1 = _put(stack, eicar())
    with pytest.raises(Killed):
        stack.scan()
    gateway.submit_virus_job = submit
    v2 = _put(stack, clean_text())
    stack.scan()
    stack.settle()
    # the sweep runs after the dead holder's lease (COS's clock, which judges it, moved past it)
    stack.cloud.cos.clock_offset = CLAIM_LEASE_SECONDS + 60
    assert stack.sweep()["resubmitted"] == {"submitted": 1}
    for _ in range(2):
        stack.settle()
    assert stack.version_body(KEY, v1) is None and stack.quarantined_bodies() == [eicar()]
    assert stack.version_body(KEY, v2) == clean_text() and stack.version_tags(KEY, v2)["cosguard-status"] == "clean"


def test_a_pinned_scan_ci_refuses_for_good_leaves_the_version_tagged_error_and_notified(deploy):
    """CI answers the pinned submission with a permanent 4xx: the version cannot be scanned pinned,
    so it is closed `stale`, tagged `error` and an operator is told it was left unscanned."""
    from cosguard.errors import CloudPermanentError
    stack = deploy(versioned=True)
    gateway = stack.runtime(stack.sweep_handler).gateway

    submit = gateway.submit_virus_job

    def refused(*args, **kwargs):   # the pinned submission only
        if not kwargs.get("pinned"):
            return submit(*args, **kwargs)
        raise CloudPermanentError("SubmitVirusJob: 400 InvalidArgument", code="InvalidArgument", status=400)
    gateway.submit_virus_job = refused
    stack.cloud.ci.faults.drop_callback_rate = 1.0
    v1 = _put(stack, eicar())
    stack.scan()
    stack.settle()
    _put(stack, clean_text())
    stack.scan()
    stack.settle()
    assert stack.sweep()["applied"] == {"stale": 1, "clean": 1}
    assert stack.version_tags(KEY, v1)["cosguard-status"] == "error"
    left = [n for n in stack.sink.received if "left unscanned" in str(n)]
    assert len(left) == 1 and KEY in str(left[0])
