"""An uploader against rescans: tags and metadata never date a verdict nor exempt an object, and a
rescan job's callback is bound to its own object."""
from __future__ import annotations

import time

import requests

from cosguard.bulk.rescan import Rescan, RescanOptions
from helpers import settle_ci


def _scan(stack, items):
    stack.seed(items)
    _, report = stack.backfill(workers=4)
    assert report.counts == {"submitted": len(items)}
    settle_ci(stack.cloud.ci, 30)


def _rescan(stack, before):
    return Rescan(stack.runtime(), RescanOptions(bucket=stack.intake, before=before, workers=2)).run()


def _tag(stack, key, tags):
    stack.cos.put_object_tagging(Bucket=stack.intake, Key=key, Tagging={"TagSet": {"Tag": [
        {"Key": k, "Value": v} for k, v in tags.items()]}})


def test_tags_neither_skip_a_rescan_nor_fake_an_old_verdict(stack):
    _scan(stack, [("a/old.txt", b"old\n"), ("a/new.txt", b"new\n")])
    # the uploader claims a.old is exempt and a.new was verified long ago
    _tag(stack, "a/old.txt", {"cosguard-status": "clean", "cosguard-rescan": "skip", "cosguard-verdict-at": "2999-01-01"})
    _tag(stack, "a/new.txt", {"cosguard-status": "clean", "cosguard-verdict-at": "2000-01-01T00:00:00Z"})
    stack.cos.put_object(Bucket=stack.intake, Key="a/meta.txt", Body=b"unscanned\n",
                         Metadata={"x-cos-meta-cosguard-verdict-at": "2000-01-01", "x-cos-meta-cosguard-status": "clean"})

    report = _rescan(stack, time.time() + 1)     # every real verdict is older than this cut-off
    assert report.counts == {"rescanned": 2, "submitted": 1}   # the metadata's write is scanned as new, not "rescanned"

    settle_ci(stack.cloud.ci, 30)
    earlier = _rescan(stack, time.time() - 3600)  # no real verdict is an hour old: tags say otherwise
    assert earlier.counts == {"not_due": 3}


def test_a_rescan_jobs_callback_cannot_be_replayed_onto_another_object(stack):
    _scan(stack, [("v/victim.txt", b"victim\n"), ("v/other.txt", b"other\n")])
    stack.cloud.ci.faults.drop_callback_rate = 1.0   # the callbacks are sent by hand below
    first_jobs = set(stack.cloud.ci.backend.jobs)
    assert _rescan(stack, time.time() + 1).counts == {"rescanned": 2}
    settle_ci(stack.cloud.ci, 30)
    rescan_jobs = [j for i, j in stack.cloud.ci.backend.jobs.items() if i not in first_jobs]
    victim = next(j for j in rescan_jobs if j.object_key == "v/victim.txt")
    other = next(j for j in rescan_jobs if j.object_key == "v/other.txt")
    assert victim.callback and other.callback
    body = f"<Response><JobsDetail><JobId>{victim.job_id}</JobId></JobsDetail></Response>"

    replayed = requests.post(other.callback, data=body, timeout=10)   # other's URL, victim's rescan job

    assert replayed.status_code == 401 and replayed.json() == {"error": "unauthorized"}
    own = requests.post(victim.callback, data=body, timeout=10)      # its own URL: applied
    assert own.status_code == 200 and own.json()["outcome"] == "clean"
    again = requests.post(victim.callback, data=body, timeout=10)    # a replay: nothing done twice
    assert again.json()["outcome"] == "already_done"


def test_a_planted_rescan_index_entry_is_ignored_and_reported(stack):
    from cosguard.domain.ledger import digest
    from cosguard.domain.rescans import RescanIndex
    _scan(stack, [("p/real.txt", b"real\n")])
    runtime = stack.runtime()
    ledger = runtime.scanner.ledger(stack.intake)
    name = digest(stack.intake, "p/real.txt", "whatever")
    planted = f"{ledger.prefix}rescan-index/20000101T000000.{name}.{'0' * 32}"
    stack.cos.put_object(Bucket=ledger.bucket, Key=planted, Body=b"")

    due = list(RescanIndex(ledger).due(time.time() + 1))

    assert [d.key for d in due if d.key == planted] == []       # only sealed entries are believed
    assert len(due) == 1 and due[0].name != name                 # the real write's own entry
    assert f"{ledger.bucket}/{planted}" in runtime.scanner.sealer.take_rejected()
