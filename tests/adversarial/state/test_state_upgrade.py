"""An upgrade keeps its state (docs/upgrades.md): a ledger written by the release before formats
existed (format 1: no `_format`, seals without a key id; tests/fixtures/ledger_v1, written by that
release's own code through generate.py) is read by this one and acted on: an in-flight job whose
callback arrives after the upgrade is applied (infected quarantined, clean tagged), a handled
upload stays handled, an old quarantine is restorable, status is healthy, and `cosguard reseal`
rewrites it all in the current format. A document of a format newer than this release knows is
reported, never guessed at."""
from __future__ import annotations

import hashlib
import hmac
import json
import pathlib
import time
from typing import Any, Dict
from urllib.parse import quote, urlencode

import requests

from cosguard.domain.actions import MANIFEST_META
from cosguard.domain.entries import digest, version_token
from cosguard.domain.security import object_ref
from cosguard.local.samples import clean_text, eicar
from helpers import Context

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "ledger_v1"
IN_FLIGHT = {"v1/inflight.com": eicar(), "v1/inflight-clean.txt": clean_text()}


def v1_mac(seal_key: bytes, kind: str, *parts: str) -> str:
    """Format 1's seal: the bare hex HMAC, no key id (written out here, not taken from cosguard)."""
    message = json.dumps([kind, *parts], ensure_ascii=True, separators=(",", ":")).encode("ascii")
    return hmac.new(seal_key, message, hashlib.sha256).hexdigest()


def canonical(doc: Dict[str, Any]) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def substituted(value: Any, pairs) -> Any:
    """`value` with every string's run-specific parts (`pairs`: old -> new) replaced."""
    if isinstance(value, str):
        for old, new in pairs:
            value = value.replace(old, new)
        return value
    if isinstance(value, dict):
        return {k: substituted(v, pairs) for k, v in value.items()}
    if isinstance(value, list):
        return [substituted(v, pairs) for v in value]
    return value


def xml(job_id):
    return f"<Response><JobsDetail><JobId>{job_id}</JobId></JobsDetail></Response>".encode()


def restore_v1_state(s) -> Dict[str, Any]:
    """The fixture's deployment mapped onto this stack: its uploads put again (same bytes, new
    Last-Modified), its in-flight jobs submitted to CI with format-1 callback URLs (callbacks held),
    every document sealed as format 1 did under this stack's key, at the place its names give."""
    run = json.loads((FIXTURES / "run.json").read_text())
    ledger = json.loads((FIXTURES / "ledger.json").read_text())
    quarantined = json.loads((FIXTURES / "manifest.json").read_text())
    seal_key = s.runtime.settings.seal_key
    s.cloud.ci.faults.drop_callback_rate = 1.0
    s.put("v1/handled.txt", clean_text())
    handled_event = s.take_events()
    for key, body in IN_FLIGHT.items():
        s.put(key, body)
    s.take_events()
    now: Dict[str, str] = {}   # each re-uploaded object's identity in this run
    for key in run["last_modified"]:
        info = s.runtime.gateway.head(s.intake, key)
        assert info.etag.strip('"') == run["etag"][key]        # the same bytes
        now[key] = version_token(info)
    pairs = [(run["intake"], s.intake), (run["jail"], s.jail)]
    callbacks = {}
    for key in IN_FLIGHT:
        ref, expires = object_ref(s.intake, key, now[key]), str(int(time.time()) + 3600)
        url = s.callback_server.url + "?" + urlencode({"bucket": s.intake, "ref": ref, "exp": expires,
                                                      "token": v1_mac(seal_key, "callback", s.intake, ref, expires)})
        job_id = s.runtime.gateway.submit_virus_job(s.intake, key, url)
        callbacks[key] = (job_id, url)
        pairs.append((run["jobs"][key], job_id))
    s.settle()
    for item in ledger:
        doc = item["document"]
        key = doc.get("key")
        mine = list(pairs)
        if key in run["last_modified"] or key == "v1/evil.com":
            old = f"{run['etag'][key]}@{run['last_modified'][key]}" if key in now else doc["token"]
            new = now.get(key, old)
            mine = [(digest(run["intake"], key, old), digest(s.intake, key, new)),
                    (object_ref(run["intake"], key, old), object_ref(s.intake, key, new)), (old, new)] + mine
        path, body = substituted(item["path"], mine), substituted(doc, mine)
        if key in now and "last_modified" in body:
            body["last_modified"] = int(now[key].rpartition("@")[2])
        s.put_json(path, dict(body, _seal=v1_mac(seal_key, "document", s.jail, path, canonical(body))))
    copy = substituted(quarantined["key"], pairs)
    manifest = substituted(quarantined["manifest"], pairs)
    sealed = dict(manifest, _seal=v1_mac(seal_key, "manifest", s.jail, copy, canonical(manifest)))
    encoded = quote(json.dumps(sealed, ensure_ascii=False, separators=(",", ":")), safe="")
    s.put(copy, eicar(), bucket=s.jail, Metadata={f"x-cos-meta-{MANIFEST_META}": encoded})
    s.cloud.ci.faults.drop_callback_rate = 0.0
    return {"callbacks": callbacks, "handled_event": handled_event, "evil_job": run["jobs"]["v1/evil.com"],
            "documents": len(ledger)}


def test_a_format_1_ledger_is_read_and_acted_on_after_the_upgrade(stack, capsys, tmp_path):
    s = stack()
    v1 = restore_v1_state(s)
    submitted = s.jobs_created()
    # the in-flight jobs' callbacks arrive after the upgrade: both verdicts applied
    job_id, url = v1["callbacks"]["v1/inflight.com"]
    answer = requests.post(url, data=xml(job_id), timeout=10)
    assert (answer.status_code, answer.json()["outcome"]) == (200, "quarantined")
    assert not s.exists("v1/inflight.com") and s.quarantined("v1/inflight.com")
    job_id, url = v1["callbacks"]["v1/inflight-clean.txt"]
    answer = requests.post(url, data=xml(job_id), timeout=10)
    assert (answer.status_code, answer.json()["outcome"]) == (200, "clean")
    assert s.tags("v1/inflight-clean.txt")["cosguard-status"] == "clean"
    # a redelivered event of the upload format 1 recorded as handled submits nothing
    assert s.scan_handler(v1["handled_event"], Context())["counts"] == {"duplicate": 1}
    assert s.jobs_created() == submitted
    # format 1's quarantine (closed record + manifest) is restorable
    code, answer, err = s.cli(capsys, tmp_path, "restore", v1["evil_job"])
    assert code == 0 and answer["restored"], err
    assert s.tags("v1/evil.com")["cosguard-status"] == "released"
    # --since reaching the fixtures' closes, however long ago they were written
    closed_at = min(e["document"]["closed_at"] for e in json.loads((FIXTURES / "ledger.json").read_text())
                    if e["document"].get("closed_at"))
    since = str(int((time.time() - closed_at) // 86400) + 2)
    code, status, err = s.cli(capsys, tmp_path, "status", "--since", since)
    assert code == 0 and status["unauthenticated"] == [] and status["oldest_pending"] is None, err
    # reseal rewrites what is left in format 1 in the current one
    code, report, err = s.cli(capsys, tmp_path, "reseal")
    assert code == 0 and report["forged"] == 0 and report["left_in_flight"] == {}, err
    assert report["resealed"]["claims"] == 1 and report["resealed"]["closed"] >= 1
    # format 1 had no history index: reseal writes the entries of its closes, so status counts them
    assert report["resealed"]["index"] == report["resealed"]["closed"]
    code, after, err = s.cli(capsys, tmp_path, "status", "--since", since)
    assert code == 0 and after["unauthenticated"] == [], err
    assert sum(after["counts"].values()) - sum(status["counts"].values()) == report["resealed"]["index"], after
    for item in s.cos.list_objects(Bucket=s.jail, Prefix=".cosguard/")["Contents"]:
        if "/index/" in item["Key"] or "/rescan-index/" in item["Key"]:   # empty objects sealed by their names
            continue
        doc = s.ledger_doc(item["Key"])
        assert doc["_format"] == 2 and doc["_seal"].startswith(s.runtime.sealer.key_id + "."), item["Key"]


def test_a_document_of_a_newer_format_is_reported_not_guessed(stack, capsys, tmp_path):
    s = stack()
    sealer = s.runtime.sealer
    s.put("n/upload.com", eicar())
    token = version_token(s.runtime.gateway.head(s.intake, "n/upload.com"))
    claim = f".cosguard/claims/{digest(s.intake, 'n/upload.com', token)}.json"
    future = {"bucket": s.intake, "key": "n/upload.com", "token": token, "outcome": "clean", "job_id": "j",
              "closed_at": 1.0, "_format": 3, "_identity": "version-or-etag-mtime/1"}
    s.put_json(claim, sealer.seal(s.jail, claim, future))
    assert s.scan()["counts"] == {"submitted": 1}        # a "handled" record it cannot read stops nothing
    s.settle()
    assert not s.exists("n/upload.com")
    assert f"{s.jail}/{claim}" in sealer.take_rejected()   # and reported
    # status reads open jobs (never closed records: it counts the history index); a job of a newer
    # format is reported, not counted as pending
    job = f".cosguard/jobs/{digest(s.intake, 'n/other.com', token)}.json"
    s.put_json(job, sealer.seal(s.jail, job, dict(future, key="n/other.com", state="submitted", size=1, etag="e",
                                                  submitted_at=0.0, job_id="j-future")))
    code, status, err = s.cli(capsys, tmp_path, "status", "--debug")   # --debug: the log lines too
    assert code == 1 and status["unauthenticated"] == [f"{s.jail}/{job}"], err
    assert "format 3 is newer than this cosguard" in err   # the WARNING says why
    closed = ".cosguard/closed/j-future.json"
    s.put_json(closed, sealer.seal(s.jail, closed, dict(future, size=1, etag="e", submitted_at=0.0, job_id="j-future")))
    code, report, err = s.cli(capsys, tmp_path, "reseal")   # reseal reads every record: says which, never rewrites
    assert code == 1 and any(closed in line and "format 3" in line for line in report["errors"]), report
    assert s.ledger_doc(closed)["_format"] == 3
