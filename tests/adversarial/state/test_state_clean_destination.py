"""Issue 17, item 7: fail-closed mode with the clean destination in the intake bucket. Readers read
`released/`; uploaders can write there too. Only copies cosguard promoted (a sealed marker bound to
their bucket, key and bytes) are trusted; anything else there is scanned like an upload, by the
trigger and by backfill. cosguard's own promotion copy is never scanned (nor billed) again."""
from __future__ import annotations

from cosguard.local.samples import clean_text, eicar
from test_state_ledger_forgery import assert_quarantined

MARKER = "x-cos-meta-cosguard-promoted"  # the sealed marker a promoted copy carries (seal.PROMOTED_META)
FORGED = {MARKER: "0" * 64}


def promoted(s, key: str) -> str:
    """Upload `key`, scan it, let CI say clean: the readers' copy at released/<key>."""
    s.put(key, clean_text())
    assert s.scan()["jobs"].get(key)
    s.settle()
    assert s.exists(f"released/{key}") and not s.exists(key)
    return f"released/{key}"


def destination_stack(stack):
    return stack(jail=False, COSGUARD_CLEAN_DESTINATION="/released/")


def test_eicar_written_straight_into_the_readers_area_is_scanned_and_quarantined(stack):
    s = destination_stack(stack)
    s.put("released/evil.com", eicar(), Tagging="cosguard-status=clean", Metadata=FORGED)
    summary = s.scan()
    assert summary["jobs"].get("released/evil.com"), summary
    s.settle()
    assert_quarantined(s, "released/evil.com", eicar())


def test_a_promoted_copys_own_event_is_neither_scanned_nor_billed(stack):
    s = destination_stack(stack)
    copy = promoted(s, "in/report.txt")
    assert s.meta(copy, bucket=s.intake)[MARKER]
    summary = s.scan()  # the promotion's own Copy event (and the ledger's own writes)
    assert "submitted" not in summary["counts"] and "error" not in summary["counts"], summary
    assert s.jobs_created() == 1 and s.tags(copy)["cosguard-status"] == "clean"


def test_a_promoted_marker_moved_to_other_bytes_or_another_key_is_not_trusted(stack):
    s = destination_stack(stack)
    copy = promoted(s, "in/report.txt")
    marker = {MARKER: s.meta(copy, bucket=s.intake)[MARKER]}
    s.scan()
    s.cos.copy_object(Bucket=s.intake, Key="released/elsewhere.exe", CopySource={  # a genuine copy, elsewhere
        "Bucket": s.intake, "Key": copy, "Region": s.cloud.region})
    s.put(copy, eicar(), Metadata=marker)  # other bytes at the promoted key, the genuine marker kept
    summary = s.scan()
    assert summary["counts"] == {"submitted": 2}, summary
    s.settle()
    assert_quarantined(s, copy, eicar())
    assert s.tags("released/elsewhere.exe")["cosguard-status"] == "clean"
    assert not s.exists("released/released/elsewhere.exe")  # clean in the destination: tagged in place


def test_backfill_scans_unsealed_objects_in_the_destination_and_skips_promoted_copies(stack, capsys, tmp_path):
    s = destination_stack(stack)
    promoted(s, "in/report.txt")
    s.put("released/old/evil.com", eicar())  # there before cosguard watched: no event is delivered
    s.events.clear()
    jobs = s.jobs_created()
    code, report, _ = s.cli(capsys, tmp_path, "backfill", "--bucket", s.intake)
    assert report["counts"].get("submitted") == 1, report
    s.settle()
    assert_quarantined(s, "released/old/evil.com", eicar())
    assert s.jobs_created() == jobs + 1  # the promoted copy cost no scan


def test_verify_and_preflight_warn_when_uploaders_can_write_the_destination(stack, capsys, tmp_path):
    s = destination_stack(stack)
    code, report, _ = s.cli(capsys, tmp_path, "verify", "--bucket", s.intake, "--timeout", "0.1")
    assert any("clean destination" in w and "uploaders can write" in w for w in report["warnings"]), report


def test_the_readers_copy_keeps_the_uploads_content_headers(stack):
    """The marker is written with the copy (metadata replaced): the headers readers are served with
    (type, disposition, caching, encoding, language, expiry) are sent again, not lost."""
    s = destination_stack(stack)
    headers = {"ContentType": "text/plain; charset=utf-8", "ContentDisposition": 'attachment; filename="r.txt"',
               "CacheControl": "max-age=60", "ContentEncoding": "identity", "ContentLanguage": "zh-CN",
               "Expires": "Wed, 21 Oct 2037 07:28:00 GMT"}
    s.put("in/report.txt", clean_text(), Metadata={"x-cos-meta-team": "blue"}, **headers)
    s.scan()
    s.settle()
    answer = {k.lower(): v for k, v in s.cos.head_object(Bucket=s.intake, Key="released/in/report.txt").items()}
    for name, value in headers.items():
        wire = {"ContentType": "content-type", "ContentDisposition": "content-disposition",
                "CacheControl": "cache-control", "ContentEncoding": "content-encoding",
                "ContentLanguage": "content-language", "Expires": "expires"}[name]
        assert answer.get(wire) == value, (wire, answer)
    assert answer["x-cos-meta-team"] == "blue" and answer[MARKER]


def test_a_multipart_upload_promoted_is_not_scanned_again(stack):
    """A copy of a multipart upload gets a new ETag (the MD5 of its bytes, not `<md5>-<parts>`):
    the marker is bound to the copy's own ETag, so its events still recognise it."""
    s = destination_stack(stack)
    upload = s.cos.create_multipart_upload(Bucket=s.intake, Key="in/big.txt")["UploadId"]
    parts = [{"PartNumber": n, "ETag": s.cos.upload_part(Bucket=s.intake, Key="in/big.txt", Body=body, PartNumber=n,
                                                       UploadId=upload)["ETag"]}
             for n, body in ((1, b"a" * 5 * 1024 * 1024), (2, b"b" * 10))]
    s.cos.complete_multipart_upload(Bucket=s.intake, Key="in/big.txt", UploadId=upload,
                                    MultipartUpload={"Part": parts})
    assert "-" in s.cos.head_object(Bucket=s.intake, Key="in/big.txt")["ETag"]
    assert s.scan()["jobs"].get("in/big.txt")
    s.settle()
    summary = s.scan()  # the promotion's own events
    assert "submitted" not in summary["counts"] and "error" not in summary["counts"], summary
    assert s.jobs_created() == 1 and s.tags("released/in/big.txt")["cosguard-status"] == "clean"
    assert not s.exists("in/big.txt")
