"""Issue 17, item 6: ledger documents that cannot be read as documents. In the same-bucket layout an
uploader can plant, at the ledger names of their own upload or anywhere under the prefix, an object
that COS will not serve (ARCHIVE: 403 InvalidObjectState; one denied by a policy: 403 AccessDenied),
one too large to be ours, or one that is not JSON. Each counts as forged: absent, reported. The
upload is still scanned, and `cosguard reconcile` / `cosguard status` end with a report naming the
document, for every bucket, instead of a traceback."""
from __future__ import annotations

import json

import pytest

from cosguard.local.samples import eicar
from test_state_ledger_forgery import assert_quarantined, ledger_names

UNREADABLE = ["archive", "deep_archive", "access_denied", "huge", "not_json"]


def plant(s, key: str, kind: str, bucket: str) -> None:
    """An object at `key` that cosguard cannot read as one of its documents."""
    body = json.dumps({"state": "submitted", "lease_until": 10 ** 12}).encode()
    if kind in ("archive", "deep_archive"):
        s.put(key, body, bucket=bucket, StorageClass=kind.upper())
    elif kind == "access_denied":
        s.put(key, body, bucket=bucket)
        s.cloud.cos.faults.deny_key(bucket, key, {"GetObject"})
    elif kind == "huge":
        s.put(key, b'{"pad": "' + b"x" * (300 * 1024) + b'"}', bucket=bucket)
    else:
        s.put(key, b"\x00\xff not a document", bucket=bucket)


@pytest.mark.parametrize("kind", [k for k in UNREADABLE if k != "access_denied"])
def test_an_unreadable_document_at_the_uploads_ledger_names_does_not_stop_its_scan(stack, kind):
    s = stack(jail=False)
    s.put("up/evil.com", eicar())
    in_flight, record = ledger_names(s, "up/evil.com")
    for planted in (in_flight, record):
        plant(s, planted, kind, s.intake)
    summary = s.scan()
    assert summary["jobs"].get("up/evil.com"), summary
    s.settle()
    assert_quarantined(s, "up/evil.com", eicar())
    assert f"{s.intake}/{in_flight}" in s.runtime.sealer.take_rejected()  # reported, not believed


def test_an_entry_cosguard_cannot_read_back_asks_for_a_human_and_never_loops(stack, capsys, tmp_path):
    """A policy denying GET on the upload's entry: cosguard's own rewrite stays unreadable, so the
    verdict cannot be bound to the upload. The object is scanned, tagged `error` (never `clean`),
    and every sweep names it as needing a human without scanning it again."""
    s = stack(jail=False)
    s.put("up/evil.com", eicar(), Tagging="cosguard-status=clean")
    in_flight, record = ledger_names(s, "up/evil.com")
    for planted in (in_flight, record):
        plant(s, planted, "access_denied", s.intake)
    assert s.scan()["jobs"].get("up/evil.com")
    s.settle()
    assert s.tags("up/evil.com")["cosguard-status"] == "error"
    for _ in range(2):
        code, report, err = s.cli(capsys, tmp_path, "reconcile")
        assert [u["key"] for u in report["unresolved"]] == ["up/evil.com"], report
        assert "cannot be read" in report["unresolved"][0]["reason"] and code == 1
        s.settle()
    assert s.jobs_created() == 3  # the upload and the two planted objects, each once: no rescan loop


@pytest.mark.parametrize("kind", UNREADABLE)
def test_reconcile_and_status_report_an_unreadable_document_and_serve_every_bucket(stack, capsys, tmp_path, kind):
    s = stack(jail=False, sources=2)
    planted_bucket, other = s.intakes
    planted = [f".cosguard/{kind_}/{'7' * 40}.json" for kind_ in ("jobs", "retry", "closed")]
    for key in planted:
        plant(s, key, kind, planted_bucket)
    s.cloud.ci.faults.drop_callback_rate = 1.0  # the verdict in the other bucket is left to the sweep
    s.put("up/evil.com", eicar(), bucket=other)
    assert s.scan()["jobs"].get("up/evil.com")
    s.settle()

    code, report, err = s.cli(capsys, tmp_path, "reconcile")
    assert report["applied"].get("quarantined") == 1  # the other bucket's verdict is applied
    assert not s.exists("up/evil.com", bucket=other)
    for key in planted[:2]:  # the sweep reads jobs/ and retry/
        assert f"{planted_bucket}/{key}" in report["unauthenticated"], report
    assert report["unresolved"] == [] and code == 1 and "Traceback" not in err

    code, status, err = s.cli(capsys, tmp_path, "status")
    assert status["counts"]["infected"] == 1
    # status reads jobs/ and retry/; it counts closed jobs from the time index, never closed/ itself
    assert set(status["unauthenticated"]) == {f"{planted_bucket}/{key}" for key in planted[:2]}
    assert code == 1 and "cannot be read" in err and "Traceback" not in err


def test_one_entry_that_fails_the_sweep_is_reported_and_the_others_are_settled(stack):
    """Whatever goes wrong with one item (here: an unexpected error acting on one bucket's job) is
    that item's problem: the sweep settles the rest, for every bucket, and ends with its report."""
    s = stack(sources=2)  # one private ledger shared by both intake buckets
    broken, fine = s.intakes
    s.cloud.ci.faults.drop_callback_rate = 1.0
    for bucket in s.intakes:
        s.put("up/evil.com", eicar(), bucket=bucket)
    s.scan()
    s.settle()
    gateway = s.runtime_of(s.sweep_handler).gateway
    query = gateway.query_virus_job

    def fails_for_one_bucket(bucket, job_id):
        if bucket == broken:
            raise RuntimeError("unexpected answer")
        return query(bucket, job_id)
    gateway.query_virus_job = fails_for_one_bucket
    report = s.sweep()
    assert report["applied"] == {"quarantined": 1} and not s.exists("up/evil.com", bucket=fine)
    assert [(u["bucket"], u["reason"]) for u in report["unresolved"]] == [
        (s.jail, "RuntimeError: unexpected answer")]
    gateway.query_virus_job = query
    assert s.sweep()["applied"] == {"quarantined": 1} and not s.exists("up/evil.com", bucket=broken)
