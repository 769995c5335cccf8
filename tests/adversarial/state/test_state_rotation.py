"""Rotating COSGUARD_CALLBACK_TOKEN on a live deployment (docs/rotation.md): the old token moves to
COSGUARD_CALLBACK_TOKEN_PREVIOUS, the functions are reloaded with the new environment, and nothing
is lost. Before key ids and the previous-token window, a rotation made every earlier document read
as forged: status exited 1, handled uploads were submitted again, restore refused old quarantines,
released objects went back to quarantine, and a job in flight was never applied (callback 401,
sweep blind). Then `cosguard reseal` re-seals the rest and the previous token is dropped."""
from __future__ import annotations

import hashlib
import time

import pytest
import requests

from cosguard.domain.entries import digest, version_token
from cosguard.domain.history import History
from cosguard.domain.seal import Sealer
from cosguard.local.loader import load_handler
from cosguard.local.samples import clean_text, eicar
from helpers import CALLBACK_SECRET, Context

NEW_TOKEN = "rotated-callback-token-" + "n" * 24


def rotate(s, token, previous=""):
    """What an operator's redeploy does: every function restarts with the new environment."""
    s.env = {k: v for k, v in dict(s.env, COSGUARD_CALLBACK_TOKEN=token,
                                    COSGUARD_CALLBACK_TOKEN_PREVIOUS=previous).items() if v != ""}
    s.scan_handler = load_handler("scan_on_upload", s.env)
    s._callback = load_handler("quarantine_callback", s.env)
    s.sweep_handler = load_handler("reconcile_pending", s.env)


def xml(job_id):
    """The body CI posts to a job's callback URL (the verdict itself is read back from CI)."""
    return f"<Response><JobsDetail><JobId>{job_id}</JobId></JobsDetail></Response>".encode()


def quarantine(s, key):
    s.put(key, eicar())
    job_id = s.scan()["jobs"][key]
    s.settle()
    assert not s.exists(key)
    return job_id


def healthy_status(s, capsys, tmp_path):
    code, status, err = s.cli(capsys, tmp_path, "status")
    assert "unauthenticated documents" not in status["counts"] and status["unauthenticated"] == [], err
    assert code == 0, err
    return status


def backfill_leaves_released_objects_alone(s, capsys, tmp_path, released):
    code, _, err = s.cli(capsys, tmp_path, "backfill", "--bucket", s.intake)
    assert code == 0, err
    s.settle()
    for key in released:
        assert s.exists(key), key
        assert s.tags(key)["cosguard-status"] == "released"


def test_a_rotation_with_work_in_flight_loses_nothing(stack, capsys, tmp_path):
    s = stack()
    # -- under the old token: a handled upload, quarantines, a release, two jobs in flight -----------
    s.put("r/handled.txt", clean_text())
    handled_event = s.take_events()
    s.scan_handler(handled_event, Context())
    s.settle()
    restore_later = [quarantine(s, "r/evil-1.com"), quarantine(s, "r/evil-2.com")]
    released = quarantine(s, "r/released.com")
    code, answer, err = s.cli(capsys, tmp_path, "restore", released)
    assert code == 0 and answer["restored"], err
    s.take_events()
    s.cloud.ci.faults.drop_callback_rate = 1.0   # CI's callbacks are held from here
    s.put("r/inflight.com", eicar())
    s.put("r/inflight-clean.txt", clean_text())
    jobs = s.scan()["jobs"]
    s.settle()
    held_callback = s.cloud.ci.backend.jobs[jobs["r/inflight.com"]].callback
    submitted = s.jobs_created()

    rotate(s, NEW_TOKEN, previous=CALLBACK_SECRET)
    s.cloud.ci.faults.drop_callback_rate = 0.0

    # the held callback arrives, its URL issued under the previous token: the infected upload is quarantined
    answer = requests.post(held_callback, data=xml(jobs["r/inflight.com"]), timeout=10)
    assert (answer.status_code, answer.json()["outcome"]) == (200, "quarantined")
    assert not s.exists("r/inflight.com") and s.quarantined("r/inflight.com")
    # a redelivered event of an upload handled before the rotation submits nothing
    assert s.scan_handler(handled_event, Context())["counts"] == {"duplicate": 1}
    assert s.jobs_created() == submitted
    # an earlier quarantine is restorable; a released object stays released through a backfill
    code, answer, err = s.cli(capsys, tmp_path, "restore", restore_later[0])
    assert code == 0 and answer["restored"], err
    rewritten = s.ledger_doc(f".cosguard/closed/{restore_later[0]}.json")   # read under the old key,
    assert rewritten["_seal"].startswith(s.runtime.sealer.key_id + ".")      # written under the new
    s.take_events()
    backfill_leaves_released_objects_alone(s, capsys, tmp_path, ["r/released.com", "r/evil-1.com"])
    status = healthy_status(s, capsys, tmp_path)
    assert status["oldest_pending"]["key"] == "r/inflight-clean.txt"   # still in flight, still seen

    # -- reseal: everything at rest under the new key; the open job is left to its own flow -----------
    code, dry, err = s.cli(capsys, tmp_path, "reseal", "--dry-run")
    assert code == 0, err
    # at rest under the old key: closed records of the handled upload, evil-2 and the release; the
    # handled upload's claim (action claims are deleted once their action is done); records
    # of the three uploads the old deployment removed; evil-2's manifest; the released object's
    # marker (evil-1 was restored, and r/inflight.com quarantined, under the new key); the history
    # index entries of the four closes before the rotation (empty objects sealed by their names), and
    # the handled upload's rescan-index entry (the same)
    assert dry["resealed"] == {"claims": 1, "closed": 3, "index": 4, "removed": 3, "manifests": 1,
                               "released markers": 1, "rescan-index": 1}, dry
    assert dry["left_in_flight"] == {"jobs": 1} and dry["forged"] == 0
    code, done, err = s.cli(capsys, tmp_path, "reseal")
    assert code == 0 and done["resealed"] == dry["resealed"], err
    assert "keep COSGUARD_CALLBACK_TOKEN_PREVIOUS" in err
    # the sweep applies the in-flight job's lost callback (its entry sealed under the previous token)
    report = s.sweep()
    assert report["applied"] == {"clean": 1} and not report["unauthenticated"], report
    assert s.tags("r/inflight-clean.txt")["cosguard-status"] == "clean"
    code, again, err = s.cli(capsys, tmp_path, "reseal", "--dry-run")
    assert (code, again["resealed"], again["left_in_flight"]) == (0, {}, {}), again

    # -- the previous token dropped: nothing read as forged, nothing scanned again -----------------
    rotate(s, NEW_TOKEN)
    healthy_status(s, capsys, tmp_path)
    assert s.scan_handler(handled_event, Context())["counts"] == {"duplicate": 1}
    code, answer, err = s.cli(capsys, tmp_path, "restore", restore_later[1])
    assert code == 0 and answer["restored"], err
    s.take_events()
    backfill_leaves_released_objects_alone(s, capsys, tmp_path, ["r/released.com", "r/evil-1.com", "r/evil-2.com"])
    assert s.exists("r/handled.txt") and s.tags("r/handled.txt")["cosguard-status"] == "clean"
    assert s.jobs_created() == submitted
    healthy_status(s, capsys, tmp_path)


def _legacy_seal(sealer, bucket, key, doc):
    """A format-1 seal (no key id), as releases before key ids wrote it."""
    sealed = sealer.seal(bucket, key, doc)
    sealed["_seal"] = sealed["_seal"].partition(".")[2]
    return sealed


def _current_id_stranger_mac(stranger, current):
    def seal(bucket, key, doc):
        sealed = stranger.seal(bucket, key, doc)
        sealed["_seal"] = current.key_id + "." + sealed["_seal"].partition(".")[2]
        return sealed
    return seal


@pytest.mark.parametrize("how", ["stranger's key id", "no key id", "current key id, stranger's MAC"])
def test_a_document_sealed_by_a_key_outside_the_window_is_forged(stack, capsys, tmp_path, how):
    s = stack()
    old = s.runtime.sealer
    rotate(s, NEW_TOKEN, previous=CALLBACK_SECRET)
    stranger = Sealer(hashlib.sha256(b"a token nobody configured").digest())
    seal = {"stranger's key id": stranger.seal,
            "no key id": lambda b, k, d: _legacy_seal(stranger, b, k, d),
            "current key id, stranger's MAC": _current_id_stranger_mac(stranger, s.runtime.sealer)}[how]
    assert old.key_id != s.runtime.sealer.key_id != stranger.key_id
    s.put("f/planted.com", eicar())
    info = s.runtime.gateway.head(s.intake, "f/planted.com")
    name = digest(s.intake, "f/planted.com", version_token(info))
    claim = f".cosguard/claims/{name}.json"
    s.put_json(claim, seal(s.jail, claim, {"bucket": s.intake, "key": "f/planted.com", "outcome": "clean",
                                           "token": version_token(info), "job_id": "j-1", "closed_at": 1.0}))
    assert s.scan()["counts"] == {"submitted": 1}           # the planted "handled" record stops nothing
    s.settle()
    assert not s.exists("f/planted.com") and s.quarantined("f/planted.com")
    closed = ".cosguard/closed/j-forged.json"
    s.put_json(closed, seal(s.jail, closed, {"job_id": "j-forged", "bucket": s.intake, "key": "x.com", "etag": "e",
                                             "size": 1, "submitted_at": 0, "outcome": "clean", "closed_at": 1.0}))
    # and a history index entry (what status counts), sealed by its name the same three ways
    name, _, tag = History(s.runtime.gateway, s.jail, ".cosguard/", stranger).key_for(
        "j-forged", "clean", time.time()).rpartition(".")
    mac = tag.partition("-")[2]
    entry = f"{name}." + {"stranger's key id": tag, "no key id": mac,
                          "current key id, stranger's MAC": f"{s.runtime.sealer.key_id}-{mac}"}[how]
    s.runtime.gateway.upload(s.jail, entry, b"")
    code, status, _ = s.cli(capsys, tmp_path, "status")
    assert code == 1 and f"{s.jail}/{entry}" in status["unauthenticated"]
    planted = s.ledger_doc(closed)
    code, report, _ = s.cli(capsys, tmp_path, "reseal")
    assert code == 1 and report["forged"] == 3 and "claims" not in report["resealed"]
    assert s.ledger_doc(closed) == planted                  # never sealed anew
    assert s.runtime.gateway.head(s.jail, entry)            # nor the entry renamed under the current key


def test_promoted_copies_and_quarantines_in_the_intake_bucket_survive_a_rotation(stack, capsys, tmp_path):
    """Fail-closed layout, everything in the intake bucket: reseal's own in-place copies (the
    promoted copy's marker, the quarantined copy's manifest) fire upload events, which must find
    cosguard's own writes, under the new key, and scan nothing."""
    s = stack(jail=False, COSGUARD_CLEAN_DESTINATION="/released/")
    s.put("in/report.txt", clean_text())
    s.scan()
    s.settle()
    assert s.exists("released/in/report.txt")
    evil = quarantine(s, "in/evil.com")
    s.scan()   # the promotion's and the quarantine's own events
    submitted = s.jobs_created()
    rotate(s, NEW_TOKEN, previous=CALLBACK_SECRET)
    code, done, err = s.cli(capsys, tmp_path, "reseal")
    assert code == 0 and done["resealed"]["promoted markers"] == 1 and done["resealed"]["manifests"] == 1, err
    marker = s.meta("released/in/report.txt", bucket=s.intake)["x-cos-meta-cosguard-promoted"]
    assert marker.startswith(s.runtime.sealer.key_id + ".")
    assert s.tags("released/in/report.txt")["cosguard-status"] == "clean"   # tags put back
    summary = s.scan()   # reseal's in-place copies and ledger writes
    assert "submitted" not in summary["counts"] and "error" not in summary["counts"], summary
    rotate(s, NEW_TOKEN)
    code, _, err = s.cli(capsys, tmp_path, "backfill", "--bucket", s.intake)
    assert code == 0, err
    s.settle()
    assert s.jobs_created() == submitted
    assert s.exists("released/in/report.txt") and s.tags("released/in/report.txt")["cosguard-status"] == "clean"
    code, answer, err = s.cli(capsys, tmp_path, "restore", evil)
    assert code == 0 and answer["restored"], err
    healthy_status(s, capsys, tmp_path)


def test_reseal_reports_what_it_cannot_read_in_one_line_and_reseals_the_rest(stack, capsys, tmp_path):
    s = stack()
    job_id = quarantine(s, "e/evil.com")
    denied = ".cosguard/closed/denied.json"
    s.put_json(denied, {"job_id": "denied"})
    s.cloud.cos.faults.deny_key(s.jail, denied, {"GetObject"})
    rotate(s, NEW_TOKEN, previous=CALLBACK_SECRET)
    code, report, err = s.cli(capsys, tmp_path, "reseal")
    assert code == 1 and report["resealed"]["closed"] == 1 and report["resealed"]["manifests"] == 1, report
    [line] = report["errors"]
    assert line.startswith(f"{s.jail}/{denied}: AccessDenied") and "\n" not in line
    assert [e for e in err.splitlines() if e.startswith("cosguard reseal:")] == [f"cosguard reseal: {line}"]
    assert "Traceback" not in err
    assert s.ledger_doc(f".cosguard/closed/{job_id}.json")["_seal"].startswith(s.runtime.sealer.key_id + ".")
