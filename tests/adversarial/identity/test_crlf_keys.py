"""An uploader puts CR, LF or CRLF in the key of an EICAR: the scan may fail, never pass.

Such a key cannot go to CI as `Input/Object` (XML 1.0's end-of-line handling turns CR and CRLF into
LF, so CI would scan another key: ci_input.py), so it goes as a pre-signed `Input/Url`. Whether CI
keeps that URL's query (the signature) is undocumented (doc 436/50132: "full URL"); the local CI
drops it by default, and its GET of a private bucket is then refused (403): the job fails
`ResourceDownloadFailed`. That is the failed-scan path, by design (docs/tencent-facts.md): the
object is handled by COSGUARD_FAILED_ACTION, notified and on record, never tagged clean. Where CI
keeps the query, the same keys are fetched, scanned and quarantined.
"""
from __future__ import annotations

import json

import pytest

from cosguard.cli import main as cli
from cosguard.local.samples import eicar

KEYS = ("crlf/cr\r.exe", "crlf/lf\n.exe", "crlf/cr\r\nlf.exe", "crlf/\r\nleading.exe")


def _upload_and_settle(stack):
    for key in KEYS:
        stack.put(key, eicar())
    assert stack.scan()["counts"] == {"submitted": len(KEYS)}
    stack.settle()


def _url_jobs(stack):
    """CI's jobs by state and failure code: each of these keys went as a pre-signed `Url`."""
    jobs = list(stack.cloud.ci.backend.jobs.values())
    assert len(jobs) == len(KEYS) and all(job.url and job.object_key is None for job in jobs)
    return jobs


def test_where_ci_keeps_the_url_query_each_eicar_is_quarantined(stack):
    stack.cloud.ci.faults.url_query_dropped = False
    _upload_and_settle(stack)
    assert {job.state for job in _url_jobs(stack)} == {"Success"}
    quarantined = stack.quarantined()
    for key in KEYS:
        assert stack.body(key) is None, repr(key)
        assert any(q.endswith("/" + key) for q in quarantined), repr(key)


def test_where_ci_drops_the_url_query_each_eicar_is_a_failed_scan_on_record(stack, tmp_path, capsys):
    """COSGUARD_FAILED_ACTION=tag (the default): tagged `error`, notified with CI's code, counted
    by `cosguard status`; never `clean`, never left `pending`."""
    assert stack.cloud.ci.faults.url_query_dropped   # the local CI's default: the worse answer
    _upload_and_settle(stack)
    assert {(job.state, job.code) for job in _url_jobs(stack)} == {("Failed", "ResourceDownloadFailed")}
    for key in KEYS:
        assert stack.tags(key)["cosguard-status"] == "error", repr(key)
        notes = [n for n in stack.sink.received if n.get("key") == key]
        assert [n["kind"] for n in notes] == ["error"], repr(key)
        assert notes[0]["detail"].startswith("ResourceDownloadFailed")
        assert "q-signature" not in str(notes)   # the pre-signed URL (a read credential) is not passed on
    assert stack.sweep()["applied"] == {}   # every job was settled by its callback, bound to its upload
    env = tmp_path / "cosguard.env"
    env.write_text("".join(f"{k}={v}\n" for k, v in stack.env.items()))
    capsys.readouterr()
    assert cli(["status", "--env-file", str(env), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["counts"] == {"error": len(KEYS)} and status["oldest_pending"] is None


@pytest.mark.parametrize("query_dropped", [True, False])
def test_with_failed_action_quarantine_no_eicar_stays_readable_either_way(deploy, query_dropped):
    stack = deploy(COSGUARD_FAILED_ACTION="quarantine")
    stack.cloud.ci.faults.url_query_dropped = query_dropped
    _upload_and_settle(stack)
    quarantined = stack.quarantined()
    for key in KEYS:
        assert stack.body(key) is None, repr(key)
        assert any(q.endswith("/" + key) for q in quarantined), repr(key)
