"""functions/scan_on_upload against the local cloud: every record, skips, unscannables,
exactly-once, faults, tags, odd keys, config and malformed events."""
from __future__ import annotations

import copy
import json

import pytest

from cosguard.errors import CloudTransientError, ConfigError, EventParseError, SubmissionError
from cosguard.local.loader import load_handler
from cosguard.local.samples import eicar
from helpers import Context, load_event


def test_multi_record_event_submits_every_record(quiet):
    deployment = quiet
    for i in range(5):
        deployment.put(f"docs/file{i}.txt", b"hello %d" % i)
    event = deployment.combined_event()
    assert len(event["Records"]) == 5
    summary = deployment.scan(event)
    assert summary["counts"] == {"submitted": 5}
    assert deployment.jobs_submitted() == 5
    for i in range(5):
        tags = deployment.tags(f"docs/file{i}.txt")
        assert tags["cosguard-status"] == "pending"
        assert tags["cosguard-job"] == summary["jobs"][f"docs/file{i}.txt"]


def test_a_record_that_cannot_be_read_is_an_error_beside_the_others(quiet):
    """One unreadable record (no object key) in an event does not stop the others, and is counted
    as an error, never dropped in silence."""
    deployment = quiet
    deployment.put("docs/good.txt", b"hello")
    event = deployment.combined_event()
    broken = copy.deepcopy(event["Records"][0])
    del broken["cos"]["cosObject"]["key"]
    summary = deployment.scan({"Records": event["Records"] + [broken]})
    assert summary["counts"] == {"submitted": 1, "error": 1}


def test_eicar_gets_a_job_that_ci_reports_as_block(deployment):
    deployment.put("upload/eicar.com", eicar())
    summary = deployment.scan()
    job_id = summary["jobs"]["upload/eicar.com"]
    assert job_id.startswith("ss") and len(job_id) == 34
    deployment.settle()
    result = deployment.cloud.client("ci").ci_auditing_virus_query(Bucket=deployment.intake, JobID=job_id)
    assert result["JobsDetail"]["Suggestion"] == "block"


@pytest.mark.parametrize("env, key, body, reason", [
    ({}, "folder/", b"", "folder marker"),
    ({"COSGUARD_EXCLUDE_PREFIXES": "tmp/"}, "tmp/a.bin", b"x", "excluded prefix"),
    ({"COSGUARD_INCLUDE_PREFIXES": "uploads/"}, "other/a.bin", b"x", "outside the included prefixes"),
    ({"COSGUARD_EXCLUDE_SUFFIXES": ".part"}, "a.PART", b"x", "excluded suffix"),
    ({"COSGUARD_INCLUDE_SUFFIXES": ".pdf,.exe"}, "a.txt", b"x", "outside the included suffixes"),
    ({}, "empty.txt", b"", "empty object"),
])
def test_skip_rules_make_no_ci_call(deploy, env, key, body, reason):
    # (uploads under the quarantine and ledger prefixes are scanned: tests/adversarial/state)
    deployment = deploy(COSGUARD_QUARANTINE_BUCKET="", **env)  # same-bucket quarantine prefix
    deployment.put(key, body)
    summary = deployment.scan()
    assert summary["counts"] == {"skipped": 1}
    assert deployment.jobs_submitted() == 0


def test_skip_rules_can_be_relaxed_for_empty_objects(deploy):
    deployment = deploy(COSGUARD_SKIP_EMPTY="false")
    deployment.put("empty.txt", b"")
    assert deployment.scan()["counts"] == {"submitted": 1}


def test_too_large_object_is_unscannable_not_skipped(deployment):
    deployment.put("big.iso", b"small body, large claim")
    deployment.cloud.cos.simulate_size(deployment.intake, "big.iso", 2 * 1024 ** 3)
    summary = deployment.scan()
    assert summary["counts"] == {"unscannable": 1}
    assert deployment.jobs_submitted() == 0
    assert deployment.tags("big.iso")["cosguard-status"] == "unscannable"


def test_archive_storage_class_is_unscannable(deployment):
    deployment.put("cold.pdf", b"%PDF-1.4", StorageClass="ARCHIVE")
    assert deployment.scan()["counts"] == {"unscannable": 1}
    assert deployment.tags("cold.pdf")["cosguard-status"] == "unscannable"
    assert deployment.jobs_submitted() == 0


def test_unsupported_format_when_configured(deploy):
    deployment = deploy(COSGUARD_REQUIRE_SUPPORTED_FORMAT="true")
    deployment.put("photo.jpg", b"\xff\xd8\xff")
    deployment.put("report.pdf", b"%PDF-1.4")
    summary = deployment.scan()
    assert summary["counts"] == {"unscannable": 1, "submitted": 1}
    assert deployment.tags("photo.jpg")["cosguard-status"] == "unscannable"


def test_unscannable_can_be_quarantined(deploy):
    deployment = deploy(COSGUARD_UNSCANNABLE_ACTION="quarantine")
    deployment.put("cold.bin", b"data")
    deployment.cloud.cos.simulate_size(deployment.intake, "cold.bin", 5 * 1024 ** 3)
    assert deployment.scan()["counts"] == {"unscannable": 1}
    assert not deployment.exists("cold.bin")
    assert deployment.quarantined("cold.bin")
    assert deployment.tags(deployment.quarantined("cold.bin"), bucket=deployment.jail)["cosguard-status"] == "unscannable"


def test_repeated_event_submits_one_job(deployment):
    deployment.put("once.txt", b"only once")
    event = deployment.combined_event()
    first = deployment.scan(event)
    second = deployment.scan(event)
    third = deployment.scan({"Records": event["Records"] * 3})
    assert first["counts"] == {"submitted": 1}
    assert second["counts"] == {"duplicate": 1}
    assert third["counts"] == {"duplicate": 3}
    assert deployment.jobs_submitted() == 1


def test_an_overwrite_is_a_new_version_and_gets_its_own_job(deployment):
    deployment.put("v.txt", b"one")
    deployment.scan()
    deployment.put("v.txt", b"two")
    assert deployment.scan()["counts"] == {"submitted": 1}
    assert deployment.jobs_submitted() == 2


def test_ci_5xx_then_success_submits_one_job(quiet):
    deployment = quiet
    faults = deployment.cloud.ci.faults
    faults.error_rate = 1.0
    backoff = deployment.scan_handler.__globals__["RUNTIME"].gateway.backoff
    backoff.sleep = lambda seconds: setattr(faults, "error_rate", 0.0)  # CI heals while we back off
    deployment.put("flaky.txt", b"x")
    summary = deployment.scan()
    assert summary["counts"] == {"submitted": 1}
    assert deployment.jobs_submitted() == 2  # one 500, one success
    assert deployment.jobs_created() == 1
    assert deployment.tags("flaky.txt")["cosguard-status"] == "pending"


def test_ci_failing_for_good_marks_error_and_raises_after_all_records(quiet):
    deployment = quiet
    runtime = deployment.scan_handler.__globals__["RUNTIME"]
    runtime.gateway.backoff.sleep = lambda seconds: None
    deployment.put("a.txt", b"a")
    deployment.put("b.txt", b"b")
    event = deployment.combined_event()
    deployment.cloud.ci.faults.error_rate = 1.0
    with pytest.raises(SubmissionError) as caught:
        deployment.scan(event)
    assert len(caught.value.failures) == 2
    assert deployment.tags("a.txt")["cosguard-status"] == "error"
    assert deployment.tags("b.txt")["cosguard-status"] == "error"
    assert len(deployment.ledger_keys("retry")) == 2
    assert deployment.jobs_created() == 0
    # SCF retries the invocation once CI is back: the failed claims are taken over, one job each.
    deployment.cloud.ci.faults.error_rate = 0.0
    assert deployment.scan(event)["counts"] == {"submitted": 2}
    assert deployment.jobs_created() == 2
    assert deployment.ledger_keys("retry") == []
    assert deployment.tags("a.txt")["cosguard-status"] == "pending"


def test_permanent_ci_error_is_not_retried_and_does_not_raise(deployment):
    deployment.put("unbound.txt", b"x")
    deployment.cloud.ci.faults.unbound_buckets.add(deployment.intake)
    before = deployment.jobs_submitted()
    summary = deployment.scan()
    assert summary["counts"] == {"error": 1}
    assert deployment.jobs_submitted() - before == 1  # a 4xx is not retried
    assert deployment.tags("unbound.txt")["cosguard-status"] == "error"
    retry = deployment.ledger_keys("retry")
    doc = json.loads(deployment.cos.get_object(Bucket=deployment.jail, Key=retry[0])["Body"]
                     .get_raw_stream().read())
    assert doc["retryable"] is False


def test_a_failure_that_cannot_be_recorded_fails_the_invocation(deployment):
    # neither the object nor the ledger answers: SCF's retries and dead-letter queue are the record
    deployment.put("unreachable.txt", b"x")
    deployment.cloud.cos.faults.deny(deployment.intake, ["HeadObject"])
    deployment.cloud.cos.faults.deny(deployment.jail, ["PutObject"])
    with pytest.raises(SubmissionError, match="unreachable.txt.*HeadObject: 403.*retry entry was not written"):
        deployment.scan()
    assert deployment.jobs_submitted() == 0


def test_existing_tags_are_kept(quiet):
    deployment = quiet
    deployment.put("tagged.txt", b"x", Tagging="team=blue&owner=ana")
    deployment.scan()
    tags = deployment.tags("tagged.txt")
    assert tags["team"] == "blue" and tags["owner"] == "ana"
    assert tags["cosguard-status"] == "pending"


def test_ten_tags_keep_the_users_and_the_ledger_records_the_job(deployment):
    user_tags = "&".join(f"t{i}=v{i}" for i in range(10))
    deployment.put("full.txt", b"x", Tagging=user_tags)
    summary = deployment.scan()
    job_id = summary["jobs"]["full.txt"]
    tags = deployment.tags("full.txt")
    assert tags == {f"t{i}": f"v{i}" for i in range(10)}
    (ledger_key,) = deployment.ledger_keys("jobs")
    entry = deployment.cos.get_object(Bucket=deployment.jail, Key=ledger_key)
    doc = json.loads(entry["Body"].get_raw_stream().read())
    assert doc["key"] == "full.txt" and doc["tagged"] is False and doc["etag"] and doc["job_id"] == job_id


@pytest.mark.parametrize("key", ["with space.txt", "plus+sign.txt", "100%.txt", "中文 文件.txt",
                                 "report%20final.txt", "a/b/c%2Fd.txt"])
def test_odd_keys_reach_the_right_object(quiet, key):
    deployment = quiet
    deployment.put(key, b"content of " + key.encode("utf-8"))
    summary = deployment.scan()
    assert summary["counts"] == {"submitted": 1}, summary
    assert list(summary["jobs"]) == [key]
    assert deployment.tags(key)["cosguard-status"] == "pending"


def test_odd_keys_with_raw_event_keys(deploy):
    deployment = deploy()
    deployment.cloud.cos.event_key_encoding = "raw"
    for key in ("with space.txt", "report%20final.txt", "中文.txt"):
        deployment.put(key, b"x" + key.encode())
    summary = deployment.scan()
    assert sorted(summary["jobs"]) == sorted(["with space.txt", "report%20final.txt", "中文.txt"])


def test_bad_config_names_every_bad_variable(deployment):
    env = dict(deployment.env, COSGUARD_CALLBACK_TOKEN="short", COSGUARD_BUCKETS="Nope",
               COSGUARD_MAX_WORKERS="-1")
    del env["COSGUARD_REGION"]
    with pytest.raises(ConfigError) as caught:
        load_handler("scan_on_upload", env)
    text = str(caught.value)
    for name in ("COSGUARD_CALLBACK_TOKEN", "COSGUARD_BUCKETS", "COSGUARD_MAX_WORKERS", "COSGUARD_REGION"):
        assert name in text


@pytest.mark.parametrize("event", [{}, {"Records": []}, {"Records": [{"s3": {}}]}, {"foo": 1}])
def test_malformed_event_is_a_clear_error_and_submits_nothing(deployment, event):
    with pytest.raises(EventParseError):
        deployment.scan(event)
    assert deployment.jobs_submitted() == 0


def test_documented_event_for_a_bucket_we_do_not_serve(deployment):
    summary = deployment.scan(load_event("cos_put.json"))
    assert summary["counts"] == {"error": 1}
    assert deployment.jobs_submitted() == 0


def test_hundred_records_use_the_pool(deployment):
    for i in range(100):
        deployment.put(f"bulk/{i:03d}.txt", b"%d" % i)
    summary = deployment.scan()
    assert summary["counts"] == {"submitted": 100}
    assert deployment.jobs_submitted() == 100
    deployment.settle(30)   # the verdicts' log lines land inside this test, not on pytest's own output


def test_an_invocation_that_died_holding_a_claim_does_not_block_the_retry(deployment):
    runtime = deployment.scan_handler.__globals__["RUNTIME"]
    deployment.put("crash.txt", b"x")
    event = deployment.combined_event()
    original = runtime.gateway.submit_virus_job

    def crash(*args, **kwargs):
        raise SystemExit("the instance was killed mid-invocation")
    runtime.gateway.submit_virus_job = crash
    with pytest.raises(SystemExit):
        deployment.scan(event, context=Context(time_limit_ms=300))  # the claim's lease is ~0.3 s
    runtime.gateway.submit_virus_job = original
    deployment.cloud.cos.clock_offset = 60  # SCF retries after the timeout (COS's clock judges the lease)
    assert deployment.scan(event)["counts"] == {"submitted": 1}
    assert deployment.jobs_created() == 1


def test_a_job_that_could_not_be_recorded_is_submitted_again_on_retry(deployment):
    runtime = deployment.scan_handler.__globals__["RUNTIME"]
    runtime.gateway.backoff.sleep = lambda seconds: None
    deployment.put("unrecorded.txt", b"x")
    event = deployment.combined_event()
    original_open = type(runtime.scanner.ledger(deployment.intake)).open_job

    def failing_open(self, entry):
        raise CloudTransientError("PutObject: 503 SlowDown")
    type(runtime.scanner.ledger(deployment.intake)).open_job = failing_open
    # the orphan's verdict is not delivered: were it first, it would settle the upload (the released
    # claim still names its job) and the retry would rightly be a duplicate
    deployment.cloud.ci.faults.drop_callback_rate = 1.0
    try:
        with pytest.raises(SubmissionError):
            deployment.scan(event)
    finally:
        type(runtime.scanner.ledger(deployment.intake)).open_job = original_open
    deployment.settle()
    deployment.cloud.ci.faults.drop_callback_rate = 0.0
    assert deployment.scan(event)["counts"] == {"submitted": 1}
    assert deployment.jobs_created() == 2  # the orphan and the recorded one
    deployment.settle()
    assert deployment.tags("unrecorded.txt")["cosguard-status"] == "clean"
