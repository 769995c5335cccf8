"""Issue 19: the object changes between cosguard's check and its copy, at every copy cosguard makes:
promotion (fail-closed mode), quarantine, the in-place copy that reseals a promoted copy, and the
streamed copy of an appendable object (restore: tests/adversarial/state/test_state_restore.py).

Each copy names the checked ETag (`x-cos-copy-source-If-Match` on PUT Object - Copy and Upload
Part - Copy, docs 436/10881 and 436/8287; If-Match on every read of a streamed copy) and, on a
versioned bucket, the checked version. So nothing but the checked bytes is ever promoted or
quarantined, and the newer write is left to a scan of its own. The overwrite is injected at the
exact moment by wrapping the sweep's gateway (the verdict's HEAD is done, the copy not yet)."""
from __future__ import annotations

import random
from typing import Callable, Dict, List

import pytest

from cosguard.local.samples import clean_text, eicar, zip_bytes
from helpers import write_around

KEY = "race.exe"
COPY = f"released/{KEY}"        # where fail-closed mode promotes KEY (COSGUARD_CLEAN_DESTINATION=/released/)
PART = 1024 * 1024              # COS's smallest part: large objects are copied in parts of this size
PROMOTED_META = "x-cos-meta-cosguard-promoted"   # seal.PROMOTED_META, as HEAD shows it


def _small_pair():
    """A clean and an infected body of one size (128 bytes: EICAR with the padding its rule allows),
    so that a copy without its precondition would copy the other one whole."""
    infected = eicar() + b" " * (128 - len(eicar()))
    return clean_text()[:len(infected)], infected


def _large_pair():
    """A clean and an infected body of one size, three parts of PART: the infected one a zip whose
    EICAR member comes last (in the last part), the clean one plain text."""
    filler = random.Random(19).randbytes(2 * PART + PART // 2)
    infected = zip_bytes({"filler.bin": filler, "eicar.com": eicar()})
    text = b"plain clean text, nothing to see here. "
    return (text * (len(infected) // len(text) + 1))[:len(infected)], infected


def _verdict_pending(stack, body: bytes, key: str = KEY) -> None:
    """`body` uploaded and scanned, CI's callback lost: the sweep applies the verdict."""
    stack.cloud.ci.faults.drop_callback_rate = 1.0
    stack.put(key, body)
    stack.scan()
    stack.settle()


def _gateway(stack, parts: bool = False):
    """The sweep's gateway; `parts`: every copy goes part by part (Upload Part - Copy), as a copy
    over COS's 5 GB single-copy limit does."""
    gateway = stack.runtime(stack.sweep_handler).gateway
    if parts:
        gateway.single_copy_limit = 0
        gateway.multipart_part_size = PART
    return gateway


def _after_first_part(gateway, write: Callable[[], object]) -> None:
    """`write()` lands between the first and the second part of a multipart copy."""
    real = gateway.cos.upload_part_copy

    def first_part_then_write(*args, **kwargs):
        answer = real(*args, **kwargs)
        gateway.cos.upload_part_copy = real
        write()
        return answer
    gateway.cos.upload_part_copy = first_part_then_write


def _destination(stack) -> Dict[str, bytes]:
    """Every object under the clean destination, with its bytes."""
    listed = stack.cos.list_objects(Bucket=stack.intake, Prefix="released/").get("Contents") or []
    return {item["Key"]: stack.body(item["Key"]) for item in listed}


def _destination_writes(stack) -> List[str]:
    """Keys under the clean destination COS announced a write of since the last scan: a copy that
    landed there even for a moment (and was taken back) shows here."""
    stack.cloud.cos.drain()
    keys = [r["cos"]["cosObject"]["key"] for e in stack.events for r in e["Records"]]
    return [k for k in keys if k.split("/", 3)[3].startswith("released/")]


def _status(stack, key: str):
    """The object's `cosguard-status` tag, None when it has none (or no tags at all)."""
    tags = (stack.cos.get_object_tagging(Bucket=stack.intake, Key=key).get("TagSet") or {}).get("Tag") or []
    return {t["Key"]: t["Value"] for t in (tags if isinstance(tags, list) else [tags])}.get("cosguard-status")


def _alerts(stack, key: str = KEY) -> List[Dict]:
    return [n for n in stack.sink.received if n.get("key") == key]


def _stale_reported(stack, infected: bool) -> None:
    """The verdict was not applied, and an operator is told so, naming the key (and the virus the
    overwritten write had)."""
    [alert] = _alerts(stack)
    assert alert["kind"] == "stale" and alert["outcome"] == "stale"
    assert bool(alert["viruses"]) is infected


def _its_own_scan(stack) -> None:
    """The newer write's own event (COS emitted it), scanned and its verdict applied (by the sweep
    where cosguard submitted it already, and CI finished before callbacks were let through)."""
    stack.cloud.ci.faults.drop_callback_rate = 0.0
    stack.scan()
    stack.settle()
    stack.sweep()
    stack.settle()


def _parts_copied(stack) -> int:
    return stack.cloud.cos.counters.snapshot().get("UploadPartCopy", 0)


# -- promotion (fail-closed mode) ---------------------------------------------------------------------

@pytest.mark.parametrize("parts", [False, True], ids=["single-copy", "multipart-copy"])
def test_eicar_written_over_the_intake_object_before_its_promotion_copy_is_never_promoted(deploy, parts):
    stack = deploy(COSGUARD_CLEAN_DESTINATION="/released/")
    clean, infected = _small_pair()
    _verdict_pending(stack, clean)
    copies = write_around(_gateway(stack, parts), "copy", lambda: stack.put(KEY, infected))
    assert stack.sweep()["applied"] == {"stale": 1}
    assert copies and (_parts_copied(stack) > 0) is parts
    assert _destination_writes(stack) == []        # nothing promoted, nothing tagged clean
    assert stack.body(KEY) == infected             # left where it landed, for its own scan
    _stale_reported(stack, infected=False)
    _its_own_scan(stack)
    assert stack.body(KEY) is None and stack.quarantined_bodies() == [infected]
    assert _destination(stack) == {}


def test_an_overwrite_between_the_parts_of_a_promotion_copy_is_never_promoted(deploy):
    stack = deploy(COSGUARD_CLEAN_DESTINATION="/released/")
    clean, infected = _large_pair()
    _verdict_pending(stack, clean)
    _after_first_part(_gateway(stack, parts=True), lambda: stack.put(KEY, infected))
    assert stack.sweep()["applied"] == {"stale": 1}
    assert _parts_copied(stack) == 2               # the first part, then the refused second
    assert _destination_writes(stack) == []        # the multipart copy was aborted
    assert not stack.cos.list_multipart_uploads(Bucket=stack.intake).get("Upload")
    _its_own_scan(stack)
    assert stack.body(KEY) is None and stack.quarantined_bodies() == [infected]
    assert _destination(stack) == {}


def test_a_promotion_copied_in_parts_that_turns_stale_takes_its_copy_back(deploy):
    """The overwrite lands after the copy: the copy holds the checked bytes, under an ETag of its
    own which its marker cannot name yet. It is still known for cosguard's and withdrawn, and the
    newer write is promoted by its own verdict."""
    stack = deploy(COSGUARD_CLEAN_DESTINATION="/released/")
    clean, _ = _small_pair()
    _verdict_pending(stack, clean)
    gateway = _gateway(stack, parts=True)
    write_around(gateway, "copy", lambda: stack.put(KEY, b"the uploader's newer file"), after=True)
    assert stack.sweep()["applied"] == {"stale": 1}
    assert _parts_copied(stack) == 1
    assert _destination(stack) == {}
    [alert] = _alerts(stack)
    assert "was removed" in alert["detail"], alert
    _its_own_scan(stack)
    assert _destination(stack) == {COPY: b"the uploader's newer file"}


def _upload_in_one_part(stack, key: str, body: bytes) -> None:
    """A multipart upload: its ETag is not its copy's, so a promoted copy of it is resealed."""
    upload_id = stack.cos.create_multipart_upload(Bucket=stack.intake, Key=key)["UploadId"]
    part = stack.cos.upload_part(Bucket=stack.intake, Key=key, Body=body, PartNumber=1, UploadId=upload_id)
    stack.cos.complete_multipart_upload(Bucket=stack.intake, Key=key, UploadId=upload_id,
                                        MultipartUpload={"Part": [{"PartNumber": 1, "ETag": part["ETag"]}]})


def test_eicar_written_over_a_promoted_copy_before_it_is_resealed_is_never_tagged_clean(deploy):
    """An uploader who can write the clean destination replaces the promoted copy between the
    promotion and the in-place copy that seals it for its own ETag: that copy is refused, so the
    EICAR gets neither the seal nor `clean`, and its own event has it scanned."""
    stack = deploy(COSGUARD_CLEAN_DESTINATION="/released/")
    clean, infected = _small_pair()
    stack.cloud.ci.faults.drop_callback_rate = 1.0
    _upload_in_one_part(stack, KEY, clean)
    stack.scan()
    stack.settle()
    copies = write_around(_gateway(stack), "copy", lambda: stack.put(COPY, infected), call=2)
    assert stack.sweep()["applied"] == {"promoted": 1}
    assert len(copies) == 2                        # the promotion, then the refused reseal
    assert stack.body(COPY) == infected            # the uploader's write stands...
    assert _status(stack, COPY) is None             # ...never tagged clean
    assert PROMOTED_META not in {k.lower() for k in stack.cos.head_object(Bucket=stack.intake, Key=COPY)}
    _its_own_scan(stack)
    assert _destination(stack) == {} and stack.quarantined_bodies() == [infected]


def test_on_a_versioned_bucket_only_the_checked_version_is_promoted(deploy):
    """The copy names the checked version: an EICAR version landing before it is not what is
    promoted, and it is scanned as the key's current write once the clean version is removed."""
    stack = deploy(versioned=True, COSGUARD_CLEAN_DESTINATION="/released/")
    clean, infected = _small_pair()
    _verdict_pending(stack, clean)
    write_around(_gateway(stack), "copy", lambda: stack.put(KEY, infected))
    assert stack.sweep()["applied"] == {"promoted": 1}
    assert _destination(stack) == {COPY: clean}
    assert stack.tags(COPY)["cosguard-status"] == "clean"
    assert stack.body(KEY) == infected             # the newer version, current, not promoted
    _its_own_scan(stack)                           # and the exposed version's rescan, its callback lost
    assert stack.body(KEY) is None and stack.quarantined_bodies() == [infected]
    assert _destination(stack) == {COPY: clean}


# -- quarantine -------------------------------------------------------------------------------------

@pytest.mark.parametrize("parts", [False, True], ids=["single-copy", "multipart-copy"])
def test_a_clean_write_landing_before_the_quarantine_copy_is_never_quarantined(stack, parts):
    clean, infected = _small_pair()
    _verdict_pending(stack, infected)
    copies = write_around(_gateway(stack, parts), "copy", lambda: stack.put(KEY, clean))
    assert stack.sweep()["applied"] == {"stale": 1}
    assert copies and (_parts_copied(stack) > 0) is parts
    assert stack.body(KEY) == clean                # neither moved nor deleted
    assert stack.quarantined_bodies() == []
    _stale_reported(stack, infected=True)          # the infected write is reported, with its virus
    _its_own_scan(stack)
    assert stack.body(KEY) == clean and stack.tags(KEY)["cosguard-status"] == "clean"


def test_a_clean_write_between_the_parts_of_a_quarantine_copy_is_never_quarantined(stack):
    clean, infected = _large_pair()
    _verdict_pending(stack, infected)
    _after_first_part(_gateway(stack, parts=True), lambda: stack.put(KEY, clean))
    assert stack.sweep()["applied"] == {"stale": 1}
    assert _parts_copied(stack) == 2
    assert stack.body(KEY) == clean and stack.quarantined_bodies() == []
    assert not stack.cos.list_multipart_uploads(Bucket=stack.jail).get("Upload")
    _stale_reported(stack, infected=True)
    _its_own_scan(stack)
    assert stack.body(KEY) == clean and stack.tags(KEY)["cosguard-status"] == "clean"


def test_on_a_versioned_bucket_only_the_checked_version_is_quarantined(deploy):
    stack = deploy(versioned=True)
    clean, infected = _small_pair()
    _verdict_pending(stack, infected)
    write_around(_gateway(stack), "copy", lambda: stack.put(KEY, clean))
    assert stack.sweep()["applied"] == {"quarantined": 1}
    assert stack.quarantined_bodies() == [infected]
    assert stack.body(KEY) == clean                # the clean version stays current, untouched
    versions = stack.cos.list_objects_versions(Bucket=stack.intake, Prefix=KEY).get("Version") or []
    versions = versions if isinstance(versions, list) else [versions]
    assert len(versions) == 1                      # the infected version alone was removed
    _its_own_scan(stack)
    assert stack.body(KEY) == clean and stack.tags(KEY)["cosguard-status"] == "clean"
    assert stack.quarantined_bodies() == [infected]


# -- the streamed copy of an appendable object (APPEND Object, doc 436/7741) -----------------------

def _appendable_verdict_pending(stack, body: bytes) -> None:
    stack.cloud.cos.append_events = True
    stack.cloud.ci.faults.drop_callback_rate = 1.0
    stack.cos.append_object(Bucket=stack.intake, Key=KEY, Position=0, Data=body)
    stack.scan()
    stack.settle()


def _streamed_in_parts(stack):
    gateway = _gateway(stack)
    gateway.stream_part_size = PART
    return gateway


@pytest.fixture(params=[True, False], ids=["etag-kept", "etag-per-append"])
def keeps_etag(request) -> bool:
    """Whether COS gives an appendable object a new ETag per append is undocumented: both."""
    return request.param


@pytest.fixture(params=[True, False], ids=["crc64", "no-crc64"])
def crc64_known(request) -> bool:
    """Whether COS keeps a CRC64 for an appendable object is undocumented (doc 436/40334 lists the
    APIs that compute one; APPEND is not among them), and objects older than COS's CRC64 have none:
    without one (HEAD's, as the sweep's gateway sees it), If-Match alone guards a streamed copy."""
    return request.param


def _crc64_as_known(stack, known: bool) -> None:
    if not known:
        gateway = _gateway(stack)
        head = gateway.head
        gateway.head = lambda *args, **kwargs: head(*args, **kwargs).replace(crc64="")


@pytest.mark.parametrize("parts", [False, True], ids=["one-read", "part-by-part"])
def test_eicar_written_over_an_appendable_object_before_its_streamed_promotion_is_never_promoted(
        deploy, keeps_etag, crc64_known, parts):
    stack = deploy(COSGUARD_CLEAN_DESTINATION="/released/")
    stack.cloud.cos.append_keeps_etag = keeps_etag
    _crc64_as_known(stack, crc64_known)
    clean, infected = _large_pair() if parts else _small_pair()
    _appendable_verdict_pending(stack, clean)
    gateway = _streamed_in_parts(stack)
    if parts:   # between the first part's read and the second's
        write_around(gateway, "_read_range", lambda: stack.put(KEY, infected), call=2)
    else:
        write_around(gateway, "stream_copy", lambda: stack.put(KEY, infected))
    assert stack.sweep()["applied"] == {"stale": 1}
    assert _destination_writes(stack) == []
    assert stack.body(KEY) == infected
    _its_own_scan(stack)
    assert stack.body(KEY) is None and stack.quarantined_bodies() == [infected]


def test_a_clean_write_over_an_appendable_eicar_before_its_streamed_quarantine_is_never_quarantined(
        stack, keeps_etag, crc64_known):
    stack.cloud.cos.append_keeps_etag = keeps_etag
    _crc64_as_known(stack, crc64_known)
    clean, infected = _small_pair()
    _appendable_verdict_pending(stack, infected)
    write_around(_gateway(stack), "stream_copy", lambda: stack.put(KEY, clean))
    assert stack.sweep()["applied"] == {"stale": 1}
    assert stack.body(KEY) == clean and stack.quarantined_bodies() == []
    _stale_reported(stack, infected=True)


def test_an_append_during_a_streamed_promotion_copies_only_the_checked_bytes(deploy, keeps_etag):
    """Bytes appended while the copy is read are not the scanned write: never promoted (the reads
    stop at the checked size; with a new ETag per append they are refused), and the appended
    write, a write of its own, is scanned."""
    stack = deploy(COSGUARD_CLEAN_DESTINATION="/released/")
    stack.cloud.cos.append_keeps_etag = keeps_etag
    clean, _ = _large_pair()
    _appendable_verdict_pending(stack, clean)
    more = b" and more clean text"
    write_around(_streamed_in_parts(stack), "_read_range", call=2, write=lambda: stack.cos.append_object(
        Bucket=stack.intake, Key=KEY, Position=len(clean), Data=more))
    assert stack.sweep()["applied"] == {"stale": 1}
    assert _destination(stack) == {}               # a copy of the checked bytes was withdrawn
    assert stack.body(KEY) == clean + more
    _its_own_scan(stack)
    assert _destination(stack) == {COPY: clean + more} and stack.body(KEY) is None


@pytest.mark.parametrize("checked", ["clean", "eicar"])
def test_an_appendable_object_rewritten_to_the_same_etag_size_and_second_is_never_copied(deploy, checked):
    """With the first append's ETag kept (the local COS's default), an uploader deletes the object
    and appends it again within the same second: the same first part, so the same ETag, the same
    size and Last-Modified, and other bytes (EICAR completed by its second part, or a clean second
    part after EICAR's first). Nothing HEAD shows tells the writes apart: the bytes read are checked
    against the CRC64 HEAD gave, and the rewrite is never promoted, nor quarantined."""
    stack = deploy(COSGUARD_CLEAN_DESTINATION="/released/")
    stack.cloud.cos.append_keeps_etag = True
    stack.cloud.cos.append_events = True
    head = eicar()[:30]                              # EICAR only whole: its first 30 bytes are clean
    clean = head + b"-" * (len(eicar()) - len(head))
    first, then = (clean, eicar()) if checked == "clean" else (eicar(), clean)

    def write(body: bytes) -> None:
        stack.cos.append_object(Bucket=stack.intake, Key=KEY, Position=0, Data=head)
        stack.cos.append_object(Bucket=stack.intake, Key=KEY, Position=len(head), Data=body[len(head):])
    stack.cloud.ci.faults.drop_callback_rate = 1.0
    write(first)
    when = stack.last_modified(KEY)
    stack.scan()
    stack.settle()

    def rewrite() -> None:
        stack.cos.delete_object(Bucket=stack.intake, Key=KEY)
        write(then)
        stack.written_within(KEY, when)
    write_around(_gateway(stack), "stream_copy", rewrite)
    assert stack.sweep()["applied"] == {"stale": 1}
    assert _destination_writes(stack) == [] and stack.quarantined_bodies() == []
    assert stack.body(KEY) == then                   # left for a scan of its own
    _its_own_scan(stack)
    assert stack.body(KEY) is None
    if checked == "clean":
        assert stack.quarantined_bodies() == [eicar()] and _destination(stack) == {}
    else:
        assert stack.quarantined_bodies() == [] and _destination(stack) == {COPY: clean}
