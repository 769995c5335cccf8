"""A backlog longer than one sweep (after a CI outage, every callback lost): the sweep walks `jobs/`
and `retry/` a page at a time, stops dispatching before its deadline, reports that it is partial and
where it stopped, and the next sweep resumes there, round robin: entries that never settle, even a
crowd of them at the head of the listing, starve nothing. Each job is settled once, none skipped.

Deadlines are injected and counted in requests the local cloud answers (each costs one second),
and the sweep takes one entry at a time (COSGUARD_MAX_WORKERS=1), so where it stops does not depend
on the machine's speed; pages of 5 entries (COSGUARD_SWEEP_PAGE_SIZE) make a dozen jobs span pages.
"""
from __future__ import annotations

from collections import Counter

import pytest

from cosguard.cli import main as cli
from cosguard.local.samples import clean_text, eicar
from helpers import Context

PAGE = 5
SETTINGS = {"COSGUARD_SWEEP_PAGE_SIZE": str(PAGE), "COSGUARD_MAX_WORKERS": "1", "COSGUARD_SWEEP_MARGIN_SECONDS": "1"}
FORGED_SEAL = {"_seal": "0" * 64}


class RequestDeadline:
    """A deadline `requests` seconds away on a clock that advances one second with every request the
    local COS and CI answer: the same stop on a fast machine and a loaded one."""

    def __init__(self, cloud, requests: int):
        self.cloud = cloud
        self.requests = requests
        self.start = self.served()

    def served(self) -> int:
        cos = self.cloud.cos.counters.snapshot()
        return (sum(v for k, v in cos.items() if k not in ("bytes_read", "injected"))
                + sum(self.cloud.ci.counters.snapshot().values()))

    def remaining(self) -> float:
        return float(self.requests - (self.served() - self.start))


def job_keys(s):
    listed = s.cos.list_objects(Bucket=s.jail, Prefix=".cosguard/jobs/", MaxKeys=1000).get("Contents", [])
    return sorted(item["Key"] for item in listed)


def round_from(keys, after):
    """The order a sweep visits `keys` in when it resumes after `after`: to the end, then round."""
    keys = sorted(keys)
    return [k for k in keys if k > after] + [k for k in keys if k <= after]


def names(count):
    return [f"b/{i:02d}.com" if i % 3 == 0 else f"b/{i:02d}.txt" for i in range(count)]


def backlog(s, count):
    """`count` uploads (every third EICAR) submitted, CI finished, every callback lost."""
    s.cloud.ci.faults.drop_callback_rate = 1.0
    for name in names(count):
        s.put(name, eicar() if name.endswith(".com") else clean_text())
    s.scan()
    s.settle()
    assert len(job_keys(s)) == count


def sweeper(s):
    """The reconcile function instance's sweeper (its own Runtime, as SCF would run it)."""
    return s.runtime_of(s.sweep_handler).sweeper


def listing(report, kind):
    (progress,) = [p for p in report["progress"] if p["listing"] == kind]
    return progress


def assert_each_verdict_applied_once(s, count):
    for name in names(count):
        if name.endswith(".com"):
            assert not s.exists(name) and len(s.quarantined(name)) == 1, name
        else:
            assert s.tags(name)["cosguard-status"] == "clean", name


def test_a_backlog_longer_than_a_sweep_is_settled_over_several_each_job_once_in_order(stack):
    s = stack(**SETTINGS)
    backlog(s, 12)
    after, runs, applied = "", 0, Counter()
    while job_keys(s):
        runs += 1
        assert runs <= 12, "the backlog never drained"
        before = job_keys(s)
        report = sweeper(s).sweep(deadline=RequestDeadline(s.cloud, 40)).as_dict()
        jobs = listing(report, "jobs")
        settled = set(before) - set(job_keys(s))
        # it resumed where the last sweep stopped and skipped nothing: exactly the next entries
        expected = round_from(before, after)[:jobs["visited"]]
        assert settled == set(expected) and expected, (runs, report)
        assert jobs["resumed_from"] == (after or None) and report["resumed"] == bool(after)
        assert sum(report["applied"].values()) == len(settled) == report["visited"]["jobs"]
        applied.update(report["applied"])
        if job_keys(s):
            assert report["partial"] and not jobs["complete"] and jobs["stopped_at"] == expected[-1], report
        after = jobs["stopped_at"] or ""
    assert runs >= 3                     # the deadline allowed only part of the backlog each time
    assert applied == {"quarantined": 4, "clean": 8}   # nothing settled twice
    assert_each_verdict_applied_once(s, 12)
    # with nothing left a sweep goes all the way round and leaves no place to resume from
    report = sweeper(s).sweep(deadline=RequestDeadline(s.cloud, 40)).as_dict()
    assert not report["partial"] and report["applied"] == {}
    assert sweeper(s).ledgers()[0].sweep_cursor() == {}
    assert not sweeper(s).sweep(deadline=RequestDeadline(s.cloud, 40)).resumed


def test_a_head_of_entries_that_never_settle_does_not_starve_the_rest(stack):
    """More forged `jobs/` entries than a sweep can read sort before every real one (a forged entry
    is read, reported and left, every time): without round robin no run would reach a real job."""
    s = stack(**SETTINGS)
    backlog(s, 4)
    for i in range(20):
        s.put_json(f".cosguard/jobs/00-stuck-{i:02d}.json", {"state": "submitted", **FORGED_SEAL})
    applied = Counter()
    for _ in range(20):
        report = sweeper(s).sweep(deadline=RequestDeadline(s.cloud, 20)).as_dict()
        applied.update(report["applied"])
        assert report["partial"] or not report["applied"]
        if not [k for k in job_keys(s) if "00-stuck" not in k]:
            break
    assert applied == {"quarantined": 2, "clean": 2}
    assert_each_verdict_applied_once(s, 4)


def test_a_deadline_already_almost_gone_dispatches_nothing_and_still_reports(stack):
    s = stack(**SETTINGS)
    backlog(s, 3)
    before, served = job_keys(s), RequestDeadline(s.cloud, 0)
    # the timer's invocation with one second left: less than the margin kept for work in flight
    report = s.sweep_handler({"Type": "Timer"}, Context(time_limit_ms=1000))
    assert report["partial"] and report["visited"] == {"jobs": 0, "retry": 0}, report
    assert report["applied"] == {} and report["pending"] == 0
    assert [p["stopped_at"] for p in report["progress"]] == [None, None]
    assert served.remaining() == 0          # not one request: the report was all it had time for
    assert job_keys(s) == before
    # the next invocation, with time, settles them all
    report = s.sweep_handler({"Type": "Timer"}, Context(time_limit_ms=30000))
    assert not report["partial"] and report["applied"] == {"quarantined": 1, "clean": 2}


def test_failed_submissions_over_several_pages_are_resubmitted_across_sweeps(stack):
    s = stack(**SETTINGS)
    s.runtime.gateway.backoff.sleep = lambda seconds: None
    for name in names(7):
        s.put(name, clean_text())
    s.cloud.ci.faults.error_rate = 1.0
    with pytest.raises(Exception):
        s.scan()
    s.cloud.ci.faults.error_rate = 0.0
    retry_keys = s.cos.list_objects(Bucket=s.jail, Prefix=".cosguard/retry/").get("Contents", [])
    assert len(retry_keys) == 7
    resubmitted, runs = Counter(), 0
    while s.cos.list_objects(Bucket=s.jail, Prefix=".cosguard/retry/").get("Contents"):
        runs += 1
        assert runs <= 10, "failed submissions never drained"
        report = sweeper(s).sweep(deadline=RequestDeadline(s.cloud, 40)).as_dict()
        resubmitted.update(report["resubmitted"])
    assert runs >= 2 and resubmitted == {"submitted": 7}
    s.settle()
    for name in names(7):
        assert s.tags(name)["cosguard-status"] == "clean"


def test_failed_submissions_get_their_share_while_open_jobs_fill_the_sweep(stack):
    """Open jobs alone would take all of every run until the backlog is gone: failed submissions
    waiting in retry/ are kept a quarter of it, so they are resubmitted from the first run."""
    s = stack(**SETTINGS)
    backlog(s, 10)
    s.runtime.gateway.backoff.sleep = lambda seconds: None
    s.put("late/a.txt", clean_text())
    s.put("late/b.txt", clean_text())
    s.cloud.ci.faults.error_rate = 1.0
    with pytest.raises(Exception):
        s.scan()
    s.cloud.ci.faults.error_rate = 0.0
    # a quarter of 80 is more than the one job still in flight when open jobs stop may overrun
    report = sweeper(s).sweep(deadline=RequestDeadline(s.cloud, 80)).as_dict()
    assert not listing(report, "jobs")["complete"] and len(job_keys(s)) > 2, report   # the backlog is still there
    assert report["visited"]["retry"] >= 1 and report["resubmitted"].get("submitted", 0) >= 1, report


def test_each_ledger_gets_its_share_of_a_sweep(stack):
    """Two intake buckets, each its own state bucket, each with a backlog: the first ledger does
    not take the whole run; each gets an equal share of the time left when it starts."""
    s = stack(sources=2, jail=False, **SETTINGS)
    s.cloud.ci.faults.drop_callback_rate = 1.0
    for bucket in s.intakes:
        for name in names(6):
            s.put(name, clean_text(), bucket=bucket)
    s.scan()
    s.settle()
    report = sweeper(s).sweep(deadline=RequestDeadline(s.cloud, 60)).as_dict()
    jobs = [p for p in report["progress"] if p["listing"] == "jobs"]
    assert sorted(p["ledger"] for p in jobs) == sorted(f"{b}/.cosguard/" for b in s.intakes)
    assert all(p["visited"] >= 1 and not p["complete"] for p in jobs), report


def test_reconcile_says_partial_and_resumed_in_json_and_in_its_table(stack, capsys, tmp_path):
    s = stack(**SETTINGS)
    backlog(s, 8)
    first = sweeper(s).sweep(deadline=RequestDeadline(s.cloud, 30)).as_dict()
    stopped = listing(first, "jobs")["stopped_at"]
    assert first["partial"] and stopped
    # an operator's time limit too short to start: partial, in the table
    code, out = table(s, capsys, tmp_path, "reconcile", "--time-limit", "0.5")
    assert code == 0 and "{" not in out
    assert ["looked", "at", "jobs/", "0"] in [line.split() for line in out.splitlines()]
    assert f"partial: the time limit came first in {s.jail}/.cosguard/jobs/ after 0 entries" in out, out
    assert f"resumes after {stopped}" in out or "resumes where the last sweep stopped" in out, out
    # no limit: it resumes where the timer's run stopped, goes round, and finishes the backlog
    code, report, _ = s.cli(capsys, tmp_path, "reconcile")
    assert code == 0 and report["resumed"] and not report["partial"], report
    assert listing(report, "jobs")["resumed_from"] == stopped and listing(report, "jobs")["complete"]
    assert sum(report["applied"].values()) + sum(first["applied"].values()) == 8
    assert job_keys(s) == []


def test_reconcile_table_names_where_it_resumed(stack, capsys, tmp_path):
    s = stack(**SETTINGS)
    backlog(s, 8)
    stopped = listing(sweeper(s).sweep(deadline=RequestDeadline(s.cloud, 30)).as_dict(), "jobs")["stopped_at"]
    code, out = table(s, capsys, tmp_path, "reconcile")
    assert code == 0
    assert f"resumed: {s.jail}/.cosguard/jobs/ from after {stopped}, where the last sweep stopped" in out, out
    assert "partial" not in out


def test_a_forged_cursor_is_not_believed(stack):
    """The sweep's place is sealed like every ledger document: one planted in the same-bucket
    layout (where uploaders write) is reported and ignored, and the sweep starts at the beginning."""
    s = stack(jail=False, **SETTINGS)
    s.cloud.ci.faults.drop_callback_rate = 1.0
    for name in names(3):
        s.put(name, eicar() if name.endswith(".com") else clean_text())
    s.scan()
    s.settle()
    s.take_events()
    s.put_json(".cosguard/sweep/cursor.json", {"jobs": ".cosguard/jobs/~", **FORGED_SEAL}, bucket=s.intake)
    report = s.sweep()
    assert not report["resumed"] and not report["partial"]
    assert f"{s.intake}/.cosguard/sweep/cursor.json" in report["unauthenticated"]
    assert report["applied"] == {"quarantined": 1, "clean": 2}


def table(s, capsys, tmp_path, *argv):
    """`cosguard <argv> --env-file <this deployment>` as a person runs it: (exit code, what it printed)."""
    path = tmp_path / "table.env"
    path.write_text("\n".join(f"{k}={v}" for k, v in s.env.items()) + "\n")
    capsys.readouterr()
    code = cli(list(argv) + ["--env-file", str(path)])
    return code, capsys.readouterr().out
