"""`cosguard probe` against the local cloud, in each position of each switch for what Tencent leaves
undocumented (local/stack.py COS_SWITCHES, CI_SWITCHES): the report says what the emulator was set
to, cosguard's own outcome holds in that position (EICAR uploaded after the probe is quarantined,
the clean scratch objects' verdicts are applied), and the probe leaves nothing behind."""
from __future__ import annotations

import pytest

from cosguard.cli import main as cli
from cosguard.local.samples import eicar
from probed import row

# (switch, position, question id, what the report's `observed` starts with)
POSITIONS = [
    ("callback_format", "xml", "callback.format", "XML"),
    ("callback_format", "json", "callback.format", "JSON"),
    ("callback_signed", False, "callback.signed", "no"),
    ("callback_signed", True, "callback.signed", "yes: authorization"),
    ("callback_retries", 0, "callback.retried", "no"),
    ("callback_retries", 2, "callback.retried", "yes"),
    ("event_key_encoding", "url", "event.key_encoding", "percent-encoded"),
    ("event_key_encoding", "literal", "event.key_encoding", "literal"),
    ("event_vid", "empty", "event.vid", "empty"),
    ("event_vid", "set", "event.vid", "set ("),
    ("delete_honours_if_match", False, "cos.delete_if_match", "ignored"),
    ("delete_honours_if_match", True, "cos.delete_if_match", "honoured"),
    ("multipart_last_modified", "initiation", "cos.multipart_last_modified", "initiation"),
    ("multipart_last_modified", "completion", "cos.multipart_last_modified", "completion"),
    ("append_events", False, "event.append", "no"),
    ("append_events", True, "event.append", "yes"),
    ("append_keeps_etag", True, "cos.append_etag", "no"),
    ("append_keeps_etag", False, "cos.append_etag", "yes"),
]


@pytest.mark.parametrize("switch,position,qid,observed", POSITIONS,
                         ids=[f"{s}={p}" for s, p, _, _ in POSITIONS])
def test_the_report_says_what_the_emulator_was_set_to(probed, tmp_path, switch, position, qid, observed):
    deployment = probed(versioned=switch == "event_vid", **{switch: position})
    report = deployment.probe(tmp_path)
    answer = row(report, qid)
    assert answer["observed"].startswith(observed), answer
    assert answer["matches"] in ("yes", "NO")
    assert report["timed_out"] is False and report["cleanup_problems"] == []
    # the probe left none of its scratch objects, records or marker behind (every version of them)
    assert deployment.keys(deployment.intake, "cosguard-probe/") == []
    assert deployment.versions(deployment.intake, "cosguard-probe/") == []
    assert [k for k in deployment.keys(deployment.jail, ".cosguard/probe/") if not k.endswith("answers.json")] == []
    # cosguard's outcome holds in this position: the clean scratch upload got its verdict, and an
    # EICAR upload after the probe is quarantined
    assert deployment.clean_verdicts() >= 1
    deployment.cos.put_object(Bucket=deployment.intake, Key="after-probe/eicar.com", Body=eicar())
    assert deployment.quiet()
    assert not deployment.cos.object_exists(Bucket=deployment.intake, Key="after-probe/eicar.com")


def test_default_positions_report_and_exit_code(probed, tmp_path):
    """The default positions are the answers worse for cosguard: the probe says what to change
    (exit 1), and keeps its answers, sealed, in the state bucket."""
    deployment = probed()
    report = deployment.probe(tmp_path)
    assert report["exit"] == 1 and report["ok"] is False
    needing = {q["id"] for q in report["questions"] if q["matches"] == "NO"}
    assert needing == {"cos.delete_if_match", "event.append"}
    assert "enable versioning" in row(report, "cos.delete_if_match")["advice"]
    assert row(report, "ci.status")["observed"] == f"{deployment.intake}: on"
    assert row(report, "ci.unbound_error")["matches"] == "skipped"
    assert row(report, "event.vid")["advice"].startswith("no intake bucket has versioning enabled")
    assert row(report, "ci.job_failure")["observed"].startswith("Failed")
    assert row(report, "ci.job_retention")["observed"].startswith("at least")
    assert deployment.answers()["run"] == report["run"]


def test_scratch_objects_go_where_the_scan_trigger_sees_them(probed, tmp_path):
    """The trigger watches `incoming/` only (COSGUARD_INCLUDE_PREFIXES repeats it): the scratch
    prefix is under it, so every event is seen."""
    deployment = probed(watch_prefix="incoming/")
    report = deployment.probe(tmp_path)
    assert report["prefix"].startswith("incoming/cosguard-probe/p")
    assert row(report, "event.key_encoding")["observed"] == "percent-encoded"
    assert row(report, "callback.format")["observed"] == "XML"
    assert deployment.keys(deployment.intake, "incoming/") == []


def test_an_unbound_bucket_named_gets_ci_s_error(probed, tmp_path):
    deployment = probed()
    other = deployment.extra_bucket("unbound")
    deployment.cloud.ci.faults.unbound_buckets.add(other)
    report = deployment.probe(tmp_path, "--unbound-bucket", other)
    assert "BucketNotBound" in row(report, "ci.unbound_error")["observed"]
    assert deployment.keys(other) == []   # nothing is ever written there


def _records_scanned_for(deployment, key: str) -> int:
    """Upload `key` (its percent-encoded spelling already exists, same bytes): how many objects the
    upload trigger's invocation for it scanned."""
    deployment.cos.put_object(Bucket=deployment.intake, Key=key, Body=b"a clean text\n")
    assert deployment.quiet()
    last = deployment.local.scf.scan.invocations[-1]   # the upload trigger's, for this upload
    assert last.ok
    return int(last.result["records"])


def test_the_functions_use_what_the_probe_learned_about_event_keys(probed, tmp_path):
    """COS percent-encodes event keys here, so the event of `docs/a b.txt` names `docs/a%20b.txt`,
    also a key that exists. Unprobed, cosguard looks both up and scans both (the other one as a
    duplicate); once the probe has seen how COS spells keys, only the decoded spelling is."""
    outcomes = []
    for probe_first in (False, True):
        deployment = probed()
        if probe_first:
            assert row(deployment.probe(tmp_path), "event.key_encoding")["observed"] == "percent-encoded"
        deployment.cos.put_object(Bucket=deployment.intake, Key="docs/a%20b.txt", Body=b"a clean text\n")
        assert deployment.quiet()
        outcomes.append(_records_scanned_for(deployment, "docs/a b.txt"))
    assert outcomes == [2, 1]


def test_questions_without_their_permission_are_skipped_and_say_why(probed, tmp_path):
    deployment = probed()
    deployment.cloud.cos.faults.deny(deployment.intake, ["AppendObject"])
    deployment.cloud.cos.faults.deny(deployment.jail, ["InitiateMultipartUpload"])
    report = deployment.probe(tmp_path)
    for qid in ("event.append", "cos.append_etag", "cos.append_last_modified", "cos.multipart_last_modified"):
        assert row(report, qid)["matches"] == "skipped" and "AccessDenied" in row(report, qid)["advice"], qid
    assert row(report, "callback.format")["observed"] == "XML"     # the other questions go on
    assert row(report, "cos.delete_if_match")["observed"].startswith("ignored")
    assert report["cleanup_problems"] == [] and deployment.keys(deployment.intake, "cosguard-probe/") == []


def test_a_bucket_the_deployment_does_not_serve_is_a_usage_error(probed, tmp_path, capsys):
    deployment = probed()
    capsys.readouterr()
    code = cli(["probe", "--env-file", deployment.env_file(tmp_path), "--bucket", "stranger-1250000000"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err.count("\n") == 1 and "stranger-1250000000" in captured.err
    assert deployment.keys(deployment.jail, ".cosguard/probe/") == []   # nothing was written
