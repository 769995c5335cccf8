"""Forged ledger documents: an uploader who can write under the ledger prefix (same-bucket layout)
plants or overwrites claims, action claims and job entries. None of them is believed; each is
reported; the infected upload still ends in quarantine and clean objects stay where they are."""
from __future__ import annotations

import json
import time

import pytest

from cosguard.domain.ledger import digest, version_token
from cosguard.local.samples import clean_text, eicar

FAKE_SEAL = "0" * 64


def ledger_names(s, key):
    """Where cosguard keeps the in-flight claim and the permanent record of `key`'s current upload:
    names an uploader can compute from a HEAD of their own object."""
    name = digest(s.intake, key, version_token(s.runtime.gateway.head(s.intake, key)))
    return f".cosguard/jobs/{name}.json", f".cosguard/claims/{name}.json"


def assert_quarantined(s, key, body):
    assert not s.exists(key), f"{key} still in place"
    copies = s.quarantined(key)
    assert copies and s.body(copies[-1], bucket=s.jail) == body


def test_a_claim_planted_before_the_upload_does_not_stop_its_scan(stack, capsys):
    s = stack(jail=False)
    s.put("up/evil.com", eicar())
    # the uploader HEADs their own object and plants a "submitted" claim and a "handled" record
    # at their computable names
    info = s.runtime.gateway.head(s.intake, "up/evil.com")
    in_flight, record = ledger_names(s, "up/evil.com")
    now = time.time()
    for planted in (in_flight, record):
        # a whole entry's shape: were the seal not checked, it would be believed (not crash cosguard)
        s.put_json(planted, {"bucket": s.intake, "key": "up/evil.com", "etag": info.etag, "state": "submitted",
                             "job_id": "ss" + "1" * 32, "version_id": None, "size": info.size,
                             "submitted_at": now, "claimed_at": now, "lease_until": now + 10 ** 6,
                             "_seal": FAKE_SEAL})
    capsys.readouterr()
    summary = s.scan()
    assert summary["jobs"].get("up/evil.com"), summary
    s.settle()
    assert_quarantined(s, "up/evil.com", eicar())
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    for planted in (in_flight, record):
        assert any(r["message"] == "unauthenticated document ignored" and r["level"] == "WARNING"
                   and r["key"] == planted for r in logged), planted


def test_a_planted_done_action_claim_does_not_stop_the_sweep(stack, capsys, tmp_path):
    s = stack(jail=False)
    s.cloud.ci.faults.drop_callback_rate = 1.0
    s.put("up/evil.com", eicar())
    s.scan()
    s.settle()
    job_id = s.tags("up/evil.com")["cosguard-job"]  # the uploader reads their own object's tags
    s.put_json(f".cosguard/actions/{job_id}.json", {"job_id": job_id, "state": "done", "claimed_at": time.time()})
    code, report, _ = s.cli(capsys, tmp_path, "reconcile")
    assert report["applied"] == {"quarantined": 1}
    assert_quarantined(s, "up/evil.com", eicar())
    assert f"{s.intake}/.cosguard/actions/{job_id}.json" in report["unauthenticated"]
    assert code == 1  # a forgery needs a human's attention


def test_an_overwritten_job_entry_never_moves_a_victim_and_the_upload_is_rescanned(stack, capsys, tmp_path):
    s = stack(jail=False, scan_delay=2.0)
    s.put("victim/report.txt", clean_text())
    s.put("up/evil.com", eicar())
    s.scan()
    job_id = s.tags("up/evil.com")["cosguard-job"]
    victim = s.runtime.gateway.head(s.intake, "victim/report.txt")
    in_flight, _ = ledger_names(s, "up/evil.com")
    # while CI scans, the entry of the EICAR's upload is overwritten to name the victim's clean file
    s.put_json(in_flight, {
        "job_id": job_id, "bucket": s.intake, "key": "victim/report.txt", "etag": victim.etag,
        "version_id": None, "size": victim.size, "submitted_at": time.time() - 10, "tagged": False,
        "state": "submitted"})
    capsys.readouterr()
    s.settle()  # CI's callback: the forged entry is not believed, the upload is queued for a new scan
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert any(r["message"] == "unauthenticated document ignored" and r["key"] == in_flight for r in logged)
    assert s.exists("up/evil.com") and s.body("victim/report.txt") == clean_text()
    code, first, _ = s.cli(capsys, tmp_path, "reconcile")  # resubmits the upload
    s.settle()
    s.cli(capsys, tmp_path, "reconcile")
    assert s.body("victim/report.txt") == clean_text()  # the clean object never moved
    assert s.tags("victim/report.txt").get("cosguard-status") != "infected"
    assert_quarantined(s, "up/evil.com", eicar())


def test_a_forged_closed_entry_is_not_reported_as_history_but_as_a_forgery(stack, capsys, tmp_path):
    s = stack(jail=False)
    s.put("up/fine.txt", clean_text())
    s.scan()
    s.settle()
    fake = "ss" + "2" * 32
    s.put_json(f".cosguard/closed/{fake}.json", {
        "job_id": fake, "bucket": s.intake, "key": "up/fine.txt", "etag": "x", "version_id": None, "size": 1,
        "submitted_at": 0, "outcome": "quarantined", "closed_at": time.time(), "_seal": FAKE_SEAL,
        "manifest": {"findings": [{"virus": "Made-Up"}]}})
    # status counts from the time index: a closed/ document alone is not history at all
    code, status, err = s.cli(capsys, tmp_path, "status")
    assert status["counts"] == {"clean": 1} and status["recent_infections"] == [] and code == 0
    # an index entry naming it carries no valid MAC: reported, not counted, the record never read
    day = time.strftime("%Y-%m-%d", time.gmtime())
    s.put(f".cosguard/index/{day}/quarantined.-.120000.{fake}.{'0' * 32}", b"")
    code, status, err = s.cli(capsys, tmp_path, "status")
    assert status["counts"] == {"clean": 1, "unauthenticated documents": 1}
    assert status["recent_infections"] == []
    assert code == 1 and "no valid seal" in err


def test_a_forged_record_behind_a_genuine_index_entry_is_reported_not_listed(stack, capsys, tmp_path):
    """The index is genuine, the closed/ record it leads to was overwritten by an uploader."""
    s = stack(jail=False)
    s.put("up/evil.com", eicar())
    s.scan()
    s.settle()
    [copy] = s.quarantined("up/evil.com")   # quarantine/<bucket>/<job id>/<key>
    job_id = copy.split("/")[2]
    s.put_json(f".cosguard/closed/{job_id}.json", {"job_id": job_id, "outcome": "quarantined", "_seal": FAKE_SEAL})
    code, status, err = s.cli(capsys, tmp_path, "status")
    assert status["counts"] == {"infected": 1, "unauthenticated documents": 1}
    assert status["recent_infections"] == []
    assert code == 1 and "no valid seal" in err


def test_a_ledger_document_copied_to_another_name_is_not_believed(stack, capsys, tmp_path):
    """Genuine bytes, wrong place: the seal names the key it was written for."""
    s = stack(jail=False)
    s.cloud.ci.faults.drop_callback_rate = 1.0
    s.put("up/evil.com", eicar())
    s.scan()
    s.settle()
    job_id = s.tags("up/evil.com")["cosguard-job"]
    in_flight, _ = ledger_names(s, "up/evil.com")
    genuine = s.body(in_flight)
    other = "3" * 40
    s.put(f".cosguard/closed/{job_id}.json", genuine)  # a copy of the open entry posing as closed
    s.put(f".cosguard/jobs/{other}.json", genuine)
    code, report, _ = s.cli(capsys, tmp_path, "reconcile")
    assert report["applied"] == {"quarantined": 1}
    assert_quarantined(s, "up/evil.com", eicar())
    assert f"{s.intake}/.cosguard/jobs/{other}.json" in report["unauthenticated"]


def test_a_planted_claim_does_not_hide_an_existing_object_from_backfill(stack, capsys, tmp_path):
    s = stack(jail=False)
    s.put("old/evil.com", eicar())   # there before cosguard watched the bucket: no event is delivered
    s.events.clear()
    info = s.runtime.gateway.head(s.intake, "old/evil.com")
    for planted in ledger_names(s, "old/evil.com"):   # whole entries: believed, were the seal not checked
        s.put_json(planted, {"bucket": s.intake, "key": "old/evil.com", "state": "submitted",
                             "job_id": "ss" + "6" * 32, "etag": info.etag, "version_id": None, "size": info.size,
                             "submitted_at": time.time(), "claimed_at": time.time(),
                             "lease_until": time.time() + 10 ** 6})
    code, report, _ = s.cli(capsys, tmp_path, "backfill", "--bucket", s.intake)
    assert report["counts"].get("submitted", 0) >= 1, report
    s.settle()
    assert_quarantined(s, "old/evil.com", eicar())


def test_a_callback_url_for_one_upload_cannot_drive_another_uploads_forged_entry(stack):
    """Survivor 4 of issue 19: another upload's entry is unsealed (planted), and the URL issued for
    the uploader's own object is presented with that upload's job: answered like a bad token, and
    no work starts (no retry entry, no claim released, no rescan, no tags)."""
    import requests

    s = stack(jail=False)
    s.cloud.ci.faults.drop_callback_rate = 1.0  # verdicts wait for the request the test sends
    s.put("mine/clean.txt", clean_text())
    s.put("victim/evil.com", eicar())
    s.scan()
    s.settle()
    mine = s.cloud.ci.backend.jobs[s.tags("mine/clean.txt")["cosguard-job"]].callback
    victim_job = s.tags("victim/evil.com")["cosguard-job"]
    in_flight, _ = ledger_names(s, "victim/evil.com")
    s.put_json(in_flight, {"job_id": victim_job, "bucket": s.intake, "key": "victim/evil.com", "etag": "x",
                           "version_id": None, "size": 68, "submitted_at": time.time(), "state": "submitted"})
    planted, tags_before, jobs_before = s.body(in_flight), s.tags("victim/evil.com"), s.jobs_created()
    s.take_events()
    body = f"<Response><JobsDetail><JobId>{victim_job}</JobId></JobsDetail></Response>".encode()
    answer = requests.post(mine, data=body, timeout=5)
    assert (answer.status_code, answer.json()) == (401, {"error": "unauthorized"})
    assert s.body(in_flight) == planted                 # no claim released over it
    assert s.cos.list_objects(Bucket=s.intake, Prefix=".cosguard/retry/").get("Contents", []) == []
    assert s.jobs_created() == jobs_before and s.take_events()["Records"] == []   # nothing rescanned or written
    assert s.tags("victim/evil.com") == tags_before and s.exists("victim/evil.com")


WRONG_TYPES = {"job_id": ["ss" + "4" * 32], "bucket": 7, "key": {"k": 1}, "etag": None, "version_id": 5,
               "size": "big", "submitted_at": "yesterday", "state": 7, "lease_until": "soon",
               "closed_at": [], "outcome": {"quarantined": True}, "manifest": ["findings"], "tagged": "no"}
SHAPES = {"list": [1, 2], "number": 42, "string": "submitted", "null": None, "wrong field types": WRONG_TYPES}


@pytest.mark.parametrize("sealed", [False, True], ids=["unsealed", "sealed-by-cosguard"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_planted_document_of_any_shape_is_handled_as_forged(stack, capsys, tmp_path, shape, sealed):
    """Whatever JSON sits at a ledger name (even under a valid seal, which only a bug could write),
    the upload is scanned and quarantined, and the sweep and status report the document; nothing
    crashes."""
    s = stack(jail=False)
    s.put("up/evil.com", eicar())
    in_flight, _ = ledger_names(s, "up/evil.com")
    fake = "ss" + "5" * 32
    planted = [in_flight, f".cosguard/jobs/{'6' * 40}.json", f".cosguard/closed/{fake}.json"]
    for key in planted:
        doc = SHAPES[shape]
        if sealed:
            doc = s.runtime.sealer.seal(s.intake, key, doc) if isinstance(doc, dict) else doc
        s.put_json(key, doc)
    summary = s.scan()
    assert summary["jobs"].get("up/evil.com"), summary
    s.settle()
    assert_quarantined(s, "up/evil.com", eicar())
    code, report, _ = s.cli(capsys, tmp_path, "reconcile")
    assert code == 1 and f"{s.intake}/{planted[1]}" in report["unauthenticated"], report
    code, status, _ = s.cli(capsys, tmp_path, "status")
    assert code == 1 and status["counts"].get("unauthenticated documents", 0) >= 1, status
    assert status["recent_infections"] and all(i["job_id"] != fake for i in status["recent_infections"])
