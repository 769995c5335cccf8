"""Issue 17, items 1 and 2: nothing an uploader controls within COS's limits (a key up to 850 bytes,
user metadata up to 2 KB) keeps infected bytes in place; and a copy COS refuses for good falls back
to removing the infected original instead of retrying forever. Driven over HTTP through the SDK."""
from __future__ import annotations

import json

import pytest

from cosguard.local.samples import clean_text, eicar

MIB = 1024


def user_meta(big: int = 1800, small: int = 2):
    """1,995 bytes of the uploader's own metadata (legal: COS allows 2 KB): one big header, two small."""
    return {"x-cos-meta-big": "b" * big, "x-cos-meta-note": "n" * 150, "x-cos-meta-tag": "t" * small}


def long_key(size: int) -> str:
    """A key of exactly `size` UTF-8 bytes, in folders, ending .com."""
    stem = "up/" + "deep-folder-name/" * ((size - 20) // 17)
    return stem + "x" * (size - len(stem.encode()) - 4) + ".com"


def copies_of(s):
    """Every quarantined copy from the intake bucket (a digest may stand in for a long key)."""
    listed = s.cos.list_objects(Bucket=s.jail, Prefix=f"quarantine/{s.intake}/").get("Contents", [])
    return [item["Key"] for item in listed]


def logged(capsys):
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("rule", ["total", "each"])
def test_eicar_with_2_kb_of_user_metadata_is_quarantined_and_restore_names_what_was_dropped(
        stack, capsys, tmp_path, rule):
    s = stack()
    s.cloud.cos.limits.metadata_rule = rule
    s.put("up/meta.com", eicar(), Metadata=user_meta())
    job_id = s.scan()["jobs"]["up/meta.com"]
    s.settle()
    assert not s.exists("up/meta.com")
    [copy] = s.quarantined("up/meta.com")
    kept = s.meta(copy)
    assert "x-cos-meta-big" not in kept and kept["x-cos-meta-tag"] == "tt"  # the largest goes first
    closed = s.ledger_doc(f".cosguard/closed/{job_id}.json")
    assert closed["manifest"]["metadata_dropped"] == ["big"]
    code, answer, _ = s.cli(capsys, tmp_path, "restore", job_id)
    assert code == 0 and answer["metadata_not_restored"] == ["big"], answer
    assert s.body("up/meta.com") == eicar()
    assert s.cos.head_object(Bucket=s.intake, Key="up/meta.com")["x-cos-meta-tag"] == "tt"


@pytest.mark.parametrize("key", [long_key(800), long_key(850), "up/" + "文" * 281 + ".com"],
                         ids=["800 bytes", "850 bytes", "850 bytes of CJK"])
def test_eicar_at_a_key_near_850_bytes_is_quarantined_and_restorable_by_its_key(stack, capsys, tmp_path, key):
    s = stack()
    assert len(key.encode()) in (800, 850)
    s.put(key, eicar())
    job_id = s.scan()["jobs"][key]
    s.settle()
    assert not s.exists(key)
    [copy] = copies_of(s)
    assert len(copy.encode()) <= 850 and s.body(copy, bucket=s.jail) == eicar()
    code, status, _ = s.cli(capsys, tmp_path, "status")
    assert status["recent_infections"][0]["now_at"] == f"{s.jail}/{copy}"
    code, answer, _ = s.cli(capsys, tmp_path, "restore", key)
    assert code == 0 and answer["job_id"] == job_id and answer["to"] == f"{s.intake}/{key}", answer
    assert s.body(key) == eicar() and copies_of(s) == []


@pytest.mark.parametrize("rule", ["total", "each"])
def test_promotion_of_a_clean_object_with_a_long_key_and_large_metadata(stack, capsys, tmp_path, rule):
    s = stack(COSGUARD_CLEAN_DESTINATION="/released/")
    s.cloud.cos.limits.metadata_rule = rule
    key = long_key(845)
    s.put(key, clean_text(), Metadata=user_meta())
    s.put("up/plain.txt", clean_text(), Metadata=user_meta())
    job_id = s.scan()["jobs"]["up/plain.txt"]
    s.settle()
    assert not s.exists(key) and not s.exists("up/plain.txt")
    assert s.body("released/up/plain.txt") == clean_text()
    # The sealed promotion marker comes first: the largest of the uploader's headers gives way to it.
    kept = s.meta("released/up/plain.txt", bucket=s.intake)
    assert "x-cos-meta-cosguard-promoted" in kept and "x-cos-meta-big" not in kept
    assert kept["x-cos-meta-note"] == "n" * 150 and kept["x-cos-meta-tag"] == "tt"
    closed = s.ledger_doc(f".cosguard/closed/{job_id}.json")
    assert closed["manifest"]["metadata_dropped"] == ["big"]
    assert closed["manifest"]["promoted_to"] == f"{s.intake}/released/up/plain.txt"
    code, status, _ = s.cli(capsys, tmp_path, "status")
    assert code == 0 and status["counts"] == {"clean": 2}, status
    promoted = [k["Key"] for k in s.cos.list_objects(Bucket=s.intake, Prefix="released/")["Contents"]]
    [long_copy] = [k for k in promoted if k != "released/up/plain.txt"]
    assert len(long_copy.encode()) <= 850 and s.body(long_copy) == clean_text()


def _refuse_copies(s, bucket=None):
    s.cloud.cos.faults.deny(bucket or s.jail, ["CopyObject"])


def test_a_copy_refused_for_good_deletes_the_infected_original_warns_notifies_and_shows_in_status(
        stack, capsys, tmp_path):
    s = stack(notify=True)
    _refuse_copies(s)
    s.cloud.ci.faults.drop_callback_rate = 1.0  # the verdict is applied by the sweep, in this process
    s.put("up/evil.com", eicar())
    job_id = s.scan()["jobs"]["up/evil.com"]
    s.settle()
    capsys.readouterr()
    report = s.sweep()
    assert report["applied"] == {"deleted": 1}, report
    assert not s.exists("up/evil.com") and s.quarantined("up/evil.com") == []
    fallback = s.ledger_doc(f".cosguard/closed/{job_id}.json")["manifest"]["fallback"]
    assert fallback["action"] == "deleted" and fallback["reason"].startswith("403 AccessDenied: CopyObject: 403")
    [warning] = [r for r in logged(capsys) if r["logger"] == "cosguard.domain.fallback"]
    assert warning == dict(warning, level="WARNING", event="copy_refused_fallback_applied",
                           bucket=s.intake, key="up/evil.com", job_id=job_id, **fallback)
    [notified] = [n for n in s.sink.received if n["key"] == "up/evil.com"]
    assert "refused" in notified["detail"] and notified["outcome"] == "deleted" and not notified.get("location")
    code, status, _ = s.cli(capsys, tmp_path, "status")
    assert [(f["key"], f["action"]) for f in status["fallbacks"]] == [("up/evil.com", "deleted")]
    assert {"status": "infected", "handled": "deleted (the copy was refused)", "count": 1} \
        in status["handled"]


def test_when_the_delete_is_refused_too_the_original_is_tagged_infected(stack):
    s = stack(notify=True)
    _refuse_copies(s)
    s.cloud.cos.faults.deny(s.intake, ["DeleteObject"])
    s.put("up/evil.com", eicar())
    job_id = s.scan()["jobs"]["up/evil.com"]
    s.settle()
    assert s.body("up/evil.com") == eicar()
    assert s.tags("up/evil.com") == {"cosguard-status": "infected", "cosguard-job": job_id}
    assert any("refused" in n["detail"] for n in s.sink.received)
    fallback = s.ledger_doc(f".cosguard/closed/{job_id}.json")["manifest"]["fallback"]
    assert fallback["action"] == "tagged infected"
    assert fallback["reason"].startswith("403 AccessDenied: CopyObject: 403")
    assert fallback["reason"].endswith("; the delete was refused too (AccessDenied)")


def test_a_refusal_without_an_error_code_is_named_by_its_kind(stack):
    """COS answered a 4xx without a code: the ledger still says what refused, never `None`."""
    from cosguard.errors import CloudPermanentError
    s = stack()
    s.cloud.ci.faults.drop_callback_rate = 1.0
    s.put("up/evil.com", eicar())
    job_id = s.scan()["jobs"]["up/evil.com"]
    s.settle()
    gateway = s.runtime_of(s.sweep_handler).gateway
    delete = gateway.delete

    def copy(*args, **kwargs):
        raise CloudPermanentError("CopyObject: 400", status=400)

    def delete_refused(bucket, key, *args, **kwargs):
        if key != "up/evil.com":  # the ledger's own deletes go through
            return delete(bucket, key, *args, **kwargs)
        raise CloudPermanentError("DeleteObject: 400", status=400)
    gateway.copy, gateway.delete = copy, delete_refused
    assert s.sweep()["applied"] == {"infected": 1}
    assert s.body("up/evil.com") == eicar() and s.tags("up/evil.com")["cosguard-status"] == "infected"
    fallback = s.ledger_doc(f".cosguard/closed/{job_id}.json")["manifest"]["fallback"]
    assert fallback == {"action": "tagged infected", "reason": "400 CloudPermanentError: CopyObject: 400; "
                                                               "the delete was refused too (CloudPermanentError)"}


def test_a_transient_delete_failure_after_a_refused_copy_is_retried_not_given_up(stack):
    """Only a refusal is final: a throttled delete leaves the job open, and the next sweep deletes."""
    from cosguard.errors import CloudTransientError
    s = stack()
    _refuse_copies(s)
    s.cloud.ci.faults.drop_callback_rate = 1.0
    s.put("up/evil.com", eicar())
    s.scan()
    s.settle()
    gateway = s.runtime_of(s.sweep_handler).gateway
    delete = gateway.delete

    def throttled(bucket, key, *args, **kwargs):
        if key != "up/evil.com":  # the ledger's own deletes go through
            return delete(bucket, key, *args, **kwargs)
        raise CloudTransientError("DeleteObject: 503 SlowDown", code="SlowDown", status=503)
    gateway.delete = throttled
    assert s.sweep()["applied"] == {"error": 1}
    assert s.body("up/evil.com") == eicar() and s.tags("up/evil.com")["cosguard-status"] != "infected"
    gateway.delete = delete
    assert s.sweep()["applied"] == {"deleted": 1} and not s.exists("up/evil.com")


def test_a_clean_object_is_never_deleted_by_the_fallback(stack, capsys, tmp_path):
    s = stack(notify=True, COSGUARD_CLEAN_DESTINATION="/released/")
    _refuse_copies(s, s.intake)
    s.put("up/fine.txt", clean_text())
    s.scan()
    s.settle()
    assert s.body("up/fine.txt") == clean_text()
    assert s.tags("up/fine.txt")["cosguard-status"] == "clean"
    assert not s.exists("released/up/fine.txt")
    assert any("refused" in n["detail"] for n in s.sink.received)
    code, status, _ = s.cli(capsys, tmp_path, "status")
    assert [(f["key"], f["action"]) for f in status["fallbacks"]] == [("up/fine.txt", "tagged clean")]


def test_a_transient_copy_failure_is_still_retried(stack):
    from cosguard.errors import CloudTransientError
    s = stack()
    s.cloud.ci.faults.drop_callback_rate = 1.0
    s.put("up/evil.com", eicar())
    s.scan()
    s.settle()
    gateway = s.runtime_of(s.sweep_handler).gateway
    copy = gateway.copy

    def throttled(*args, **kwargs):
        raise CloudTransientError("CopyObject: 503 SlowDown", code="SlowDown", status=503)
    gateway.copy = throttled
    report = s.sweep()
    assert report["applied"] == {"error": 1} and s.exists("up/evil.com")  # nothing given up, nothing deleted
    gateway.copy = copy
    report = s.sweep()
    assert report["applied"] == {"quarantined": 1} and not s.exists("up/evil.com")


def test_an_unscannable_object_whose_quarantine_copy_is_refused_is_tagged_in_place(stack):
    s = stack(COSGUARD_UNSCANNABLE_ACTION="quarantine")
    _refuse_copies(s)
    s.cloud.cos.simulate_size(s.intake, "up/huge.iso", 2 * MIB ** 3)
    s.put("up/huge.iso", b"too big to scan")
    summary = s.scan()
    assert summary["counts"] == {"unscannable": 1}, summary
    assert s.body("up/huge.iso") == b"too big to scan"
    assert s.tags("up/huge.iso")["cosguard-status"] == "unscannable"
    assert s.sweep()["resubmitted"] == {}  # nothing left to retry forever
