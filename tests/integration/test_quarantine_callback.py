"""functions/quarantine_callback end to end: CI calls the function URL back, the function
re-queries CI and acts only on the scanned object version."""
from __future__ import annotations

import base64
import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from cosguard.domain.actions import decode_manifest
from cosguard.domain.security import callback_url, object_ref
from cosguard.local.loader import load_handler
from cosguard.local.samples import clean_text, eicar, eicar_zip_in_tar_gz
from helpers import Context, load_event


def head_meta(deployment, bucket, key):
    headers = deployment.cos.head_object(Bucket=bucket, Key=key)
    return {k.lower()[len("x-cos-meta-"):]: v for k, v in headers.items() if k.lower().startswith("x-cos-meta-")}


def manifest_of(deployment, key):
    return decode_manifest(head_meta(deployment, deployment.jail, deployment.quarantined(key)))


def upload_and_settle(deployment, key, body, **kwargs):
    deployment.put(key, body, **kwargs)
    summary = deployment.scan()
    deployment.settle()
    return summary["jobs"].get(key)


def url_for(deployment, job_id=None, **replace):
    """The URL CI was given for `job_id`; without one, a genuine URL for some other object.
    `replace` swaps query parameters (a wrong token, another bucket...)."""
    if job_id:
        url = deployment.callback_url(job_id)
    else:
        sealer = deployment.callback_handler.__globals__["RUNTIME"].sealer
        url = callback_url(deployment.callback_server.url, sealer, deployment.intake,
                           object_ref(deployment.intake, "elsewhere", "x"), int(time.time()) + 600)
    if replace:
        parts = urlsplit(url)
        query = dict({k: v[0] for k, v in parse_qs(parts.query).items()}, **replace)
        url = parts._replace(query="&".join(f"{k}={v}" for k, v in query.items())).geturl()
    return url


def xml_callback(job_id, suggestion="block"):
    return (f"<Response><JobsDetail><JobId>{job_id}</JobId><State>Success</State>"
            f"<Suggestion>{suggestion}</Suggestion></JobsDetail></Response>").encode()


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_eicar_is_moved_with_its_manifest(deploy, fmt):
    deployment = deploy(callback_format=fmt)
    job_id = upload_and_settle(deployment, "in/eicar.com", eicar())
    assert not deployment.exists("in/eicar.com")
    assert deployment.quarantined("in/eicar.com") == f"quarantine/{deployment.intake}/{job_id}/in/eicar.com"
    manifest = manifest_of(deployment, "in/eicar.com")
    assert manifest["bucket"] == deployment.intake and manifest["key"] == "in/eicar.com"
    assert manifest["job_id"] == job_id and manifest["size"] == 68 and manifest["etag"]
    assert manifest["findings"] and manifest["findings"][0]["virus"]
    assert deployment.tags(deployment.quarantined("in/eicar.com"), bucket=deployment.jail)["cosguard-status"] == "infected"
    closed = deployment.cos.get_object(Bucket=deployment.jail, Key=f".cosguard/closed/{job_id}.json")
    assert json.loads(closed["Body"].get_raw_stream().read())["outcome"] == "quarantined"
    assert deployment.ledger_keys("jobs") == []


def test_eicar_in_a_zip_in_a_tar_gz_names_the_inner_file(deployment):
    upload_and_settle(deployment, "bundle.tar.gz", eicar_zip_in_tar_gz())
    manifest = manifest_of(deployment, "bundle.tar.gz")
    assert any("eicar.com" in f["file"] for f in manifest["findings"]), manifest


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_clean_file_is_tagged_clean_and_stays(deploy, fmt):
    deployment = deploy(callback_format=fmt)
    deployment.put("notes.txt", clean_text(), Tagging="team=blue")
    job_id = deployment.scan()["jobs"]["notes.txt"]
    deployment.settle()
    assert deployment.tags("notes.txt") == {"team": "blue", "cosguard-status": "clean", "cosguard-job": job_id}
    assert deployment.keys(bucket=deployment.jail, prefix="quarantine/") == []


def test_failed_job_marks_error_with_code_and_message(deploy):
    deployment = deploy(scan_delay=0.5)
    deployment.put("big.bin", b"pretend this is huge")
    job_id = deployment.scan()["jobs"]["big.bin"]
    # By the time CI opens it (0.5 s later), the object reports 2 GB: CI fails the job.
    deployment.cloud.cos.simulate_size(deployment.intake, "big.bin", 2 * 1024 ** 3)
    deployment.settle()
    tags = deployment.tags("big.bin")
    assert tags["cosguard-status"] == "error" and tags["cosguard-job"] == job_id
    assert deployment.exists("big.bin")  # failures are tagged, not moved, by default
    closed = json.loads(deployment.cos.get_object(Bucket=deployment.jail, Key=f".cosguard/closed/{job_id}.json")
                        ["Body"].get_raw_stream().read())
    assert closed["outcome"] == "error" and closed["manifest"]["reason"].startswith("job Failed")


def test_wrong_token_is_401_and_nothing_moves(deployment, capsys):
    deployment.cloud.ci.faults.drop_callback_rate = 1.0
    job_id = upload_and_settle(deployment, "eicar.com", eicar())
    capsys.readouterr()
    answer = requests.post(url_for(deployment, job_id, token="f00d" * 16), data=xml_callback(job_id), timeout=5)
    assert answer.status_code == 401 and answer.json() == {"error": "unauthorized"}
    logged = capsys.readouterr().out
    lines = [json.loads(line) for line in logged.splitlines() if line.startswith("{")]
    warnings = [line for line in lines if line["event"] == "callback_rejected"]
    assert len(warnings) == 1 and warnings[0]["level"] == "WARNING"
    assert "f00d" * 16 not in logged
    missing = requests.post(deployment.callback_server.url + f"?bucket={deployment.intake}",
                            data=xml_callback(job_id), timeout=5)
    assert missing.status_code == 401 and missing.json() == answer.json()
    # an unknown bucket is not distinguishable from a bad token (it used to be a 403)
    other = requests.post(url_for(deployment, job_id, bucket="stranger-1250000000"), data=xml_callback(job_id),
                          timeout=5)
    assert other.status_code == 401 and other.json() == answer.json()
    assert deployment.exists("eicar.com")
    assert deployment.tags("eicar.com")["cosguard-status"] == "pending"


def test_body_claiming_block_for_a_clean_job_moves_nothing(deployment):
    deployment.cloud.ci.faults.drop_callback_rate = 1.0
    job_id = upload_and_settle(deployment, "clean.txt", clean_text())
    answer = requests.post(url_for(deployment, job_id), data=xml_callback(job_id, "block"), timeout=5)
    assert answer.status_code == 200 and answer.json()["outcome"] == "clean"
    assert deployment.exists("clean.txt")
    assert deployment.keys(bucket=deployment.jail, prefix="quarantine/") == []


def test_forged_job_id_touches_nothing(deployment):
    deployment.put("x.txt", b"x")
    answer = requests.post(url_for(deployment), data=xml_callback("ss" + "0" * 32), timeout=5)
    assert answer.status_code == 404
    assert deployment.exists("x.txt")


def test_the_same_callback_three_times_makes_one_copy(deployment):
    deployment.cloud.ci.faults.drop_callback_rate = 1.0
    job_id = upload_and_settle(deployment, "eicar.com", eicar())
    copies_before = deployment.cloud.cos.counters.snapshot().get("CopyObject", 0)
    answers = [requests.post(url_for(deployment, job_id), data=xml_callback(job_id), timeout=5) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.json()["outcome"] for a in answers] == ["quarantined", "already_done", "already_done"]
    assert deployment.cloud.cos.counters.snapshot().get("CopyObject", 0) - copies_before == 1


def test_duplicated_deliveries_from_ci_make_one_copy(deployment):
    deployment.cloud.ci.faults.duplicate_callback_rate = 1.0
    upload_and_settle(deployment, "eicar.com", eicar())
    assert deployment.cloud.cos.counters.snapshot().get("CopyObject", 0) == 1
    assert deployment.quarantined("eicar.com")


def test_object_overwritten_before_the_verdict_is_stale(deployment):
    deployment.cloud.ci.faults.drop_callback_rate = 1.0
    deployment.put("swap.bin", eicar())
    job_id = deployment.scan()["jobs"]["swap.bin"]
    deployment.put("swap.bin", clean_text())  # overwritten while the scan runs
    deployment.settle()
    answer = requests.post(url_for(deployment, job_id), data=xml_callback(job_id), timeout=5)
    assert answer.json()["outcome"] == "stale"
    sweep = load_handler("reconcile_pending", deployment.env)
    assert sweep({"Type": "Timer"}, Context())["applied"] == {}  # the callback closed the old job
    assert deployment.exists("swap.bin")
    body = deployment.cos.get_object(Bucket=deployment.intake, Key="swap.bin")["Body"].get_raw_stream().read()
    assert body == clean_text()
    assert deployment.keys(bucket=deployment.jail, prefix="quarantine/") == []


def test_unwritable_quarantine_deletes_the_original_instead_of_retrying_forever(deployment):
    """COS refusing the copy (403) will not heal by retrying: the infected original is deleted
    (domain/fallback.py; a transient failure is still retried, tests/adversarial/state/test_state_limits.py)."""
    deployment.cloud.cos.faults.deny(deployment.jail, {"CopyObject"})
    deployment.cloud.ci.faults.drop_callback_rate = 1.0
    job_id = upload_and_settle(deployment, "eicar.com", eicar())
    answer = requests.post(url_for(deployment, job_id), data=xml_callback(job_id), timeout=5)
    assert answer.status_code == 200 and answer.json()["outcome"] == "deleted"
    assert "copy was refused" in answer.json()["detail"]
    assert not deployment.exists("eicar.com")
    assert deployment.keys(bucket=deployment.jail, prefix="quarantine/") == []


BILLION_LAUGHS = b"""<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]><Response><JobsDetail><JobId>&c;</JobId></JobsDetail></Response>"""
XXE = b"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<Response><JobsDetail><JobId>&x;</JobId></JobsDetail></Response>"""


@pytest.mark.parametrize("body", [BILLION_LAUGHS, XXE])
def test_entity_attacks_are_400(deployment, body):
    answer = requests.post(url_for(deployment), data=body, timeout=5)
    assert answer.status_code == 400


def test_oversized_body_is_413(deployment):
    answer = requests.post(url_for(deployment), data=b"<Response>" + b" " * (70 * 1024) + b"</Response>", timeout=5)
    assert answer.status_code == 413


def test_api_gateway_shape_with_base64_body(deployment):
    deployment.cloud.ci.faults.drop_callback_rate = 1.0
    job_id = upload_and_settle(deployment, "eicar.com", eicar())
    event = load_event("apigw_post.json")
    event["queryStringParameters"] = {k: v[0] for k, v in parse_qs(urlsplit(url_for(deployment, job_id)).query).items()}
    event["queryString"] = {}
    event["body"] = base64.b64encode(xml_callback(job_id)).decode()
    event["isBase64Encoded"] = True
    answer = deployment.callback_handler(event, {"request_id": "r1"})
    assert answer["statusCode"] == 200 and json.loads(answer["body"])["outcome"] == "quarantined"


@pytest.mark.parametrize("action, outcome", [("delete", "deleted"), ("tag", "infected")])
def test_other_actions_for_infected(deploy, action, outcome):
    deployment = deploy(COSGUARD_INFECTED_ACTION=action)
    deployment.cloud.ci.faults.drop_callback_rate = 1.0
    job_id = upload_and_settle(deployment, "eicar.com", eicar())
    answer = requests.post(url_for(deployment, job_id), data=xml_callback(job_id), timeout=5).json()
    assert answer["outcome"] == outcome
    assert deployment.keys(bucket=deployment.jail, prefix="quarantine/") == []
    if action == "delete":
        assert not deployment.exists("eicar.com")
    else:
        assert deployment.tags("eicar.com")["cosguard-status"] == "infected"


def test_versioned_bucket_removes_exactly_the_scanned_version(deploy):
    deployment = deploy(versioned=True)
    upload_and_settle(deployment, "eicar.com", eicar())
    assert not deployment.exists("eicar.com")
    versions = deployment.cos.list_objects_versions(Bucket=deployment.intake, Prefix="eicar.com")
    assert not versions.get("Version")  # the version itself was deleted, not hidden by a marker
    assert manifest_of(deployment, "eicar.com")["version_id"]


def test_fail_closed_promotion(deploy):
    deployment = deploy(COSGUARD_CLEAN_DESTINATION="/released/")
    deployment.put("incoming/report.txt", clean_text())
    deployment.put("incoming/eicar.com", eicar())
    deployment.scan()
    deployment.settle()
    assert not deployment.exists("incoming/report.txt")
    assert deployment.exists("released/incoming/report.txt")
    assert deployment.tags("released/incoming/report.txt")["cosguard-status"] == "clean"
    assert not deployment.exists("released/incoming/eicar.com")
    assert deployment.quarantined("incoming/eicar.com")
    # the promoted copy's own COS event is skipped, never scanned again
    assert deployment.scan()["counts"].get("submitted", 0) == 0


def test_objects_past_the_single_copy_limit_are_copied_in_parts(deployment):
    """Above 5 GB COS needs a multipart copy; the threshold is lowered to exercise that path."""
    runtime = deployment.callback_handler.__globals__["RUNTIME"]
    runtime.gateway.single_copy_limit = 5 * 1024 * 1024
    runtime.gateway.multipart_part_size = 5 * 1024 * 1024
    body = bytes(range(256)) * (12 * 1024 * 1024 // 256)
    deployment.put("large.bin", body)
    info = runtime.gateway.head(deployment.intake, "large.bin")
    runtime.gateway.copy(info, deployment.jail, "quarantine/large.bin", metadata={"cosguard-manifest": "x"})
    copied = deployment.cos.get_object(Bucket=deployment.jail, Key="quarantine/large.bin")
    assert copied["Body"].get_raw_stream().read() == body
    assert deployment.cloud.cos.counters.snapshot().get("UploadPartCopy", 0) >= 3
    assert head_meta(deployment, deployment.jail, "quarantine/large.bin") == {"cosguard-manifest": "x"}


def test_debug_logging_masks_the_event_authorization(deploy, capsys):
    deployment = deploy(COSGUARD_LOG_LEVEL="DEBUG")
    deployment.put("d.txt", b"x")
    capsys.readouterr()
    deployment.scan()
    out = capsys.readouterr().out
    assert '"event": "cos_event_received"' in out and "q-signature" not in out
    assert deployment.cloud.credentials.secret_key not in out
    [line] = [json.loads(text) for text in out.splitlines() if '"event": "cos_event_received"' in text]
    assert line["level"] == "DEBUG"   # the whole event only when asked for
    assert [r["cos"]["cosObject"]["key"].endswith("d.txt") for r in line["cos_event"]["Records"]] == [True]
