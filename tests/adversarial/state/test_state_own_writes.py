"""Same-bucket layout (issue 18, item 5): cosguard's own writes are recognised exactly, by their seal
AND their bytes (the ETag where cosguard copied in one request, else the CRC64 COS keeps for the
content, doc 436/40334), and get cosguard's status tags again; anything else under a quarantine
key is scanned, whatever its size or the form of its ETag."""
from __future__ import annotations

import pytest

from cosguard.bulk.backfill import Backfill, Options
from cosguard.domain.actions import MANIFEST_META
from cosguard.local.samples import eicar

ORIGINAL = eicar() + b" " * 20     # EICAR with the trailing whitespace the published rule allows
INFECTED_PLANT = eicar() + b"\t" * 20   # other infected bytes of the same size
CLEAN_PLANT = b"n" * len(ORIGINAL)      # clean bytes of the same size


def quarantine_one(s, key: str, body: bytes) -> str:
    """Upload `body` at `key`, scan it, let CI's verdict move it: the key of its quarantined copy."""
    s.put(key, body)
    assert s.scan()["counts"] == {"submitted": 1}
    s.settle()
    [copy] = s.quarantined(key)
    return copy


def multipart_put(s, key: str, body: bytes, **extra) -> str:
    """A one-part multipart upload (its ETag is `<md5 of the part MD5s>-1`); the completed ETag."""
    upload = s.cos.create_multipart_upload(Bucket=s.intake, Key=key, **extra)["UploadId"]
    part = s.cos.upload_part(Bucket=s.intake, Key=key, Body=body, PartNumber=1, UploadId=upload)
    done = s.cos.complete_multipart_upload(Bucket=s.intake, Key=key, UploadId=upload,
                                           MultipartUpload={"Part": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    return done["ETag"]


def all_quarantined(s):
    listed = s.cos.list_objects(Bucket=s.jail, Prefix="quarantine/").get("Contents", [])
    return sorted(item["Key"] for item in listed)


@pytest.mark.parametrize("plant, infected", [(INFECTED_PLANT, True), (CLEAN_PLANT, False)],
                         ids=["infected-plant", "clean-plant"])
def test_a_multipart_plant_under_a_copied_manifest_is_scanned(stack, capsys, tmp_path, plant, infected):
    s = stack(jail=False)
    copy = quarantine_one(s, "in/evil.com", ORIGINAL)
    job = s.tags(copy)["cosguard-job"]
    manifest = s.meta(copy)[f"x-cos-meta-{MANIFEST_META}"]   # the uploader reads it in their bucket
    # other bytes of the same size, multipart (an ETag unlike the original's), the genuine sealed
    # manifest, and a `clean` tag of the uploader's
    etag = multipart_put(s, copy, plant, Metadata={f"x-cos-meta-{MANIFEST_META}": manifest},
                         Tagging="cosguard-status=clean")
    assert etag.strip('"').endswith("-1")
    summary = s.scan()
    assert summary["counts"].get("submitted") == 1, summary
    s.settle()
    s.scan()   # the events of what the verdict did: cosguard's own, never scanned again
    s.settle()
    if infected:   # moved on into quarantine (a copy of the plant's key), tagged infected there
        assert not s.exists(copy)
        [moved] = s.quarantined(copy)
        assert s.body(moved) == plant and s.tags(moved)["cosguard-status"] == "infected"
    else:          # scanned and tagged clean in place: it is the uploader's file, not the EICAR
        assert s.body(copy) == plant and s.tags(copy)["cosguard-status"] == "clean"
        assert s.tags(copy)["cosguard-job"] != job
    assert s.jobs_created() == 2
    # status is not fooled: the original's copy is shown replaced, not quarantined there
    _, status, _ = s.cli(capsys, tmp_path, "status")
    [original] = [i for i in status["recent_infections"] if i["job_id"] == job]
    assert original["now_at"] == f"{s.intake}/{copy} ({'missing' if infected else 'other bytes'} there)", original
    # nor is restore of the original's job: what is at its copy's key is not its bytes
    code, answer, _ = s.cli(capsys, tmp_path, "restore", job)
    assert code == 1 and answer["restored"] is False, answer
    assert ("other bytes" if not infected else "nothing quarantined") in answer["reason"]
    assert not s.exists("in/evil.com")


def test_a_multipart_eicar_is_quarantined_exactly_once(stack):
    """Its single-request copy has a new ETag (the MD5 of the bytes), which only the CRC64 ties to
    the original: recognised as cosguard's copy, not scanned and quarantined again under a nested key."""
    s = stack(jail=False)
    original_etag = multipart_put(s, "in/parts.com", ORIGINAL)
    assert s.scan()["counts"] == {"submitted": 1}
    s.settle()
    [copy] = s.quarantined("in/parts.com")
    assert s.cos.head_object(Bucket=s.jail, Key=copy)["ETag"] != original_etag
    summary = s.scan()   # the copy's own event, and the ledger's
    assert "submitted" not in summary["counts"], summary
    s.settle()
    assert s.jobs_created() == 1
    assert all_quarantined(s) == [copy]
    assert s.body(copy) == ORIGINAL and s.tags(copy)["cosguard-status"] == "infected"


def test_an_uploader_clean_tag_on_a_quarantined_copy_is_corrected(stack):
    s = stack(jail=False)
    copy = quarantine_one(s, "in/evil.com", ORIGINAL)
    job = s.tags(copy)["cosguard-job"]
    manifest = s.meta(copy)[f"x-cos-meta-{MANIFEST_META}"]
    # tagged `clean` by the uploader: tagging fires no event, a backfill over the bucket finds it
    s.cos.put_object_tagging(Bucket=s.intake, Key=copy, Tagging={"TagSet": {"Tag": [
        {"Key": "cosguard-status", "Value": "clean"}, {"Key": "team", "Value": "a"}]}})
    s.events.clear()
    Backfill(s.runtime, Options(s.intake)).run()
    assert s.tags(copy) == {"cosguard-status": "infected", "cosguard-job": job, "team": "a"}
    # the same bytes uploaded again over it, with the manifest and a `clean` tag: its event corrects it
    s.put(copy, ORIGINAL, Metadata={f"x-cos-meta-{MANIFEST_META}": manifest}, Tagging="cosguard-status=clean")
    summary = s.scan()
    assert summary["counts"] == {"skipped": 1}, summary
    assert s.tags(copy)["cosguard-status"] == "infected"
    s.settle()
    assert s.jobs_created() == 1


def crc_forged(prefix: bytes, target: int) -> bytes:
    """`prefix` + 8 bytes whose CRC64 is `target`: CRC is affine in the message bits, so 64 free
    bits solve it (Gaussian elimination over GF(2)). What an uploader can do to any checksum."""
    from cosguard.local.cos.crc64 import crc64
    base = crc64(prefix + bytes(8))
    rows = []   # (effect on the CRC, the bit of the suffix that has it)
    for bit in range(64):
        suffix = (1 << bit).to_bytes(8, "little")
        rows.append((crc64(prefix + suffix) ^ base, 1 << bit))
    want, chosen = target ^ base, 0
    for position in range(64):
        pivot = next((i for i, (effect, _) in enumerate(rows) if effect >> position & 1), None)
        if pivot is None:
            continue
        effect, bits = rows.pop(pivot)
        rows = [(e ^ effect, b ^ bits) if e >> position & 1 else (e, b) for e, b in rows]
        if want >> position & 1:
            want, chosen = want ^ effect, chosen ^ bits
    assert want == 0
    forged = prefix + chosen.to_bytes(8, "little")
    assert crc64(forged) == target
    return forged


def test_a_plant_crafted_to_the_copy_s_crc64_is_tagged_as_the_quarantined_original(stack):
    """CRC64 is a checksum, not a seal: bytes crafted to it pass as cosguard's copy. They get the
    quarantined original's tags (`infected`), so the plant is never left readable as `clean`."""
    s = stack(jail=False)
    copy = quarantine_one(s, "in/evil.com", ORIGINAL)
    head = s.cos.head_object(Bucket=s.intake, Key=copy)
    forged = crc_forged(b"n" * (len(ORIGINAL) - 8), int(head["x-cos-hash-crc64ecma"]))   # other bytes
    multipart_put(s, copy, forged, Metadata={f"x-cos-meta-{MANIFEST_META}": head[f"x-cos-meta-{MANIFEST_META}"]},
                  Tagging="cosguard-status=clean")
    assert s.scan()["counts"].get("submitted") is None
    assert s.tags(copy)["cosguard-status"] == "infected"


def test_a_promoted_copy_is_recognised_by_etag_and_crc64_together(stack):
    """The promotion marker seals both: bytes crafted to the copy's CRC64 (an ETag unlike it) are
    scanned; the genuine copy, tagged otherwise by an uploader, gets `clean` back."""
    from cosguard.local.samples import clean_text
    s = stack(jail=False, COSGUARD_CLEAN_DESTINATION="/released/")
    s.put("in/report.txt", clean_text())
    s.scan()
    s.settle()
    copy = "released/in/report.txt"
    head = s.cos.head_object(Bucket=s.intake, Key=copy)
    s.cos.put_object_tagging(Bucket=s.intake, Key=copy, Tagging={"TagSet": {"Tag": [
        {"Key": "cosguard-status", "Value": "pending"}]}})
    s.events.clear()
    Backfill(s.runtime, Options(s.intake, prefix="released/")).run()
    assert s.tags(copy)["cosguard-status"] == "clean"
    assert s.jobs_created() == 1
    forged = crc_forged(b"other " + clean_text()[6:-8], int(head["x-cos-hash-crc64ecma"]))
    assert forged != clean_text() and len(forged) == len(clean_text())
    s.put(copy, forged, Metadata={"x-cos-meta-cosguard-promoted": head["x-cos-meta-cosguard-promoted"]},
          Tagging="cosguard-status=clean")
    summary = s.scan()
    assert summary["counts"].get("submitted") == 1, summary
    s.settle()
    assert s.jobs_created() == 2
