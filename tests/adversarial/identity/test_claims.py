"""Issue 9, attacks 5 and 10: no claim is stranded, even when the process holding it dies."""
from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from cosguard.domain.ledger import version_token
from cosguard.domain.seal import sealer_for
from cosguard.domain.security import callback_url, object_ref
from cosguard.errors import SubmissionError
from cosguard.local.samples import eicar
from helpers import Context


class Killed(BaseException):
    """What the function sees of SIGKILL: nothing after this point runs (no except Exception)."""


def _url(stack, key):
    """The callback URL cosguard gave CI for the current upload of `key` (bound to it, expiring)."""
    runtime = stack.runtime(stack._callback)
    ref = object_ref(stack.intake, key, version_token(runtime.gateway.head(stack.intake, key)))
    return callback_url(stack.callback_server.url, sealer_for(runtime.settings), stack.intake, ref,
                        int(time.time()) + 3600)


def _callback_event(stack, job_id, key):
    query = {k: v[0] for k, v in parse_qs(urlsplit(_url(stack, key)).query).items()}
    body = f"<Response><JobsDetail><JobId>{job_id}</JobId></JobsDetail></Response>"
    return {"httpMethod": "POST", "path": "/", "headers": {"content-type": "application/xml"},
            "queryString": query, "body": body, "isBase64Encoded": False}


def test_a_scan_killed_between_claim_and_submit_is_retried_then_swept(stack):
    runtime = stack.runtime(stack.scan_handler)
    stack.put("stranded.com", eicar())
    event = stack.take_events()
    submit = runtime.gateway.submit_virus_job

    def killed(*args, **kwargs):
        raise Killed()
    runtime.gateway.submit_virus_job = killed
    with pytest.raises(Killed):
        stack.scan(event, Context(time_limit_ms=1500))  # the claim's lease ends with this deadline
    runtime.gateway.submit_virus_job = submit
    with pytest.raises(SubmissionError):  # SCF's retry inside the lease: retryable, never "duplicate"
        stack.scan(event)
    assert stack.sweep()["pending"] == 1  # the holder may be alive: the sweep waits too
    stack.cloud.cos.clock_offset = 60   # a minute passes on COS's clock, which judges leases
    assert stack.sweep()["resubmitted"] == {"submitted": 1}  # its holder died: taken over
    stack.settle()
    assert stack.body("stranded.com") is None and len(stack.quarantined()) == 1


def test_a_failed_submission_that_scf_gave_up_on_is_resubmitted_by_the_sweep(stack):
    stack.runtime(stack.scan_handler).gateway.backoff.sleep = lambda seconds: None
    stack.cloud.ci.faults.error_rate = 1.0
    stack.put("ci-down.com", eicar())
    event = stack.take_events()
    for _ in range(3):  # the first attempt and SCF's two retries
        with pytest.raises(SubmissionError):
            stack.scan(event)
    stack.cloud.ci.faults.error_rate = 0.0
    assert stack.sweep()["resubmitted"] == {"submitted": 1}
    stack.settle()
    assert stack.body("ci-down.com") is None
    assert stack.sweep()["resubmitted"] == {}  # nothing left behind: no retry entry, no claim


def test_a_callback_killed_while_acting_answers_503_until_its_lease_ends(stack):
    stack.cloud.ci.faults.drop_callback_rate = 1.0
    stack.put("acting.com", eicar())
    job_id = stack.scan()["jobs"]["acting.com"]
    stack.settle()
    runtime = stack.runtime(stack._callback)
    copy = runtime.gateway.copy

    def killed(*args, **kwargs):
        raise Killed()
    runtime.gateway.copy = killed
    with pytest.raises(Killed):
        stack._callback(_callback_event(stack, job_id, "acting.com"), Context(time_limit_ms=1500))
    runtime.gateway.copy = copy
    answer = requests.post(_url(stack, "acting.com"),
                           data=_callback_event(stack, job_id, "acting.com")["body"], timeout=10)
    assert answer.status_code == 503  # CI retries it: never 200 "another delivery handled it"
    assert stack.body("acting.com") == eicar()
    stack.cloud.cos.clock_offset = 60   # a minute passes on COS's clock, which judges leases
    answer = requests.post(_url(stack, "acting.com"),
                           data=_callback_event(stack, job_id, "acting.com")["body"], timeout=10)
    assert answer.status_code == 200 and answer.json()["outcome"] == "quarantined"
    assert stack.body("acting.com") is None
