"""Issue 20: takeovers are conditional. Two takers of one failed or dead claim (the timer's sweep
and an operator's `reconcile`, or SCF's retry and the sweep) never both act: a takeover goes
through a marker only one can create, and re-reads the claim's generation before writing it
(domain/claims.py). Interleavings are forced by running the second taker at a chosen point of the
first, over HTTP against the local cloud."""
from __future__ import annotations

import time

import pytest

from cosguard.domain.ledger import digest, version_token
from cosguard.errors import SubmissionError
from cosguard.local.samples import eicar
from cosguard.runtime import Runtime
from helpers import Context


class Killed(BaseException):
    """What the function sees of SIGKILL: nothing after this point runs."""


def ledger_keys(s, kind):
    listed = s.cos.list_objects(Bucket=s.jail, Prefix=f".cosguard/{kind}/").get("Contents", [])
    return [item["Key"] for item in listed]


def failed_claim(s, key="in/failed.com"):
    """CI was down for every attempt: a `failed` claim and its retry entry."""
    s.runtime.gateway.backoff.sleep = lambda seconds: None
    s.cloud.ci.faults.error_rate = 1.0
    s.put(key, eicar())
    with pytest.raises(SubmissionError):
        s.scan()
    s.cloud.ci.faults.error_rate = 0.0
    info = s.runtime.gateway.head(s.intake, key)
    return f".cosguard/jobs/{digest(s.intake, key, version_token(info))}.json"


def two_takers(s):
    """Two processes' ledgers of the same state bucket (e.g. the sweep function and a laptop)."""
    first = s.runtime.scanner.ledger(s.intake)
    second = Runtime.from_env(s.env).scanner.ledger(s.intake)
    return first, second


def test_of_two_takers_who_read_the_same_failed_claim_only_the_first_takes_it(stack):
    s = stack()
    key = failed_claim(s)
    first, second = two_takers(s)
    seen_first, seen_second = first.read_claim(key), second.read_claim(key)
    assert seen_first.standing.value == seen_second.standing.value == "submission failed"
    assert first.take_over(seen_first, 30) is not None
    assert second.take_over(seen_second, 30) is None   # the generation it read is gone
    assert first.read_claim(key).entry.state == "submitting"
    assert ledger_keys(s, "takeovers") == []


def test_a_taker_that_finds_another_mid_takeover_backs_off(stack):
    s = stack()
    key = failed_claim(s)
    first, second = two_takers(s)
    seen_first, seen_second = first.read_claim(key), second.read_claim(key)
    outcomes = []
    reread = first.generation

    def second_arrives_now(name):   # between the first's marker and its re-read of the claim
        outcomes.append(second.take_over(seen_second, 30))
        return reread(name)
    first.generation = second_arrives_now
    outcomes.append(first.take_over(seen_first, 30))
    assert [o is not None for o in outcomes] == [False, True]
    assert ledger_keys(s, "takeovers") == []


def test_a_marker_whose_taker_died_is_passed_over_once_its_time_is_up(stack):
    s = stack()
    key = failed_claim(s)
    first, second = two_takers(s)
    seen_first, seen_second = first.read_claim(key), second.read_claim(key)
    write = first._write

    def dies_before_writing_the_claim(name, doc, if_absent=False):
        if name == key:
            raise Killed()
        write(name, doc, if_absent=if_absent)
    first._write = dies_before_writing_the_claim
    with pytest.raises(Killed):
        first.take_over(seen_first, 30)
    assert len(ledger_keys(s, "takeovers")) == 1      # its marker, left behind
    assert second.take_over(seen_second, 30) is None   # its maker may still be writing
    s.cloud.cos.clock_offset = 120                     # it is not: a minute passes on COS's clock
    assert second.take_over(seen_second, 30) is not None
    assert ledger_keys(s, "takeovers") == []


def test_two_sweeps_that_find_the_same_dead_holder_submit_it_once(stack):
    """The timer's sweep reads a claim whose holder died; before it acts, an operator's reconcile
    runs from start to end. CI gets one job, and the upload its one verdict."""
    s = stack()
    gateway = s.runtime.gateway
    submit, gateway.submit_virus_job = gateway.submit_virus_job, lambda *a, **k: (_ for _ in ()).throw(Killed())
    s.put("in/died.com", eicar())
    with pytest.raises(Killed):
        s.scan_handler(s.take_events(), Context(time_limit_ms=1000))
    gateway.submit_virus_job = submit
    s.cloud.cos.clock_offset = 60   # a minute later, its lease is over (on COS's clock and on theirs)
    operator_runtime = Runtime.from_env(s.env)
    operator = operator_runtime.sweeper
    timer = s.runtime_of(s.sweep_handler)
    for runtime in (operator_runtime, timer):
        runtime.scanner.clock = runtime.verdicts.clock = runtime.sweeper.clock = lambda: time.time() + 60
    reports = []
    get_object = timer.gateway.cos.get_object

    def operator_runs_now(*args, **kwargs):   # right after the timer's sweep read the claim
        answer = get_object(*args, **kwargs)
        if "/jobs/" in kwargs.get("Key", "") and not reports:
            reports.append(operator.sweep().as_dict())
        return answer
    timer.gateway.cos.get_object = operator_runs_now
    reports.append(s.sweep())
    assert s.jobs_created() == 1
    assert sorted(str(r["resubmitted"]) for r in reports) == ["{'pending': 1}", "{'submitted': 1}"]
    s.settle()
    assert not s.exists("in/died.com") and len(s.quarantined("in/died.com")) == 1
