"""Interrupting a backfill and resuming it from its checkpoint: only the rest is processed and no
object gets a second job, whether the interruption fell between pages or in the middle of one."""
from __future__ import annotations

import collections
import json
import threading

import pytest

from backfill_support import mixed
from cosguard.bulk.backfill import Backfill, BackfillError, Options


def _jobs_per_key(stack):
    return collections.Counter(j.object_key for j in stack.cloud.ci.backend.jobs.values())


def test_interrupted_mid_page_then_resumed_scans_each_object_once(stack, tmp_path):
    stack.cloud.ci.faults.drop_callback_rate = 1.0  # verdicts are acted on in test_backfill_scan
    stack.seed(mixed(150))
    checkpoint = str(tmp_path / "backfill.json")
    runtime = stack.runtime()
    stop = threading.Event()
    scans = []
    original = runtime.scanner.scan_object

    def counting_scan(*args, **kwargs):  # stop after 2 full pages of 40 and 10 objects of the third
        result = original(*args, **kwargs)
        scans.append(result)
        if len(scans) == 90:
            stop.set()
        return result

    runtime.scanner.scan_object = counting_scan
    pages = []
    first = Backfill(runtime, Options(stack.intake, workers=4, page_size=40, checkpoint=checkpoint),
                     stop=stop, on_page=lambda report, marker: pages.append(dict(marker))).run()

    assert first.interrupted and not first.complete
    assert first.pages == 2 and pages == [{"key": "data/00039.txt"}, {"key": "data/00079.txt"}]
    done = first.counts["submitted"]
    assert first.counts == {"submitted": done} and 90 <= done <= 93   # 90 + what was in flight
    saved = json.loads(open(checkpoint).read())
    assert saved["marker"] == {"key": "data/00079.txt"} and saved["complete"] is False
    assert saved["totals"] == {"submitted": done}

    second = Backfill(stack.runtime(), Options(stack.intake, workers=4, page_size=40, checkpoint=checkpoint,
                                               resume=True)).run()

    assert second.complete and not second.interrupted
    assert second.resumed_from == {"key": "data/00079.txt"}
    assert second.listed == 70                                   # only what came after the checkpoint
    assert second.counts == {"already_scanned": done - 80, "submitted": 150 - done}
    jobs = _jobs_per_key(stack)
    assert len(jobs) == 150 and set(jobs.values()) == {1}         # no object got a second job
    saved = json.loads(open(checkpoint).read())
    assert saved["complete"] is True and saved["totals"] == {"already_scanned": done - 80, "submitted": 150}

    third = Backfill(stack.runtime(), Options(stack.intake, checkpoint=checkpoint, resume=True)).run()
    assert third.complete and third.listed == 0 and third.counts == {}   # a finished checkpoint is done


def test_interrupted_between_pages_resumes_at_the_next_page(stack, tmp_path):
    stack.cloud.ci.faults.drop_callback_rate = 1.0
    stack.seed(mixed(80))
    checkpoint = str(tmp_path / "backfill.json")
    stop = threading.Event()
    first = Backfill(stack.runtime(), Options(stack.intake, page_size=40, checkpoint=checkpoint), stop=stop,
                     on_page=lambda report, marker: stop.set()).run()
    assert first.interrupted and first.pages == 1 and first.counts == {"submitted": 40}
    listings = stack.cloud.cos.counters.snapshot()["GetBucket"]
    second = Backfill(stack.runtime(), Options(stack.intake, page_size=40, checkpoint=checkpoint,
                                               resume=True)).run()
    assert second.counts == {"submitted": 40} and second.listed == 40
    # claims/, jobs/ and retry/ listed once each; one full page and the empty one that ends the listing
    assert stack.cloud.cos.counters.snapshot()["GetBucket"] - listings == 3 + 2
    assert set(_jobs_per_key(stack).values()) == {1} and stack.jobs() == 80


def test_checkpoint_misuse_is_refused_before_any_work(stack, tmp_path):
    runtime = stack.runtime()
    existing = tmp_path / "old.json"
    existing.write_text("{}")
    with pytest.raises(BackfillError) as refused:
        Backfill(runtime, Options(stack.intake, checkpoint=str(existing)))
    assert "--resume" in str(refused.value)
    with pytest.raises(BackfillError) as unreadable:
        Backfill(runtime, Options(stack.intake, checkpoint=str(existing), resume=True))
    assert "not a cosguard backfill checkpoint" in str(unreadable.value)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"format": 1, "bucket": stack.intake, "prefix": "elsewhere/", "marker": {}}))
    with pytest.raises(BackfillError) as mismatch:
        Backfill(runtime, Options(stack.intake, prefix="data/", checkpoint=str(other), resume=True))
    assert "elsewhere/" in str(mismatch.value)
    with pytest.raises(BackfillError) as no_file:
        Backfill(runtime, Options(stack.intake, resume=True))
    assert "--checkpoint" in str(no_file.value)
    assert stack.submits() == 0
