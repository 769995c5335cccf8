"""A version made current again by cosguard's own removal of a newer one: its open job was submitted by
key, so CI may have read the newer write's bytes, and that verdict is never believed for it.

EICAR v1 is uploaded and its job submitted by key; a clean v2 lands before CI reads the key, so both
jobs read v2's bytes (clean). v2's verdict is applied first (fail-closed: v2 is promoted, which
deletes it by version id; or v2 is quarantined): v1 is current again, and its identity still matches
its open entry, so the late "clean" of v1's job, really about v2's bytes, looked like v1's. The
exposure now replaces v1's unpinned job by a scan pinned to v1 (versions.distrust_exposed): v1's
late verdict finds its job replaced, and the pinned scan finds the EICAR.

The order is exact: CI holds both jobs until v2 has landed (`stuck_jobs`), their callbacks are
dropped, and each verdict is applied as CI's callback would apply it, v2's first. No sleep."""
from __future__ import annotations

import pytest

from cosguard.local.samples import clean_text, eicar

KEY = "setup.exe"


def _both_jobs_read_v2(stack, first: bytes, second: bytes) -> tuple:
    """`first` as v1 and then `second` as v2, each submitted by key on its own event; CI reads the key
    only once v2 has landed; both callbacks are lost. Returns (v1, v2, v1's job, v2's job)."""
    ci = stack.cloud.ci
    ci.faults.stuck_jobs = {KEY}
    ci.faults.drop_callback_rate = 1.0
    v1 = stack.put(KEY, first)["x-cos-version-id"]
    stack.scan()
    job1 = stack.tags(KEY)["cosguard-job"]
    v2 = stack.put(KEY, second)["x-cos-version-id"]
    stack.scan()
    job2 = stack.tags(KEY)["cosguard-job"]
    assert job1 != job2
    ci.backend.release(KEY)
    stack.settle()
    assert [ci.backend.jobs[job].object_key for job in (job1, job2)] == [KEY, KEY]   # both by key
    return v1, v2, job1, job2


def _apply(stack, job_id: str) -> str:
    """The verdict applied as CI's callback applies it (the callback function's own service)."""
    return stack.runtime(stack._callback).verdicts.apply(stack.intake, job_id).outcome.value


def _the_rest_applied(stack) -> None:
    stack.cloud.ci.faults.drop_callback_rate = 0.0
    for _ in range(3):   # the pinned job's verdict (or, with its query dropped, the by-key rescan's)
        stack.settle()
        stack.sweep()


@pytest.mark.parametrize("url_query_kept", [True, False])
def test_an_eicar_exposed_by_promoting_the_clean_write_ci_read_for_it_is_never_promoted(deploy, url_query_kept):
    stack = deploy(versioned=True, COSGUARD_CLEAN_DESTINATION="/released/")
    stack.cloud.ci.faults.url_query_dropped = not url_query_kept
    v1, v2, job1, job2 = _both_jobs_read_v2(stack, eicar(), clean_text())
    assert _apply(stack, job2) == "promoted"          # v2 deleted by its version id: v1 is current
    assert stack.body(f"released/{KEY}") == clean_text() and stack.version_body(KEY, v2) is None
    assert _apply(stack, job1) == "already_done"   # its job was replaced: v2's "clean" is not believed for v1
    _the_rest_applied(stack)
    assert stack.version_body(KEY, v1) is None and stack.quarantined_bodies() == [eicar()]
    assert stack.body(f"released/{KEY}") == clean_text()
    assert stack.body(KEY) is None


def test_clean_bytes_exposed_by_quarantining_the_eicar_ci_read_for_them_are_never_moved(deploy):
    """The other way round: clean v1, EICAR v2, both jobs read v2. Quarantining v2 exposes v1, whose
    job says `infected` (about v2's bytes): believed, a clean version would be moved."""
    stack = deploy(versioned=True)
    stack.cloud.ci.faults.url_query_dropped = False
    v1, v2, job1, job2 = _both_jobs_read_v2(stack, clean_text(), eicar())
    assert _apply(stack, job2) == "quarantined"       # v2 moved by its version id: v1 is current
    assert _apply(stack, job1) == "already_done"   # v2's "infected" is not believed for v1
    _the_rest_applied(stack)
    assert stack.version_body(KEY, v1) == clean_text() and stack.version_tags(KEY, v1)["cosguard-status"] == "clean"
    assert stack.version_body(KEY, v2) is None and stack.quarantined_bodies() == [eicar()]
    assert stack.body(KEY) == clean_text()


# -- a newer version removed by someone else: the uploader deletes it by its version id -----------------
# An uploader may delete any version of their own key (DELETE Object with versionId). The EICAR v1's job
# was submitted by key and CI read the clean v2; v2 is then deleted by its id, v1 is current again and
# unchanged, and v1's "clean" (v2's bytes) looks like its own. cosguard learns that v2 existed from
# v2's job (closed `gone`) or v2's event (its version no longer there).

def _removed_by_uploader(stack, version_id: str) -> None:
    stack.cos.delete_object(Bucket=stack.intake, Key=KEY, VersionId=version_id)


@pytest.mark.parametrize("url_query_kept", [True, False])
def test_an_eicar_whose_job_read_a_version_the_uploader_deleted_is_scanned_again(deploy, url_query_kept):
    """v2's verdict first: v2 is gone, and v1's open job (by key) is replaced by a pinned scan."""
    stack = deploy(versioned=True)
    stack.cloud.ci.faults.url_query_dropped = not url_query_kept
    v1, v2, job1, job2 = _both_jobs_read_v2(stack, eicar(), clean_text())
    _removed_by_uploader(stack, v2)
    assert _apply(stack, job2) == "gone"
    assert _apply(stack, job1) == "already_done"   # v2's "clean" is not believed for v1
    _the_rest_applied(stack)
    assert stack.version_body(KEY, v1) is None and stack.quarantined_bodies() == [eicar()]


@pytest.mark.parametrize("layout", ["in-place", "fail-closed"])
def test_a_clean_verdict_believed_before_the_deleted_version_was_known_is_rescanned(deploy, layout):
    """v1's verdict first: nothing then shows that CI read v2, and v1 is tagged clean (or promoted).
    v2's verdict (gone) shows it: every clean verdict of the key given since v2 was written is
    rescanned, and the EICAR is quarantined (withdrawn from the clean destination when promoted)."""
    env = {"COSGUARD_CLEAN_DESTINATION": "/released/"} if layout == "fail-closed" else {}
    stack = deploy(versioned=True, **env)
    v1, v2, job1, job2 = _both_jobs_read_v2(stack, eicar(), clean_text())
    _removed_by_uploader(stack, v2)
    assert _apply(stack, job1) == ("promoted" if env else "clean")   # believed: v2 left no trace yet
    assert _apply(stack, job2) == "gone"
    _the_rest_applied(stack)
    assert stack.quarantined_bodies() == [eicar()]
    assert stack.body(KEY) is None and stack.body(f"released/{KEY}") is None
    assert [(n["kind"], n["key"], n["outcome"]) for n in stack.sink.received] == [
        ("found_on_rescan", f"released/{KEY}" if env else KEY, "quarantined")]


def test_a_deleted_version_that_never_got_a_job_is_noticed_by_its_event(deploy):
    """v2 is deleted before its own event is handled (so it never had a job), after CI read it for
    v1's job. With COS naming the version in the event (`cos.event_vid = set`), the event finds v2
    gone: v1's clean verdict, given since v2 was written, is rescanned."""
    stack = deploy(versioned=True)
    stack.cloud.cos.event_vid = "set"
    ci = stack.cloud.ci
    ci.faults.stuck_jobs = {KEY}
    v1 = stack.put(KEY, eicar())["x-cos-version-id"]
    stack.scan()
    job1 = stack.tags(KEY)["cosguard-job"]
    v2 = stack.put(KEY, clean_text())["x-cos-version-id"]
    v2_event = stack.take_events()
    ci.backend.release(KEY)
    ci.faults.drop_callback_rate = 1.0
    stack.settle()                                   # job1 read v2's clean bytes
    _removed_by_uploader(stack, v2)
    assert _apply(stack, job1) == "clean"            # believed: v2 left no trace yet
    stack.take_events()                              # the delete's own event (not an upload)
    assert stack.scan(v2_event)["counts"] == {"gone": 1}
    _the_rest_applied(stack)
    assert stack.version_body(KEY, v1) is None and stack.quarantined_bodies() == [eicar()]
