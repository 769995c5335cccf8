"""Issue 17, items 1 and 2: nothing an uploader controls within COS's limits (a key up to 850 bytes,
user metadata up to 2 KB) keeps infected bytes in place. Driven over HTTP through the SDK."""
from __future__ import annotations

import json

import pytest

from cosguard.local.samples import clean_text, eicar

MIB = 1024


def user_meta(big: int = 1500, small: int = 2):
    """About 1.9 KB of the uploader's own metadata: one big header and two small ones."""
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
    s.scan()
    s.settle()
    assert not s.exists(key) and not s.exists("up/plain.txt")
    assert s.body("released/up/plain.txt") == clean_text()
    assert s.cos.head_object(Bucket=s.intake, Key="released/up/plain.txt")["x-cos-meta-big"] == "b" * 1500
    code, status, _ = s.cli(capsys, tmp_path, "status")
    assert code == 0 and status["counts"] == {"clean": 2}, status
    promoted = [k["Key"] for k in s.cos.list_objects(Bucket=s.intake, Prefix="released/")["Contents"]]
    [long_copy] = [k for k in promoted if k != "released/up/plain.txt"]
    assert len(long_copy.encode()) <= 850 and s.body(long_copy) == clean_text()
