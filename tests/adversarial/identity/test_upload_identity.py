"""Issue 9, attacks 1 and 2: every write is scanned once; a verdict binds only to the write it scanned."""
from __future__ import annotations

from datetime import timedelta

import pytest

from cosguard.bulk.backfill import Backfill, Options
from cosguard.local.samples import clean_text, eicar


def _a_second_after(stack, key: str, earlier) -> None:
    """The current write of `key` gets a Last-Modified one second after `earlier` (COS's resolution
    is one second, docs/how-it-works.md: unversioned buckets): a later write, without waiting for the clock."""
    stack.written_within(key, earlier + timedelta(seconds=1))


def test_identical_bytes_uploaded_again_after_quarantine_are_scanned_and_quarantined_again(stack):
    stack.put("again.com", eicar())
    first = stack.last_modified("again.com")
    assert stack.scan()["counts"] == {"submitted": 1}
    stack.settle()
    assert stack.body("again.com") is None and len(stack.quarantined()) == 1
    stack.put("again.com", eicar(), Tagging="cosguard-status=clean")  # the same bytes, a new write
    _a_second_after(stack, "again.com", first)
    assert stack.scan()["counts"] == {"submitted": 1}
    assert stack.tags("again.com")["cosguard-status"] == "pending"  # the uploader's tag is overwritten
    stack.settle()
    assert stack.body("again.com") is None  # never left in place with the forged `clean`
    assert stack.jobs_created() == 2


@pytest.mark.parametrize("action", ["move", "delete"])
def test_the_same_bytes_written_again_within_the_second_they_were_removed_are_scanned_again(deploy, action):
    """Issue 17, item 5: the removed write's record never answers the new write `duplicate`."""
    stack = deploy(COSGUARD_INFECTED_ACTION=action)
    stack.put("same.com", eicar(), Tagging="cosguard-status=clean")
    removed_at = stack.last_modified("same.com")
    assert stack.scan()["counts"] == {"submitted": 1}
    stack.settle()
    assert stack.body("same.com") is None
    stack.put("same.com", eicar(), Tagging="cosguard-status=clean")  # the uploader's forged tag again
    stack.written_within("same.com", removed_at)  # the same ETag@Last-Modified as the removed write
    event = stack.take_events()
    assert stack.scan(event)["counts"] == {"submitted": 1}
    assert stack.tags("same.com")["cosguard-status"] == "pending"
    stack.settle()
    assert stack.body("same.com") is None and stack.jobs_created() == 2
    assert len(stack.quarantined()) == (2 if action == "move" else 0)
    assert stack.scan(event)["counts"] == {"gone": 1}  # redelivered later: nothing to scan, no loop


def test_a_redelivered_event_of_the_removed_write_scans_the_new_write_once(stack):
    stack.put("same.com", eicar())
    removed_at = stack.last_modified("same.com")
    first_event = stack.take_events()
    stack.scan(first_event)
    stack.settle()
    stack.put("same.com", eicar(), Tagging="cosguard-status=clean")
    stack.written_within("same.com", removed_at)
    assert stack.scan(first_event)["counts"] == {"submitted": 1}  # its HEAD finds the new write
    assert stack.scan()["counts"] == {"duplicate": 1}  # the new write's own event: already in flight
    stack.settle()
    assert stack.body("same.com") is None and len(stack.quarantined()) == 2
    assert stack.jobs_created() == 2 and stack.sweep()["applied"] == {}


def test_identical_clean_bytes_uploaded_again_get_a_new_scan(stack):
    stack.put("doc.txt", clean_text())
    first = stack.last_modified("doc.txt")
    stack.scan()
    stack.settle()
    stack.put("doc.txt", clean_text(), Tagging="cosguard-status=clean&cosguard-job=forged")
    _a_second_after(stack, "doc.txt", first)
    assert stack.scan()["counts"] == {"submitted": 1}
    assert stack.tags("doc.txt")["cosguard-job"] != "forged"
    stack.settle()
    assert stack.tags("doc.txt")["cosguard-status"] == "clean" and stack.jobs_created() == 2


def test_a_redelivered_event_and_a_backfill_of_a_scanned_write_submit_nothing(stack):
    stack.put("once.txt", clean_text())
    event = stack.take_events()
    assert stack.scan(event)["counts"] == {"submitted": 1}
    assert stack.scan(event)["counts"] == {"duplicate": 1}  # redelivered while the job is open
    stack.settle()
    assert stack.scan(event)["counts"] == {"duplicate": 1}  # and after its verdict
    report = Backfill(stack.runtime(stack.scan_handler), Options(stack.intake)).run()
    assert report.counts == {"already_scanned": 1}
    assert stack.jobs_created() == 1
    assert stack.tags("once.txt")["cosguard-status"] == "clean"


@pytest.mark.parametrize("vid", ["empty", "set"])   # what the trigger event's vid holds: unknown
def test_versioned_bucket_identity_is_the_version(deploy, vid):
    stack = deploy(versioned=True)
    stack.cloud.cos.event_vid = vid
    stack.put("v.com", eicar())
    stack.put("v.com", eicar())  # the same second, the same bytes: still a new version
    # with the version in each event, each is scanned; without, both events name the current version
    # (one submission, one duplicate), and the older one is scanned once it is current again
    assert stack.scan()["counts"] == ({"submitted": 2} if vid == "set" else {"submitted": 1, "duplicate": 1})
    stack.settle()
    stack.sweep()  # removing the newer version exposed the older one: its own verdict is applied
    for _ in range(3):  # ... or its rescans' (a job submitted by a callback needs one more wait)
        stack.settle()
    assert stack.body("v.com") is None, stack.jobs_created()
    # 2, plus the older version's rescan when its verdict came after the overwrite (test_versions.py),
    # plus its scan by key once it is current again when CI could not fetch the pinned URL
    assert stack.jobs_created() in (2, 3, 4)


def test_a_forged_job_tag_never_carries_another_writes_clean_verdict(deploy):
    stack = deploy(COSGUARD_CLEAN_DESTINATION="/released/")
    stack.cloud.ci.faults.drop_callback_rate = 1.0
    stack.put("swap.exe", clean_text())
    first = stack.last_modified("swap.exe")
    job_id = stack.scan()["jobs"]["swap.exe"]
    stack.settle()  # CI said clean, but its callback was lost
    stack.put("swap.exe", eicar(), Tagging=f"cosguard-job={job_id}&cosguard-status=clean")
    _a_second_after(stack, "swap.exe", first)
    stack.take_events()  # and the EICAR's own event is late
    report = stack.sweep()
    assert report["applied"] == {"stale": 1}  # J1's clean verdict is not applied to the EICAR
    assert not stack.cos.object_exists(Bucket=stack.intake, Key="released/swap.exe")
    assert stack.body("swap.exe") == eicar()
    stack.put("late.txt", b"trigger")  # the EICAR's event arrives after all
    stack.cloud.ci.faults.drop_callback_rate = 0.0
    stack.scan({"Records": [r for r in _events_for(stack, "swap.exe")]})
    stack.settle()
    assert stack.body("swap.exe") is None and stack.jobs_created() == 2
    assert not stack.cos.object_exists(Bucket=stack.intake, Key="released/swap.exe")


def _events_for(stack, key):
    from cosguard.local.cos.events import ObjectCreated, build_event
    info = stack.cos.head_object(Bucket=stack.intake, Key=key)
    created = ObjectCreated(stack.intake, key, int(info["Content-Length"]), "cos:ObjectCreated:Put", "req")
    return build_event(created, stack.cloud.region)["Records"]
