"""The in-memory gateway cannot drift from COS: every assertion here runs against MemoryGateway AND a
CloudGateway on the local cloud (over HTTP, through the SDK). What cosguard relies on, as
infra/gateway.py states it: forbid-overwrite, a copy's If-Match, NotFoundError for what is missing,
ETags per content, versions and delete markers, tag limits, CI jobs and their verdicts."""
from __future__ import annotations

import hashlib
import inspect
import uuid

import pytest

from cosguard.domain.jobs import VirusJob
from cosguard.errors import CloudPermanentError, CloudTransientError, NotFoundError, PreconditionFailed
from cosguard.infra.cloud import CloudGateway
from cosguard.infra.config import Settings
from cosguard.infra.gateway import Gateway
from cosguard.infra.memory import MemoryGateway
from cosguard.local.samples import clean_text, eicar
from cosguard.local.stack import LocalCloud
from helpers import CALLBACK_SECRET

PLAIN, VERSIONED = "plain-1250000000", "versioned-1250000000"


class Backend:
    """A gateway, and what an uploader and CI do to the cloud behind it: `put` (with a content type
    and metadata), `append` (APPEND Object, doc 436/7741), `finish_jobs` (CI ends every job)."""

    def __init__(self, gateway, put, append, finish_jobs):
        self.gateway = gateway
        self.put = put
        self.append = append
        self.finish_jobs = finish_jobs


@pytest.fixture(scope="module")
def local_cloud():
    with LocalCloud([PLAIN, VERSIONED], versioned=[VERSIONED], scan_delay=0.01) as cloud:
        yield cloud


@pytest.fixture(params=["memory", "local"])
def backend(request):
    if request.param == "memory":
        gateway = MemoryGateway([PLAIN], versioned=[VERSIONED])
        return Backend(gateway, lambda bucket, key, body, content_type, metadata: gateway.put_object(
                           bucket, key, body, metadata=metadata, content_type=content_type),
                       gateway.append, gateway.ci.finish_all)
    cloud = request.getfixturevalue("local_cloud")
    env = cloud.function_env(COSGUARD_CALLBACK_TOKEN=CALLBACK_SECRET)
    gateway = CloudGateway(Settings.from_env(env, require_callback_url=False))
    cos = cloud.client("cos")

    def put(bucket, key, body, content_type, metadata):
        cos.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type,
                       Metadata={f"x-cos-meta-{k}": v for k, v in metadata.items()})

    def append(bucket, key, body):
        position = gateway.head(bucket, key).size if cos.object_exists(Bucket=bucket, Key=key) else 0
        cos.append_object(Bucket=bucket, Key=key, Position=position, Data=body)

    def finish_jobs():
        assert cloud.ci.wait_idle(30), "the local CI did not finish its jobs"
    return Backend(gateway, put, append, finish_jobs)


def fresh(name: str) -> str:
    """A key no other test (on the shared local cloud) writes."""
    return f"{uuid.uuid4().hex[:8]}/{name}"


def test_both_implement_every_method_of_the_protocol_alike():
    members = [name for name in vars(Gateway) if not name.startswith("_")]
    assert "head" in members and "submit_virus_job" in members
    for implementation in (CloudGateway, MemoryGateway):
        for name in members:
            wanted = inspect.signature(getattr(Gateway, name)).parameters
            found = inspect.signature(getattr(implementation, name)).parameters
            assert [(p.name, p.kind, p.default) for p in found.values()] == \
                   [(p.name, p.kind, p.default) for p in wanted.values()], (implementation.__name__, name)


def test_missing_keys_are_not_found(backend):
    gateway, key = backend.gateway, fresh("missing.txt")
    for call in (lambda: gateway.head(PLAIN, key), lambda: gateway.get_json(PLAIN, key),
                 lambda: gateway.get_tags(PLAIN, key), lambda: gateway.put_tags(PLAIN, key, {"a": "b"})):
        with pytest.raises(NotFoundError):
            call()
    gateway.delete(PLAIN, key)  # deleting what is not there is no error (S3 and COS answer 204)


def test_forbid_overwrite_is_precondition_failed_and_writes_nothing(backend):
    gateway, key = backend.gateway, fresh("claim.json")
    gateway.put_json(PLAIN, key, {"holder": "first"}, if_absent=True)
    with pytest.raises(PreconditionFailed):
        gateway.put_json(PLAIN, key, {"holder": "second"}, if_absent=True)
    assert gateway.get_json(PLAIN, key) == {"holder": "first"}
    gateway.put_json(PLAIN, key, {"holder": "third"})   # an unconditional write replaces it
    assert gateway.get_json(PLAIN, key) == {"holder": "third"}


def test_forbid_overwrite_is_ignored_on_a_versioned_bucket(backend):
    gateway, key = backend.gateway, fresh("claim.json")
    gateway.put_json(VERSIONED, key, {"holder": "first"}, if_absent=True)
    gateway.put_json(VERSIONED, key, {"holder": "second"}, if_absent=True)
    assert gateway.get_json(VERSIONED, key) == {"holder": "second"}


def test_a_document_that_is_not_json_is_refused_for_good(backend):
    gateway, key = backend.gateway, fresh("planted.json")
    gateway.upload(PLAIN, key, b"\xff not json")
    with pytest.raises(CloudPermanentError) as caught:
        gateway.get_json(PLAIN, key)
    assert caught.value.code == "NotJSON" and not isinstance(caught.value, NotFoundError)
    gateway.put_json(PLAIN, key, {"n": "x" * 100})
    with pytest.raises(CloudPermanentError, match="not JSON"):
        gateway.get_json(PLAIN, key, max_bytes=50)


def test_etags_are_the_md5_of_the_bytes_and_change_with_them(backend):
    gateway, key = backend.gateway, fresh("etag.txt")
    gateway.upload(PLAIN, key, b"first")
    first = gateway.head(PLAIN, key)
    assert first.etag == f'"{hashlib.md5(b"first").hexdigest()}"' and first.size == 5
    assert first.version_id is None and first.last_modified > 0 and first.tag_count == 0
    assert first.crc64 and first.object_type == "" and first.content_type == "application/octet-stream"
    gateway.upload(PLAIN, key, b"second")
    assert gateway.head(PLAIN, key).etag != first.etag
    gateway.upload(PLAIN, key, b"first")
    assert gateway.head(PLAIN, key).etag == first.etag   # the same bytes: the same ETag (a new write all the same)


def test_a_copy_is_if_match_its_source(backend):
    gateway, key = backend.gateway, fresh("source.txt")
    gateway.upload(PLAIN, key, b"scanned bytes")
    scanned = gateway.head(PLAIN, key)
    copy = gateway.copy(scanned, PLAIN, key + ".copy", metadata={"origin": "test"})
    assert copy.etag == scanned.etag and copy.key == key + ".copy" and copy.tag_count == 0
    head = gateway.head(PLAIN, key + ".copy")
    assert head.etag == scanned.etag and head.metadata == {"origin": "test"} and head.crc64 == scanned.crc64
    gateway.upload(PLAIN, key, b"overwritten since the scan")
    with pytest.raises(PreconditionFailed):
        gateway.copy(scanned, PLAIN, key + ".late")
    with pytest.raises(NotFoundError):
        gateway.head(PLAIN, key + ".late")


def test_a_copy_keeps_the_content_type_and_replaces_or_keeps_the_metadata(backend):
    gateway, key = backend.gateway, fresh("typed.pdf")
    backend.put(PLAIN, key, b"%PDF-1.4", "application/pdf", {"owner": "ana"})
    source = gateway.head(PLAIN, key)
    assert source.content_type == "application/pdf" and source.metadata == {"owner": "ana"}
    gateway.copy(source, PLAIN, key + ".kept")
    kept = gateway.head(PLAIN, key + ".kept")
    assert (kept.content_type, kept.metadata) == ("application/pdf", {"owner": "ana"})
    gateway.copy(source, PLAIN, key + ".replaced", metadata={"manifest": "m"})
    replaced = gateway.head(PLAIN, key + ".replaced")
    assert (replaced.content_type, replaced.metadata) == ("application/pdf", {"manifest": "m"})


def test_an_appendable_object_is_refused_by_copy_and_streamed_instead(backend):
    gateway, key = backend.gateway, fresh("log.txt")
    backend.append(PLAIN, key, b"first line\n")
    backend.append(PLAIN, key, b"second line\n")
    source = gateway.head(PLAIN, key)
    assert source.object_type == "appendable" and source.size == 23 and source.version_id is None
    with pytest.raises(CloudPermanentError) as caught:
        gateway.copy(source, PLAIN, key + ".copy")
    assert not isinstance(caught.value, (NotFoundError, PreconditionFailed))
    streamed = gateway.stream_copy(source, PLAIN, key + ".streamed", metadata={"why": "quarantine"})
    head = gateway.head(PLAIN, key + ".streamed")
    assert head.object_type == "" and head.size == 23 and head.crc64 == source.crc64
    assert head.metadata == {"why": "quarantine"} and streamed.etag == head.etag


def test_tags_round_trip_and_at_most_ten(backend):
    gateway, key = backend.gateway, fresh("tagged.txt")
    gateway.upload(PLAIN, key, b"x")
    gateway.put_tags(PLAIN, key, {"cosguard-status": "clean", "owner": "ana"})
    assert gateway.get_tags(PLAIN, key) == {"cosguard-status": "clean", "owner": "ana"}
    assert gateway.head(PLAIN, key).tag_count == 2
    gateway.copy(gateway.head(PLAIN, key), PLAIN, key + ".copy", metadata={})   # the tags go with a copy
    assert gateway.get_tags(PLAIN, key + ".copy") == {"cosguard-status": "clean", "owner": "ana"}
    with pytest.raises(CloudPermanentError) as caught:
        gateway.put_tags(PLAIN, key, {f"t{i}": "v" for i in range(11)})
    assert not isinstance(caught.value, (NotFoundError, PreconditionFailed, CloudTransientError))
    assert gateway.get_tags(PLAIN, key) == {"cosguard-status": "clean", "owner": "ana"}


def test_delete_ignores_if_match(backend):
    """COS's DELETE takes no If-* (doc 436/7743): the local COS's default, the worse for cosguard."""
    gateway, key = backend.gateway, fresh("delete.txt")
    gateway.upload(PLAIN, key, b"x")
    gateway.delete(PLAIN, key, if_match='"not-its-etag"')
    with pytest.raises(NotFoundError):
        gateway.head(PLAIN, key)


def test_listing_is_in_key_order_after_the_marker(backend):
    gateway, base = backend.gateway, fresh("")
    for name in ("b", "a", "c/d"):
        gateway.upload(PLAIN, base + name, name.encode())
    listed = list(gateway.list(PLAIN, prefix=base))
    assert [item["Key"] for item in listed] == [base + "a", base + "b", base + "c/d"]
    assert int(listed[0]["Size"]) == 1 and listed[0]["ETag"] == f'"{hashlib.md5(b"a").hexdigest()}"'
    assert listed[0]["LastModified"][:2] == "20"
    after_a = gateway.list(PLAIN, prefix=base, marker=base + "a")
    assert [item["Key"] for item in after_a] == [base + "b", base + "c/d"]
    by_one = gateway.list(PLAIN, prefix=base, page_size=1)   # page after page
    assert [item["Key"] for item in by_one] == [base + "a", base + "b", base + "c/d"]


def test_versions_and_delete_markers(backend):
    gateway, key = backend.gateway, fresh("versioned.txt")
    assert gateway.versioning_status(VERSIONED) == "enabled" and gateway.versioning_status(PLAIN) == ""
    gateway.upload(VERSIONED, key, b"one")
    one = gateway.head(VERSIONED, key)
    gateway.upload(VERSIONED, key, b"two")
    two = gateway.head(VERSIONED, key)
    assert one.version_id and two.version_id and one.version_id != two.version_id
    assert gateway.head(VERSIONED, key, one.version_id).etag == one.etag
    gateway.delete(VERSIONED, key)   # a delete marker: the versions stay
    with pytest.raises(NotFoundError):
        gateway.head(VERSIONED, key)
    assert gateway.head(VERSIONED, key, two.version_id).etag == two.etag
    assert list(gateway.list(VERSIONED, prefix=key)) == []
    page = gateway.list_versions_page(VERSIONED, key, "", "")
    versions = page["Version"] if isinstance(page["Version"], list) else [page["Version"]]
    markers = page["DeleteMarker"] if isinstance(page["DeleteMarker"], list) else [page["DeleteMarker"]]
    assert [v["VersionId"] for v in versions] == [two.version_id, one.version_id]
    assert [v["IsLatest"] for v in versions] == ["false", "false"] and markers[0]["IsLatest"] == "true"
    gateway.delete(VERSIONED, key, two.version_id)
    with pytest.raises(NotFoundError):
        gateway.head(VERSIONED, key, two.version_id)


@pytest.fixture(params=[False, True], ids=["url-query-dropped", "url-query-kept"])
def url_query_kept(request, backend):
    """Whether CI fetches a `Url` with its query (its signature): undocumented, so both positions;
    dropped is the local CI's default."""
    if isinstance(backend.gateway, MemoryGateway):
        backend.gateway.ci.url_query_kept = request.param
        yield request.param
        return
    cloud = request.getfixturevalue("local_cloud")
    cloud.ci.faults.url_query_dropped = not request.param
    yield request.param
    cloud.ci.faults.url_query_dropped = True


def test_ci_jobs_are_queried_and_judged(backend, url_query_kept):
    gateway, infected, clean, odd = backend.gateway, fresh("eicar.com"), fresh("clean.txt"), fresh("odd.txt ")
    gateway.upload(PLAIN, infected, eicar())
    gateway.upload(PLAIN, odd, eicar())
    gateway.upload(VERSIONED, clean, clean_text())
    version = gateway.head(VERSIONED, clean).version_id
    gateway.upload(VERSIONED, clean, eicar())   # the pinned job still reads the clean version
    jobs = [gateway.submit_virus_job(PLAIN, infected, None),
            gateway.submit_virus_job(PLAIN, odd, None),   # a key XML would not carry: a Url (ci_input.py)
            gateway.submit_virus_job(VERSIONED, clean, None, version_id=version, pinned=True)]
    assert len(set(jobs)) == 3
    backend.finish_jobs()
    job = VirusJob.of(gateway.query_virus_job(PLAIN, jobs[0]))   # the answer, judged by the domain
    assert job.job_id == jobs[0] and job.finished and job.infected and job.scanned_key(PLAIN) == infected
    assert job.virus_names and not job.url
    odd_job = VirusJob.of(gateway.query_virus_job(PLAIN, jobs[1]))
    pinned = VirusJob.of(gateway.query_virus_job(VERSIONED, jobs[2]))
    assert odd_job.url and odd_job.scanned_key(PLAIN) == odd and pinned.url and pinned.scanned_key(VERSIONED) == clean
    if url_query_kept:
        assert odd_job.infected and pinned.clean
    else:   # a private bucket refuses the unsigned GET
        assert (odd_job.state, odd_job.code) == (pinned.state, pinned.code) == ("Failed", "ResourceDownloadFailed")
    with pytest.raises(NotFoundError):
        gateway.query_virus_job(PLAIN, jobs[2])   # a job of another bucket
    with pytest.raises(NotFoundError):
        gateway.query_virus_job(PLAIN, "av" + "0" * 24)


def test_version_listing_pages_resume_at_their_markers(backend):
    gateway, base = backend.gateway, fresh("")
    for name in ("a", "b"):
        for body in (b"1", b"2"):
            gateway.upload(VERSIONED, base + name, body)
    gateway.delete(VERSIONED, base + "a")

    def rows(page):
        found = []
        for kind in ("Version", "DeleteMarker"):
            items = page.get(kind) or []
            found += [(i["Key"], i["VersionId"], kind) for i in (items if isinstance(items, list) else [items])]
        return found
    whole = gateway.list_versions_page(VERSIONED, base, "", "")
    assert whole["IsTruncated"] == "false" and len(rows(whole)) == 5
    paged, key_marker, version_marker = [], "", ""
    while True:
        page = gateway.list_versions_page(VERSIONED, base, key_marker, version_marker, page_size=2)
        paged += rows(page)
        if page["IsTruncated"] != "true":
            break
        key_marker, version_marker = page["NextKeyMarker"], page["NextVersionIdMarker"]
    assert sorted(paged) == sorted(rows(whole)) and len(paged) == 5
