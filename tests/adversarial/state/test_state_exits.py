"""Issue 20: every ledger state has a way out (docs/ledger-states.md). A submission CI refuses for
good (its bucket not bound: 400 BucketNotBound) is submitted again with backoff once an operator
binds the bucket, and dropped, with a record, when its object is deleted or overwritten; a held
failure (a human must look) is dropped the same way; an action claim is deleted once its verdict
is acted on, and a redelivered callback still acts only once; `status` counts a refused upload
once, as an error. Time passes on COS's clock (the local COS's clock_offset), never by sleeping."""
from __future__ import annotations

import json

import pytest
import requests

from cosguard.domain.states import RETRY_BASE_SECONDS
from cosguard.local.samples import clean_text, eicar


def ledger(s, kind):
    """The state bucket's documents of one kind (`jobs`, `retry`, `actions`, ...)."""
    listed = s.cos.list_objects(Bucket=s.jail, Prefix=f".cosguard/{kind}/").get("Contents", [])
    return [item["Key"] for item in listed]


def refused(stack, key="in/refused.exe", body=None):
    """An upload CI refused for good: its bucket is not bound to CI."""
    s = stack()
    s.cloud.ci.faults.unbound_buckets.add(s.intake)
    s.put(key, body if body is not None else eicar())
    assert s.scan()["counts"] == {"error": 1}
    assert s.tags(key)["cosguard-status"] == "error"
    return s


def pass_time(s, seconds):
    """`seconds` pass on COS's clock (which judges leases and backoffs) without waiting."""
    s.cloud.cos.clock_offset += seconds


def test_a_refused_submission_is_submitted_by_the_next_due_sweep_once_the_bucket_is_bound(stack):
    s = refused(stack)
    report = s.sweep()   # not due yet: reported, not submitted again
    [waiting] = report["unresolved"]
    assert waiting["key"] == "in/refused.exe" and waiting["state"] == "refused"
    assert 0 < waiting["next_attempt_seconds"] <= RETRY_BASE_SECONDS
    assert s.jobs_created() == 0
    s.cloud.ci.faults.unbound_buckets.clear()   # the operator binds the bucket to CI
    assert s.sweep()["resubmitted"] == {}        # still waiting out its backoff
    pass_time(s, RETRY_BASE_SECONDS + 1)
    report = s.sweep()
    assert report["resubmitted"] == {"submitted": 1} and report["unresolved"] == []
    s.settle()
    assert not s.exists("in/refused.exe") and len(s.quarantined("in/refused.exe")) == 1   # its verdict
    assert ledger(s, "retry") == [] and ledger(s, "jobs") == [] and ledger(s, "actions") == []
    report = s.sweep()
    assert (report["unresolved"], report["resubmitted"], report["applied"], report["pending"]) == ([], {}, {}, 0)


def test_a_submission_refused_again_backs_off_longer(stack):
    s = refused(stack)
    pass_time(s, RETRY_BASE_SECONDS + 1)
    report = s.sweep()   # due, and refused again: counted, reported, backed off twice as long
    assert report["resubmitted"] == {"error": 1}
    assert [u["state"] for u in report["unresolved"]] == ["refused"]
    [entry] = ledger(s, "retry")
    doc = json.loads(s.body(entry, bucket=s.jail))
    assert doc["state"] == "refused" and doc["attempts"] == 2 and doc["retry_after"] == 2 * RETRY_BASE_SECONDS
    pass_time(s, RETRY_BASE_SECONDS + 1)
    assert s.sweep()["resubmitted"] == {}   # not due before twice the first wait
    assert s.cloud.ci.counters.snapshot().get("SubmitVirusJob") == 2


def test_a_refused_submission_whose_object_is_deleted_is_dropped_with_a_record(stack):
    s = refused(stack)
    s.cos.delete_object(Bucket=s.intake, Key="in/refused.exe")
    report = s.sweep()
    assert report["unresolved"] == [] and report["resubmitted"] == {"gone": 1}
    [dropped] = report["dropped"]
    assert dropped["key"] == "in/refused.exe" and dropped["state"] == "refused"
    assert "BucketNotBound" in dropped["reason"] and "no longer exists" in dropped["why"]
    assert ledger(s, "retry") == [] and ledger(s, "jobs") == []
    assert s.sweep()["dropped"] == []


def test_a_refused_submission_whose_object_is_overwritten_is_dropped(stack):
    s = refused(stack)
    s.cloud.ci.faults.unbound_buckets.clear()
    s.put("in/refused.exe", clean_text())   # its own event scans the new upload
    assert s.scan()["counts"] == {"submitted": 1}
    report = s.sweep()
    assert [d["why"] for d in report["dropped"]] == ["the object was overwritten since"]
    assert report["unresolved"] == [] and ledger(s, "retry") == []
    s.settle()
    assert s.tags("in/refused.exe")["cosguard-status"] == "clean"
    assert ledger(s, "jobs") == []


def test_a_held_failure_is_reported_until_its_object_is_gone(stack, monkeypatch):
    """CI answers under another key (test_xml_keys): the upload was not scanned and a human must
    look. Every sweep says so, without scanning it again; once the object is deleted, it is dropped."""
    s = stack()
    s.cloud.ci.faults.drop_callback_rate = 1.0
    s.put("in/other.exe", eicar())
    s.scan()
    s.cloud.ci.faults.answer_overrides = {"in/other.exe": {"Object": "in/elsewhere.exe"}}
    s.settle()
    assert s.sweep()["applied"] == {"error": 1}
    for _ in range(2):
        [held] = s.sweep()["unresolved"]
        assert held["key"] == "in/other.exe" and held["state"] == "held"
    assert s.jobs_created() == 1
    s.cos.delete_object(Bucket=s.intake, Key="in/other.exe")
    report = s.sweep()
    assert report["unresolved"] == [] and [d["state"] for d in report["dropped"]] == ["held"]
    assert ledger(s, "retry") == []


def test_a_quarantined_refused_submission_leaves_no_claim(stack):
    s = stack(COSGUARD_SUBMIT_FAILED_ACTION="quarantine")
    s.cloud.ci.faults.unbound_buckets.add(s.intake)
    s.put("in/refused.exe", eicar())
    s.scan()
    assert not s.exists("in/refused.exe") and len(s.quarantined("in/refused.exe")) == 1
    assert ledger(s, "jobs") == [] and ledger(s, "retry") == []


def test_status_counts_a_refused_upload_once_as_an_error(stack, capsys, tmp_path):
    s = refused(stack)
    code, status, _ = s.cli(capsys, tmp_path, "status")
    assert status["counts"] == {"error": 1}   # was {"pending": 1, "error": 1}
    assert status["oldest_pending"] is None   # no job exists to be overdue
    assert [r["handled"] for r in status["handled"]] == ["submission refused: submitted again with backoff"]
    assert code == 0


def test_action_claims_are_deleted_and_a_redelivered_callback_acts_once(stack):
    s = stack()
    s.cloud.ci.faults.duplicate_callback_rate = 1.0   # every callback arrives twice
    s.put("in/evil.com", eicar())
    s.put("in/fine.txt", clean_text())
    jobs = s.scan()["jobs"]
    s.settle()
    assert ledger(s, "actions") == []
    assert len(s.quarantined("in/evil.com")) == 1
    # CI delivers the callback once more, long after
    url = s.cloud.ci.backend.jobs[jobs["in/evil.com"]].callback
    body = f"<Response><JobsDetail><JobId>{jobs['in/evil.com']}</JobId></JobsDetail></Response>"
    answer = requests.post(url, data=body, timeout=10)
    assert answer.status_code == 200 and answer.json()["outcome"] == "already_done"
    assert len(s.quarantined("in/evil.com")) == 1 and ledger(s, "actions") == []
    assert s.tags("in/fine.txt")["cosguard-status"] == "clean"


def test_a_job_ci_forgot_is_closed_as_resubmit_and_scanned_again(stack, capsys, tmp_path):
    s = stack()
    s.cloud.ci.faults.drop_callback_rate = 1.0
    s.put("in/lost.com", eicar())
    s.scan()
    s.settle()
    s.cloud.ci.backend.reset()   # CI no longer knows the job (404 NoSuchJob on query)
    s.cloud.ci.faults.drop_callback_rate = 0.0
    report = s.sweep()
    assert report["applied"] == {"resubmit": 1} and report["resubmitted"] == {"submitted": 1}
    s.settle()
    assert not s.exists("in/lost.com")
    code, status, _ = s.cli(capsys, tmp_path, "status")
    assert {"status": "resubmit", "handled": "CI lost the job: submitted again", "count": 1} in status["handled"]


@pytest.mark.parametrize("what", ["gone", "overwritten"])
def test_a_claim_whose_holder_died_is_closed_when_its_object_changed(stack, what):
    s = stack()
    gateway = s.runtime.gateway
    submit = gateway.submit_virus_job

    class Killed(BaseException):
        pass

    def killed(*args, **kwargs):
        raise Killed()
    gateway.submit_virus_job = killed
    s.put("in/died.txt", b"first")
    with pytest.raises(Killed):
        s.scan()
    gateway.submit_virus_job = submit
    if what == "gone":
        s.cos.delete_object(Bucket=s.intake, Key="in/died.txt")
    else:
        s.put("in/died.txt", b"second")
    s.take_events()
    assert s.sweep()["pending"] == 1   # its lease may still run
    pass_time(s, 60)
    assert s.sweep()["resubmitted"] == {"gone" if what == "gone" else "stale": 1}
    assert ledger(s, "jobs") == [] and s.jobs_created() == 0


def test_a_failed_claim_without_a_retry_entry_is_submitted_again(stack, capsys, tmp_path):
    """Its retry entry lost (or never written by an older release): the sweep gives it one, and the
    same run submits it; `status` counted it as one error meanwhile."""
    from cosguard.errors import SubmissionError
    s = stack()
    s.runtime.gateway.backoff.sleep = lambda seconds: None
    s.cloud.ci.faults.error_rate = 1.0
    s.put("in/orphan.com", eicar())
    with pytest.raises(SubmissionError):
        s.scan()
    s.cloud.ci.faults.error_rate = 0.0
    for key in ledger(s, "retry"):
        s.cos.delete_object(Bucket=s.jail, Key=key)
    code, status, _ = s.cli(capsys, tmp_path, "status")
    assert status["counts"] == {"error": 1} and status["oldest_pending"] is None
    assert s.sweep()["resubmitted"] == {"submitted": 1}
    s.settle()
    assert not s.exists("in/orphan.com") and ledger(s, "jobs") == [] and ledger(s, "retry") == []
