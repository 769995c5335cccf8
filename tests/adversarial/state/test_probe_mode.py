"""Probe mode (domain/probe_mode.py) against an uploader: with the ledger in the intake bucket, where
uploaders can write, a marker they write (unsealed, sealed for another place or under another
deployment's key) switches nothing on; a genuine marker applies to its scratch prefix and buckets
only, until it expires; a callback URL's probe parameters cannot be forged; what probe mode records
never holds the callback token, a URL token or an Authorization value; and what `cosguard probe`
prints of text it did not write (CI's messages) cannot forge rows or drive the terminal."""
from __future__ import annotations

import json
import re
import time
from typing import Any, Dict, List
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests

from cosguard.domain.probe_mode import marker_key
from cosguard.domain.seal import Sealer
from cosguard.infra.config import _seal_key
from cosguard.local.samples import clean_text
from helpers import CALLBACK_SECRET
from probed import ProbedDeployment, row

RUN = "p20260101000000-abcdef"
PREFIX = f"up/cosguard-probe/{RUN}/"
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def marker(s, **changes: Any) -> Dict[str, Any]:
    body = {"format": 1, "run": RUN, "prefix": PREFIX, "buckets": list(s.intakes),
            "expires": int(time.time()) + 600, "fail_once": ["retry.txt"]}
    body.update(changes)
    return body


def write_marker(s, body: Dict[str, Any], sealer: Any = None, sealed_for: str = "") -> None:
    """The marker at its place in the state bucket (the intake bucket here): sealed by `sealer`
    for `sealed_for` (default: its own place), or as an uploader writes it (no sealer)."""
    key = marker_key(s.runtime.settings.state_prefix)
    document = sealer.seal(s.jail, sealed_for or key, body) if sealer is not None else dict(body, _seal="00" * 32)
    s.put_json(key, document, bucket=s.jail)


def records(s) -> List[str]:
    listing = s.cos.list_objects(Bucket=s.jail, Prefix=f"{s.runtime.settings.state_prefix}probe/{RUN}/")
    return [item["Key"] for item in listing.get("Contents", [])]


def scanned(s, key: str) -> str:
    s.put(key, clean_text())
    s.scan()
    s.settle()
    return s.tags(key)["cosguard-status"]


@pytest.fixture
def exposed(stack):
    """Ledger (and so the marker's place) in the intake bucket, where uploaders can write."""
    return stack(jail=False)


@pytest.mark.parametrize("forgery", ["unsealed", "sealed for another key", "another deployment's key"])
def test_an_uploader_cannot_switch_probe_mode_on(exposed, forgery):
    s = exposed
    if forgery == "unsealed":
        write_marker(s, marker(s))
    elif forgery == "sealed for another key":
        write_marker(s, marker(s), s.runtime.sealer, sealed_for=".cosguard/other/marker.json")
    else:
        write_marker(s, marker(s), Sealer(_seal_key("another-deployment-token-0123456789")))
    assert scanned(s, PREFIX + "clean.txt") == "clean"   # scanned as any upload
    assert records(s) == []
    job = next(iter(s.cloud.ci.backend.jobs.values()))
    assert "probe_seal" not in job.callback               # the callback URL is an ordinary one
    assert any(k.endswith("probe/marker.json") for k in s.runtime.sealer.take_rejected())


def test_a_genuine_marker_applies_to_its_prefix_buckets_and_time_only(stack):
    s = stack(sources=2, jail=False)
    write_marker(s, marker(s, buckets=[s.intake]), s.runtime.sealer)
    scanned(s, f"other/cosguard-probe/{RUN}/clean.txt")             # another prefix
    s.put(PREFIX + "clean.txt", clean_text(), bucket=s.intakes[1])  # a bucket the marker does not name
    s.scan()
    s.settle()
    assert records(s) == []
    write_marker(s, marker(s, expires=int(time.time()) - 1), s.runtime.sealer)   # expired
    scanned(s, PREFIX + "late.txt")
    assert records(s) == []
    write_marker(s, marker(s), s.runtime.sealer)
    assert scanned(s, PREFIX + "clean.txt") == "clean"
    assert len([k for k in records(s) if "/events/" in k]) == 1
    assert len([k for k in records(s) if "/callbacks/" in k]) == 1


def test_probe_parameters_cannot_be_forged_on_a_callback_url(exposed):
    """A holder of a genuine callback URL who adds probe parameters gets the ordinary verdict: no
    record, no error answer."""
    s = exposed
    write_marker(s, marker(s), s.runtime.sealer)
    s.cloud.ci.faults.drop_callback_rate = 1.0
    s.put("up/plain.txt", clean_text())
    job_id = s.scan()["jobs"]["up/plain.txt"]
    s.settle()
    url = s.cloud.ci.backend.jobs[job_id].callback
    parts = urlsplit(url)
    forged = parts._replace(query=urlencode(dict(parse_qsl(parts.query), probe_run=RUN, probe_fail="1",
                                                 probe_name="retry.txt", probe_seal="ab" * 32))).geturl()
    body = f"<Response><JobsDetail><JobId>{job_id}</JobId></JobsDetail></Response>".encode()
    answer = requests.post(forged, data=body, timeout=5)
    assert answer.status_code == 200
    assert s.tags("up/plain.txt")["cosguard-status"] == "clean"
    assert records(s) == []


def test_probe_records_never_hold_the_token_or_authorization(exposed):
    s = exposed
    s.cloud.ci.callback_signed = True           # CI's callback carries an Authorization
    s.cloud.ci.callback_retries = 1             # and is sent again after the probe's 503
    write_marker(s, marker(s), s.runtime.sealer)
    s.put(PREFIX + "retry.txt", clean_text())
    job_id = s.scan()["jobs"][PREFIX + "retry.txt"]
    s.settle()
    url_token = dict(parse_qsl(urlsplit(s.cloud.ci.backend.jobs[job_id].callback).query))["token"]
    kept = {k: s.body(k, bucket=s.jail).decode("utf-8") for k in records(s)}
    assert len([k for k in kept if "/callbacks/" in k]) == 2 and len([k for k in kept if "/events/" in k]) == 1
    for key, text in kept.items():
        for secret in (CALLBACK_SECRET, url_token, s.cloud.credentials.secret_key, "q-signature=",
                       "q-sign-algorithm"):
            assert secret not in text, (key, secret)
    callbacks = [json.loads(t) for k, t in kept.items() if "/callbacks/" in k]
    for recorded in callbacks:
        request = recorded["request"]
        assert request["query"]["token"] == "***" and request["query"]["probe_seal"] == "***"
        assert {k.lower(): v for k, v in request["headers"].items()}["authorization"] == "***"
    assert sorted(c["answered_error"] for c in callbacks) == [False, True]
    assert s.tags(PREFIX + "retry.txt")["cosguard-status"] == "clean"   # CI's retry got the verdict


class _EveryMissingKey(dict):
    """CI's answer_overrides for the probe's `missing.txt`, whatever its run id."""

    def __init__(self, fields: Dict[str, Any]):
        super().__init__()
        self.fields = fields

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.endswith("/missing.txt")

    def __getitem__(self, name: str) -> Dict[str, Any]:
        return self.fields


def test_text_the_probe_did_not_write_cannot_forge_report_rows(tmp_path):
    # what XML can carry (CI's answers are XML): a C1 control, a line break, bidi overrides
    hostile = "gone\u0085\nci.status  on  yes  nothing to change\u202e\u2028"
    deployment = ProbedDeployment()
    try:
        deployment.cloud.ci.faults.answer_overrides = _EveryMissingKey({"Message": hostile})
        code, out = deployment.probe_output(tmp_path)
        report = deployment.probe(tmp_path)
    finally:
        deployment.close()
    assert not RAW_CONTROL.search(out.replace("\n", ""))
    assert not any(line.startswith("ci.status  on  yes") for line in out.splitlines())
    assert sum(bool(re.match(r"ci\.status\s", line)) for line in out.splitlines()) == 1   # its one row
    assert report["timed_out"] is False   # a second run right after the first finds its own marker
    assert hostile.strip() in row(report, "ci.job_failure")["observed"]   # JSON keeps the exact text
