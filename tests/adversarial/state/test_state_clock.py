"""Issue 20, clocks: a lease is written with its holder's clock and read by whoever comes next,
which may be an operator's laptop running `reconcile` or `backfill` twenty minutes off. Leases,
backoffs and ages are judged on COS's clock (how long ago COS says the document was written, from
its answer's Date and the document's Last-Modified), so a skewed clock on either side never takes
over a live claim, and a claim whose holder really died is still taken over. Time passes on COS's
clock through the local COS's clock_offset, never by sleeping."""
from __future__ import annotations

import time
import types

import pytest
import requests

from cosguard.errors import SubmissionError
from cosguard.local.samples import eicar
from helpers import Context

SKEW = 20 * 60


class Killed(BaseException):
    """What the function sees of SIGKILL: nothing after this point runs."""


def killed(*args, **kwargs):
    raise Killed()


def skew(runtime, seconds):
    """Every clock a function instance (or an operator's CLI) reads is `seconds` off."""
    clock = lambda: time.time() + seconds  # noqa: E731
    runtime.scanner.clock = runtime.verdicts.clock = runtime.sweeper.clock = clock


def died_submitting(s, key):
    """The scan's instance dies between its claim (lease: its 30 s deadline) and CI's submission."""
    gateway = s.runtime.gateway
    submit, gateway.submit_virus_job = gateway.submit_virus_job, killed
    s.put(key, eicar())
    event = s.take_events()
    try:
        with pytest.raises(Killed):
            s.scan_handler(event, Context(time_limit_ms=30000))
    finally:
        gateway.submit_virus_job = submit
    return event


@pytest.mark.parametrize("who", ["sweep 20 min fast", "holder 20 min slow"])
def test_a_live_claim_is_not_taken_over_by_a_skewed_clock(stack, who):
    s = stack()
    if who == "holder 20 min slow":
        skew(s.runtime, -SKEW)   # its lease ends, by the others' clocks, before it was written
    died_submitting(s, "in/live.com")
    if who == "sweep 20 min fast":
        skew(s.runtime_of(s.sweep_handler), SKEW)
    report = s.sweep()
    assert report["resubmitted"] == {} and report["pending"] == 1   # the holder may be alive
    assert report["overdue"] == []   # nor is a fresh claim overdue by a fast clock
    assert s.jobs_created() == 0
    s.cloud.cos.clock_offset = 60   # its deadline passes on COS's clock: the holder surely died
    assert s.sweep()["resubmitted"] == {"submitted": 1}
    s.settle()
    assert not s.exists("in/live.com") and len(s.quarantined("in/live.com")) == 1


def test_a_redelivered_event_on_a_fast_instance_does_not_take_over_a_live_claim(stack):
    s = stack()
    event = died_submitting(s, "in/live.com")
    skew(s.runtime, SKEW)   # SCF's retry lands on an instance whose clock is fast
    with pytest.raises(SubmissionError, match="being submitted by another invocation"):
        s.scan_handler(event, Context())
    assert s.jobs_created() == 0


def test_a_live_action_claim_is_not_taken_over_by_a_fast_clock(stack):
    s = stack()
    s.cloud.ci.faults.drop_callback_rate = 1.0
    s.put("in/acting.com", eicar())
    job_id = s.scan()["jobs"]["in/acting.com"]
    s.settle()
    url = s.cloud.ci.backend.jobs[job_id].callback
    body = f"<Response><JobsDetail><JobId>{job_id}</JobId></JobsDetail></Response>"
    runtime = s.runtime_of(s.callback_handler)
    copy, runtime.gateway.copy = runtime.gateway.copy, killed
    with pytest.raises(Killed):   # dies while acting: its action claim stays `acting`
        s.callback_handler({"httpMethod": "POST", "path": "/", "headers": {"content-type": "application/xml"},
                            "queryString": dict(p.split("=", 1) for p in url.split("?", 1)[1].split("&")),
                            "body": body, "isBase64Encoded": False}, Context())
    runtime.gateway.copy = copy
    skew(runtime, SKEW)   # CI's retry reaches an instance whose clock is fast
    assert requests.post(url, data=body, timeout=10).status_code == 503
    assert s.exists("in/acting.com")
    s.cloud.cos.clock_offset = 400   # the action lease (at most 300 s) passes on COS's clock
    answer = requests.post(url, data=body, timeout=10)
    assert answer.status_code == 200 and answer.json()["outcome"] == "quarantined"


def test_a_refused_submission_is_not_due_early_by_a_fast_clock(stack):
    s = stack()
    s.cloud.ci.faults.unbound_buckets.add(s.intake)
    s.put("in/refused.exe", eicar())
    s.scan()
    s.cloud.ci.faults.unbound_buckets.clear()
    skew(s.runtime_of(s.sweep_handler), SKEW)
    assert s.sweep()["resubmitted"] == {}
    assert s.jobs_created() == 0


def test_status_on_a_fast_laptop_reports_no_fresh_job_overdue(stack, capsys, tmp_path, monkeypatch):
    s = stack(COSGUARD_PENDING_OVERDUE_SECONDS="600")
    s.cloud.ci.faults.stuck_jobs = True
    s.put("in/slow.txt", b"x")
    s.scan()
    laptop = types.SimpleNamespace(time=lambda: time.time() + SKEW, strftime=time.strftime, gmtime=time.gmtime)
    monkeypatch.setattr("cosguard.cli.ops.time", laptop)   # the operator's clock, and only theirs
    code, status, _ = s.cli(capsys, tmp_path, "status")
    assert status["oldest_pending"]["age_seconds"] < 600 and code == 0
    s.cloud.cos.clock_offset = 601
    code, status, _ = s.cli(capsys, tmp_path, "status")
    assert status["oldest_pending"]["age_seconds"] > 600 and code == 1
