"""Restore releases only the bytes cosguard quarantined, and quarantine keys never collide: two
source buckets, or two writes of one key, each keep their own evidence."""
from __future__ import annotations

import json

import pytest

from cosguard.domain.actions import MANIFEST_META
from cosguard.local.samples import eicar, eicar_zip_in_tar_gz

BUNDLE = eicar_zip_in_tar_gz()  # (gzip stamps the time: made once)


def quarantine_one(s, key, body, bucket=None):
    s.put(key, body, bucket=bucket)
    job_id = s.scan()["jobs"][key]
    s.settle()
    return job_id


def same_size_other_bytes(body):
    """What an attacker with write access to the quarantine plants so that a size check passes."""
    return bytes(b ^ 0x20 if 0x41 <= b <= 0x5A else b for b in body)


@pytest.mark.parametrize("size", ["other size", "same size"])
@pytest.mark.parametrize("by", ["job id", "quarantine key"])
def test_swapped_quarantined_bytes_are_never_released(stack, capsys, tmp_path, by, size):
    s = stack(jail=False)
    job_id = quarantine_one(s, "docs/report.com", eicar())
    [copy] = s.quarantined("docs/report.com")
    manifest = s.meta(copy)[f"x-cos-meta-{MANIFEST_META}"]
    swapped = BUNDLE if size == "other size" else same_size_other_bytes(eicar())
    assert (len(swapped) == len(eicar())) == (size == "same size") and swapped != eicar()
    s.put(copy, swapped, Metadata={f"x-cos-meta-{MANIFEST_META}": manifest})  # genuine manifest, other bytes
    closed_before = s.ledger_doc(f".cosguard/closed/{job_id}.json")
    code, answer, _ = s.cli(capsys, tmp_path, "restore", job_id if by == "job id" else copy)
    assert code == 1 and answer["restored"] is False
    assert "other bytes than cosguard quarantined" in answer["reason"]
    assert not s.exists("docs/report.com")              # nothing released
    assert s.body(copy) == swapped                      # nothing moved
    assert s.ledger_doc(f".cosguard/closed/{job_id}.json") == closed_before
    listed = s.cos.list_objects(Bucket=s.intake, Prefix="docs/").get("Contents", [])
    assert listed == []                                 # no released copy anywhere, so no release marker


def test_a_manifest_cosguard_did_not_seal_is_refused(stack, capsys, tmp_path):
    s = stack(jail=False)
    forged = json.dumps({"bucket": s.intake, "key": "docs/invoice.com", "job_id": None, "etag": "x",
                         "size": 68, "findings": []})
    from urllib.parse import quote
    s.put("quarantine/planted.com", eicar(), Metadata={f"x-cos-meta-{MANIFEST_META}": quote(forged, safe="")})
    code, answer, _ = s.cli(capsys, tmp_path, "restore", "quarantine/planted.com")
    assert code == 1 and "did not seal" in answer["reason"]
    assert not s.exists("docs/invoice.com")


def test_two_source_buckets_sharing_a_quarantine_bucket_keep_their_own_evidence(stack, capsys, tmp_path):
    s = stack(sources=2)
    a, b = s.intakes
    job_a = quarantine_one(s, "shared/report.com", eicar(), bucket=a)
    job_b = quarantine_one(s, "shared/report.com", BUNDLE, bucket=b)
    [copy_a], [copy_b] = s.quarantined("shared/report.com", a), s.quarantined("shared/report.com", b)
    assert copy_a != copy_b
    assert s.body(copy_a, bucket=s.jail) == eicar() and s.body(copy_b, bucket=s.jail) == BUNDLE
    for job_id, bucket, body in ((job_b, b, BUNDLE), (job_a, a, eicar())):
        code, answer, _ = s.cli(capsys, tmp_path, "restore", job_id)
        assert code == 0 and answer["to"] == f"{bucket}/shared/report.com", answer
        assert s.body("shared/report.com", bucket=bucket) == body


@pytest.mark.parametrize("versioned", [False, True], ids=["unversioned", "versioned"])
def test_two_writes_of_one_key_keep_their_own_evidence(stack, capsys, tmp_path, versioned):
    s = stack(versioned=versioned)
    first = quarantine_one(s, "up/thing.com", eicar())
    second = quarantine_one(s, "up/thing.com", BUNDLE)
    copies = s.quarantined("up/thing.com")
    assert len(copies) == 2 and {c.split("/")[2] for c in copies} == {first, second}
    code, answer, _ = s.cli(capsys, tmp_path, "restore", "up/thing.com")  # ambiguous: both are named
    assert code == 1 and all(c in answer["reason"] for c in copies)
    code, answer, _ = s.cli(capsys, tmp_path, "restore", first)
    assert code == 0 and s.body("up/thing.com") == eicar()
    assert s.quarantined("up/thing.com") == [c for c in copies if second in c]


def test_status_names_where_each_quarantined_copy_is(stack, capsys, tmp_path):
    s = stack(sources=2)
    for bucket in s.intakes:
        quarantine_one(s, "same.com", eicar(), bucket=bucket)
    code, status, _ = s.cli(capsys, tmp_path, "status")
    where = {i["bucket"]: i["now_at"] for i in status["recent_infections"]}
    assert where == {b: f"{s.jail}/{s.quarantined('same.com', b)[0]}" for b in s.intakes}


def test_a_manifest_trimmed_to_fit_metadata_is_still_sealed_and_restorable(stack, capsys, tmp_path):
    """Many findings do not fit COS's 2 KB of metadata: what is stored is what was sealed."""
    from cosguard.domain.actions import decode_manifest
    from cosguard.local.samples import zip_bytes

    s = stack()
    names = {f"folder-with-a-long-name-{i:03d}/eicar-{i:03d}.com": eicar() for i in range(60)}
    body = zip_bytes(names)
    job_id = quarantine_one(s, "up/many.zip", body)
    [copy] = s.quarantined("up/many.zip")
    manifest = decode_manifest({MANIFEST_META: s.meta(copy)[f"x-cos-meta-{MANIFEST_META}"]})
    assert manifest["findings_truncated"] > 0 and manifest["_seal"]
    code, answer, _ = s.cli(capsys, tmp_path, "restore", copy)
    assert code == 0 and answer["job_id"] == job_id
    assert s.body("up/many.zip") == body


def _swap_before_restore_copies(monkeypatch, swap, parts=False):
    """`swap()` lands after restore has checked the quarantined bytes, right before its copy (the
    CLI builds its own gateway: the class is wrapped). `parts`: the copy goes part by part, as one
    over COS's 5 GB single-copy limit does."""
    from cosguard.infra.cloud import CloudGateway
    real = CloudGateway.copy

    def swap_then_copy(gateway, *args, **kwargs):
        monkeypatch.setattr(CloudGateway, "copy", real)
        if parts:
            gateway.single_copy_limit, gateway.multipart_part_size = 0, 1024 * 1024
        swap()
        return real(gateway, *args, **kwargs)
    monkeypatch.setattr(CloudGateway, "copy", swap_then_copy)


@pytest.mark.parametrize("parts", [False, True], ids=["single-copy", "multipart-copy"])
def test_bytes_swapped_into_quarantine_after_restore_checked_them_are_never_released(
        stack, capsys, tmp_path, monkeypatch, parts):
    """Issue 19: the swap lands between restore's check (sealed manifest, ledger record, same bytes)
    and its copy. The copy names the checked ETag (x-cos-copy-source-If-Match, docs 436/10881 and
    436/8287): refused, and nothing is released, moved or recorded."""
    s = stack(jail=False)
    job_id = quarantine_one(s, "docs/report.com", eicar())
    [copy] = s.quarantined("docs/report.com")
    manifest = s.meta(copy)[f"x-cos-meta-{MANIFEST_META}"]
    swapped = same_size_other_bytes(eicar())
    _swap_before_restore_copies(monkeypatch, lambda: s.put(
        copy, swapped, Metadata={f"x-cos-meta-{MANIFEST_META}": manifest}), parts)
    closed_before = s.ledger_doc(f".cosguard/closed/{job_id}.json")
    code, answer, _ = s.cli(capsys, tmp_path, "restore", job_id)
    assert code == 1 and answer["restored"] is False
    assert "changed while it was being restored" in answer["reason"]
    assert (s.cloud.cos.counters.snapshot().get("UploadPartCopy", 0) > 0) is parts
    assert not s.exists("docs/report.com")              # nothing released
    assert s.body(copy) == swapped                      # nothing moved or deleted
    assert s.ledger_doc(f".cosguard/closed/{job_id}.json") == closed_before
    assert s.cos.list_objects(Bucket=s.intake, Prefix="docs/").get("Contents", []) == []
    assert not s.cos.list_multipart_uploads(Bucket=s.intake).get("Upload")   # a copy in parts is aborted


def test_on_a_versioned_bucket_restore_releases_the_checked_version_not_a_swapped_one(
        stack, capsys, tmp_path, monkeypatch):
    """The swap is a newer version of the quarantine key: the copy names the checked version, so
    what is released is exactly what was checked, and the swap stays where it was written."""
    s = stack(jail=False, versioned=True)
    job_id = quarantine_one(s, "docs/report.com", eicar())
    [copy] = s.quarantined("docs/report.com")
    manifest = s.meta(copy)[f"x-cos-meta-{MANIFEST_META}"]
    swapped = same_size_other_bytes(eicar())
    _swap_before_restore_copies(monkeypatch, lambda: s.put(
        copy, swapped, Metadata={f"x-cos-meta-{MANIFEST_META}": manifest}))
    code, answer, _ = s.cli(capsys, tmp_path, "restore", job_id)
    assert code == 0 and answer["restored"] is True, answer
    assert s.body("docs/report.com") == eicar()         # the checked bytes, the operator's decision
    assert s.body(copy) == swapped                      # the swap is not released, nor removed
