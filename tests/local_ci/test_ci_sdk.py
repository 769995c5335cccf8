"""Local CI through cos-python-sdk-v5's `ci_auditing_virus_submit` / `ci_auditing_virus_query`."""
from __future__ import annotations

import re
import time

import pytest
from qcloud_cos.cos_exception import CosServiceError

from ci_helpers import scan, wait_done
from ci_samples import (
    BUCKET,
    HDB_NAME,
    HDB_SAMPLE,
    HSB_SHA1_NAME,
    HSB_SHA1_SAMPLE,
    HSB_SHA256_NAME,
    HSB_SHA256_SAMPLE,
    OTHER_BUCKET,
    nested_eicar_tar_gz,
    nested_zip_bomb,
    seven_zip_bytes,
    zip_bytes,
)
from cosguard.local.auth import Credentials
from cosguard.local.ci import EICAR_NAME, eicar_bytes

EICAR = eicar_bytes()
# The spec's samples (shared/spec 004 submit, 000/003 query), as the SDK hands them back.
SUBMIT_NODES = {"JobId", "State", "CreationTime", "Object"}
QUERY_NODES = {"Code", "Message", "JobId", "State", "CreationTime", "Object", "Suggestion",
               "DetectDetail"}


def findings(answer):
    return [(r["FileName"], r["VirusName"])
            for detail in answer["JobsDetail"]["DetectDetail"] for r in detail["Result"]]


def test_submit_answer_has_the_sample_nodes(ci, client, store):
    store.put(BUCKET, "a.doc", b"text")
    answer = client.ci_auditing_virus_submit(Bucket=BUCKET, Key="a.doc")
    detail = answer["JobsDetail"]
    assert set(answer) == {"JobsDetail"} and set(detail) == SUBMIT_NODES
    assert re.fullmatch(r"ss[0-9a-f]{32}", detail["JobId"])
    assert detail["State"] == "Submitted" and detail["Object"] == "a.doc"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0800", detail["CreationTime"])


def test_clean_file(ci, client, store):
    store.put(BUCKET, "docs/clean.txt", b"hello world\n")
    answer = scan(client, "docs/clean.txt")
    assert set(answer) == {"JobsDetail", "RequestId"} and set(answer["JobsDetail"]) == QUERY_NODES
    detail = answer["JobsDetail"]
    assert (detail["State"], detail["Suggestion"], detail["Code"]) == ("Success", "normal", "Success")
    assert detail["DetectDetail"] == [] and detail["Object"] == "docs/clean.txt"


def test_eicar(ci, client, store):
    store.put(BUCKET, "uploads/eicar.com", EICAR + b"\r\n")
    answer = scan(client, "uploads/eicar.com")
    assert set(answer["JobsDetail"]) == QUERY_NODES
    assert answer["JobsDetail"]["Suggestion"] == "block"
    assert findings(answer) == [("uploads/eicar.com", EICAR_NAME)]


def test_eicar_in_zip_in_tar_gz_shows_inner_path(ci, client, store):
    store.put(BUCKET, "outer.tar.gz", nested_eicar_tar_gz())
    answer = scan(client, "outer.tar.gz")
    assert answer["JobsDetail"]["Suggestion"] == "block"
    assert findings(answer) == [("inner.zip/eicar.com", EICAR_NAME)]


def test_several_results(ci, client, store):
    store.put(BUCKET, "two.zip", zip_bytes({"one/eicar.com": EICAR, "two/sample": HDB_SAMPLE}))
    assert sorted(findings(scan(client, "two.zip"))) == [("one/eicar.com", EICAR_NAME),
                                                         ("two/sample", HDB_NAME)]


@pytest.mark.parametrize("body, name", [(HDB_SAMPLE, HDB_NAME), (HSB_SHA1_SAMPLE, HSB_SHA1_NAME),
                                        (HSB_SHA256_SAMPLE, HSB_SHA256_NAME)])
def test_hash_list_hits(ci, client, store, body, name):
    store.put(BUCKET, "sample.bin", body)
    answer = scan(client, "sample.bin")
    assert answer["JobsDetail"]["Suggestion"] == "block"
    assert findings(answer) == [("sample.bin", name)]


def test_seven_zip(ci, client, store):
    pytest.importorskip("py7zr")
    store.put(BUCKET, "bundle.7z", seven_zip_bytes({"bin/eicar.com": EICAR, "ok.txt": b"ok"}))
    assert findings(scan(client, "bundle.7z")) == [("bin/eicar.com", EICAR_NAME)]


@pytest.mark.parametrize("setup, code", [
    (lambda store: None, "ResourceNotFound"),
    (lambda store: store.put(BUCKET, "k", b"x", reported_size=1 << 30), "FileSizeLimitExceeded"),
    (lambda store: store.put(BUCKET, "k", b"x", storage_class="ARCHIVE"), "InvalidObjectState"),
    (lambda store: store.put(BUCKET, "k", b"x", storage_class="DEEP_ARCHIVE"), "InvalidObjectState"),
])
def test_failed_jobs(ci, client, store, setup, code):
    setup(store)
    answer = scan(client, "k")
    detail = answer["JobsDetail"]
    assert set(detail) == QUERY_NODES
    assert detail["State"] == "Failed" and detail["Code"] == code and detail["Message"]
    assert detail["Suggestion"] is None and detail["DetectDetail"] == []


@pytest.mark.parametrize("storage_class, size", [("STANDARD_IA", None), ("STANDARD", (1 << 30) - 1)])
def test_scannable_edges(ci, client, store, storage_class, size):
    store.put(BUCKET, "k", EICAR, storage_class=storage_class, reported_size=size)
    assert scan(client, "k")["JobsDetail"]["Suggestion"] == "block"


def test_zip_bomb_ends_as_a_result_quickly(ci, client, store):
    store.put(BUCKET, "42.zip", nested_zip_bomb())
    started = time.process_time()  # CPU (the local CI runs in this process), not wall time
    detail = scan(client, "42.zip", wait=60)["JobsDetail"]  # the engine's own time limit
    assert time.process_time() - started < 6
    assert (detail["State"], detail["Code"]) == ("Failed", "ScanLimitExceeded")
    assert "unpacked content exceeds" in detail["Message"]


@pytest.mark.parametrize("body", [
    zip_bytes({"a.txt": b"fine" * 100})[:60],                           # truncated top-level zip
    nested_eicar_tar_gz()[:-40],                                        # truncated tar.gz
    b"PK\x03\x04" + b"\x00" * 600,                                      # a zip header, then garbage
], ids=["truncated-zip", "truncated-tar-gz", "corrupt-zip"])
def test_an_archive_that_cannot_be_opened_is_never_clean(ci, client, store, body):
    store.put(BUCKET, "broken.zip", body)
    detail = scan(client, "broken.zip")["JobsDetail"]
    assert (detail["State"], detail["Code"]) == ("Failed", "ArchiveUnreadable")
    assert "broken.zip" in detail["Message"] or "inner" in detail["Message"]
    assert detail["Suggestion"] is None and detail["DetectDetail"] == []


def test_a_finding_beats_the_bomb_beside_it(ci, client, store):
    store.put(BUCKET, "mixed.zip", zip_bytes({"a/eicar.com": EICAR, "b/42.zip": nested_zip_bomb()}))
    detail = scan(client, "mixed.zip", wait=60)["JobsDetail"]
    assert (detail["State"], detail["Suggestion"]) == ("Success", "block")


def test_states_progress(make_ci, make_client, store):
    ci = make_ci(scan_delay=0.01)
    client = make_client(ci)
    ci.faults.stuck_jobs = {"k"}   # held in Auditing until released: the test moves it on, not a timer
    store.put(BUCKET, "k", b"x")
    job_id = client.ci_auditing_virus_submit(Bucket=BUCKET, Key="k")["JobsDetail"]["JobId"]
    assert ci.wait_idle(5)   # picked up, and held
    assert client.ci_auditing_virus_query(Bucket=BUCKET, JobID=job_id)["JobsDetail"]["State"] == "Auditing"
    assert ci.backend.release("k") == [job_id]
    assert wait_done(client, job_id)["JobsDetail"]["State"] == "Success"


def test_job_is_visible_only_through_its_bucket(ci, client, store):
    store.put(BUCKET, "k", b"x")
    job_id = client.ci_auditing_virus_submit(Bucket=BUCKET, Key="k")["JobsDetail"]["JobId"]
    with pytest.raises(CosServiceError) as caught:
        client.ci_auditing_virus_query(Bucket=OTHER_BUCKET, JobID=job_id)
    assert (caught.value.get_status_code(), caught.value.get_error_code()) == (404, "NoSuchJob")
    assert wait_done(client, job_id)["JobsDetail"]["State"] == "Success"


def test_unknown_job_is_404(ci, client):
    with pytest.raises(CosServiceError) as caught:
        client.ci_auditing_virus_query(Bucket=BUCKET, JobID="ss" + "0" * 32)
    error = caught.value
    assert (error.get_status_code(), error.get_error_code()) == (404, "NoSuchJob")
    assert error.get_request_id() not in ("", "Unknown")


@pytest.mark.parametrize("change, code", [({"secret_key": "wrong-key"}, "SignatureDoesNotMatch"),
                                          ({"secret_id": "AKIDsomeoneelse"}, "InvalidAccessKeyId")])
def test_wrong_credentials_are_403(ci, make_client, store, change, code):
    store.put(BUCKET, "k", b"x")
    with pytest.raises(CosServiceError) as caught:
        make_client(ci, **change).ci_auditing_virus_submit(Bucket=BUCKET, Key="k")
    assert (caught.value.get_status_code(), caught.value.get_error_code()) == (403, code)
    assert ci.backend.jobs == {}


def test_security_token_headers(make_ci, make_client, raw, store):
    """The SDK sends x-ci-security-token on CI calls; the Go SDK sends x-cos-security-token."""
    ci = make_ci(credentials=Credentials("AKIDtok", "tok-secret", token="session-token"))
    store.put(BUCKET, "k", b"x")
    good = make_client(ci, secret_id="AKIDtok", secret_key="tok-secret", token="session-token")
    assert good.ci_auditing_virus_submit(Bucket=BUCKET, Key="k")["JobsDetail"]["State"] == "Submitted"
    with pytest.raises(CosServiceError) as caught:
        make_client(ci, secret_id="AKIDtok", secret_key="tok-secret").ci_auditing_virus_submit(
            Bucket=BUCKET, Key="k")
    assert caught.value.get_status_code() == 403
    body = b"<Request><Input><Object>k</Object></Input><Conf><DetectType>Virus</DetectType></Conf></Request>"
    for token, status in (("session-token", 200), ("another-token", 403)):
        answer = raw(ci, "POST", "/virus/detect", body, headers={"x-cos-security-token": token},
                     secret_id="AKIDtok", secret_key="tok-secret")
        assert answer.status_code == status, answer.text


def test_url_input(ci, client, receiver):
    receiver.bodies["/files/eicar.com"] = EICAR
    url = receiver.address("/files/eicar.com")
    job_id = client.ci_auditing_virus_submit(Bucket=BUCKET, Url=url)["JobsDetail"]["JobId"]
    answer = wait_done(client, job_id)
    assert set(answer["JobsDetail"]) == QUERY_NODES - {"Object"} | {"Url"}
    assert answer["JobsDetail"]["Url"] == url
    assert findings(answer) == [(url, EICAR_NAME)]


def test_url_that_cannot_be_fetched_fails_the_job(ci, client, receiver, closed_port_url):
    for url in (receiver.address("/missing"), closed_port_url()):
        job_id = client.ci_auditing_virus_submit(Bucket=BUCKET, Url=url)["JobsDetail"]["JobId"]
        detail = wait_done(client, job_id)["JobsDetail"]
        assert (detail["State"], detail["Code"]) == ("Failed", "ResourceDownloadFailed"), url


def test_url_download_is_bounded(make_ci, make_client, receiver):
    ci = make_ci(max_file_size=1000)
    receiver.bodies["/big"] = b"x" * 5000
    client = make_client(ci)
    job_id = client.ci_auditing_virus_submit(Bucket=BUCKET, Url=receiver.address("/big"))["JobsDetail"]["JobId"]
    assert wait_done(client, job_id)["JobsDetail"]["Code"] == "FileSizeLimitExceeded"
