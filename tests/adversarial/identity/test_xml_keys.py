"""Issue 18, attack 2: keys XML cannot carry, or would change, never leave an EICAR readable.

cos-python-sdk-v5 escapes only `& < >` in the submit body: a key with `\\x01` or ESC made CI answer
`MalformedXML` (retried and reported forever, the EICAR readable), and a key with CR reached CI as
another key (LF), whose 409 "CI's object differs" nobody was told of (the EICAR `pending` forever).
Such keys now go to CI as a pre-signed `Url`; a job CI reports under another key is notified and
handled; a submission CI refuses for good can be configured to quarantine.
"""
from __future__ import annotations

import re

import pytest

from cosguard.local.samples import clean_text, eicar

# key -> why it is hostile; every one is a key COS stores (the local COS accepts CAN..ESC, 24-27,
# which doc 436/13324 says COS does not support: the worse answer for cosguard)
ODD_KEYS = {
    "odd/ctl\x01.exe": "a C0 control XML 1.0 cannot carry",
    "odd/esc\x1b[2J.exe": "ESC, a terminal escape",
    "odd/cr\r.exe": "CR, which XML turns into LF",
    "odd/crlf\r\n.exe": "CRLF, which XML turns into LF",
    "odd/lf\n.exe": "LF",
    "odd/tab\t.exe": "TAB",
    "odd/del\x7f.exe": "DEL",
    "odd/bidi\u202eexe.txt": "U+202E, right-to-left override",
    " odd/leading-space.exe": "whitespace a service may trim",
}


def _notified(stack, key, word):
    """Notifications with `word` about `key` (named by its plain part: notifiers escape the rest)."""
    plain = re.split(r"[\x00-\x1f\x7f]", key)[0]
    return [n for n in stack.sink.received if word in str(n) and plain in str(n)]


# Whether CI keeps a `Url` input's query string (the pre-signed signature) is undocumented: the local
# CI drops it by default, and then every job on a `Url` fails. The odd keys are then failed scans,
# handled by COSGUARD_FAILED_ACTION and notified, never scanned as another key.
QUERY = ["query-kept", "query-dropped"]


def _odd_stack(deploy, query: str, **env):
    stack = deploy(**env)
    stack.cloud.ci.faults.url_query_dropped = query == "query-dropped"
    return stack


@pytest.mark.parametrize("query", QUERY)
def test_every_odd_key_with_eicar_ends_quarantined(deploy, query):
    """Scanned where CI can fetch the URL; else a failed scan, which this deployment quarantines."""
    stack = _odd_stack(deploy, query, COSGUARD_FAILED_ACTION="quarantine")
    for key in ODD_KEYS:
        stack.put(key, eicar())
    assert stack.scan()["counts"] == {"submitted": len(ODD_KEYS)}
    stack.settle()
    assert stack.sweep()["applied"] == {}   # every verdict came by callback: each job bound to its upload
    quarantined = {key.rsplit("/", 1)[-1] for key in stack.quarantined()}
    for key, why in ODD_KEYS.items():
        assert stack.body(key) is None, f"EICAR readable at a key with {why}"
        assert key.rsplit("/", 1)[-1] in quarantined, why
    # the pre-signed URL's signature (a read credential) is kept nowhere an operator or uploader reads
    assert stack.sink.received and "q-signature" not in str(stack.sink.received)
    for item in stack.cos.list_objects(Bucket=stack.jail).get("Contents", []):
        got = stack.cos.get_object(Bucket=stack.jail, Key=item["Key"])
        assert "q-signature" not in str(got) and b"q-signature" not in got["Body"].get_raw_stream().read()


@pytest.mark.parametrize("query", QUERY)
def test_every_odd_key_with_clean_bytes_ends_tagged_clean(deploy, query):
    """Never moved; `clean` only when CI really read the bytes (else `error`, and notified)."""
    stack = _odd_stack(deploy, query)
    for key in ODD_KEYS:
        stack.put(key, clean_text())
    stack.scan()
    stack.settle()
    for key, why in ODD_KEYS.items():
        assert stack.body(key) == clean_text(), why
        as_object = "\u202e" in key   # the one odd key that still goes as `Object`
        expected = "clean" if query == "query-kept" or as_object else "error"
        assert stack.tags(key)["cosguard-status"] == expected, why
        if expected == "error":
            assert _notified(stack, key, "error"), why
    assert stack.quarantined() == []


def test_odd_keys_go_to_ci_as_a_presigned_url_plain_ones_as_object(stack):
    stack.put("plain/report.pdf", clean_text())
    stack.put("odd/ctl\x01.pdf", clean_text())
    stack.scan()
    stack.settle()
    jobs = {(job.object_key, bool(job.url)) for job in stack.cloud.ci.backend.jobs.values()}
    assert jobs == {("plain/report.pdf", False), (None, True)}
    url = next(job.url for job in stack.cloud.ci.backend.jobs.values() if job.url)
    assert url.startswith(f"http://{stack.intake}.cos.") and "q-signature=" in url


@pytest.mark.parametrize("query", QUERY)
def test_a_decoy_at_the_normalised_key_never_stands_in(deploy, query):
    """The CR key's decoy (same key with LF) is clean: CI's verdict on it never clears the EICAR."""
    stack = _odd_stack(deploy, query)
    stack.put("docs/a\nb.exe", clean_text())
    stack.put("docs/a\rb.exe", eicar())
    stack.scan()
    stack.settle()
    stack.sweep()
    assert stack.body("docs/a\nb.exe") == clean_text()
    if query == "query-kept":
        assert stack.body("docs/a\rb.exe") is None
        assert stack.tags("docs/a\nb.exe")["cosguard-status"] == "clean"
    else:   # neither could be read by CI: both failed scans, neither called clean
        assert stack.tags("docs/a\rb.exe")["cosguard-status"] == "error"
        assert stack.tags("docs/a\nb.exe")["cosguard-status"] == "error"


@pytest.fixture
def object_form_only(monkeypatch):
    """cosguard as it was: every key goes as `Input/Object`, so CI reads a CR key as LF."""
    monkeypatch.setattr("cosguard.infra.cloud.object_form_carries", lambda key: True, raising=False)


@pytest.mark.parametrize("action, expect", [("tag", "error"), ("quarantine", "quarantined")])
def test_a_job_ci_reports_under_another_key_is_notified_and_handled(deploy, object_form_only, action, expect):
    stack = deploy(COSGUARD_SUBMIT_FAILED_ACTION=action)
    stack.put("docs/x\ny.exe", clean_text())   # where CI's parser takes the CR key
    stack.put("docs/x\ry.exe", eicar())
    stack.scan()
    stack.settle()
    report = stack.sweep()
    assert _notified(stack, "docs/x", "differs"), stack.sink.received
    if expect == "quarantined":
        assert stack.body("docs/x\ry.exe") is None
        assert any(k.endswith("docs/x\ry.exe") for k in stack.quarantined())
        assert stack.sweep()["unresolved"] == []
    else:
        assert stack.tags("docs/x\ry.exe")["cosguard-status"] == "error"   # never left `pending`
        assert report["applied"] == {"error": 1}
        assert [u["key"] for u in stack.sweep()["unresolved"]] == ["docs/x\ry.exe"]   # reported every sweep
    assert stack.tags("docs/x\ny.exe")["cosguard-status"] == "clean"


@pytest.mark.parametrize("action", ["tag", "quarantine"])
def test_a_submission_ci_refuses_for_good_can_be_quarantined(deploy, action):
    stack = deploy(COSGUARD_SUBMIT_FAILED_ACTION=action)
    stack.cloud.ci.faults.unbound_buckets.add(stack.intake)   # 400 BucketNotBound: no retry heals it
    stack.put("in/refused.exe", eicar())
    result = stack.scan()
    assert result["counts"] == {"error": 1}
    assert _notified(stack, "in/refused.exe", "BucketNotBound")
    if action == "quarantine":
        assert stack.body("in/refused.exe") is None
        assert len(stack.quarantined()) == 1
        assert stack.sweep()["unresolved"] == []   # handled: nothing left to report
    else:
        assert stack.tags("in/refused.exe")["cosguard-status"] == "error"
        assert [u["key"] for u in stack.sweep()["unresolved"]] == ["in/refused.exe"]
