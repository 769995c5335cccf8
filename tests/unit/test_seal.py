"""cosguard.domain.seal: seals outlive the deployment that wrote them, and every forgery is reported.

Ledger documents, quarantine manifests and the markers on released and promoted objects stay in COS
across upgrades, so a seal's spelling is a stored format: the values below were written by the
deployed code and must keep verifying. (Found by mutation testing, docs/mutation-testing.md.)
"""
import io
import json
import logging

import pytest

from cosguard.domain.seal import MAX_REMEMBERED, PROMOTED_META, SEAL_FIELD, Sealer, canonical
from cosguard.infra import logs

KEY = b"the-seal-key"
ETAG = '"0cc175b9c0f1b6a831c399e269772661"'
LEDGER = ("intake-1250000000", ".cosguard/jobs/ab.json")
MANIFEST = ("jail-1250000000", "quarantine/intake/a.txt")


@pytest.fixture
def warnings_logged():
    """The JSON lines cosguard.domain.seal logs, as dicts."""
    stream = io.StringIO()
    logger = logging.getLogger("cosguard.domain.seal")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger.addHandler(handler)
    level, logger.level = logger.level, logging.WARNING
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_seals_written_by_the_deployed_version_still_verify():
    """The MACs are a stored format: those written before seals named their key (format 1, a bare
    MAC) still verify, and a new seal is the same MAC behind the key's id (docs/rotation.md)."""
    sealer = Sealer(KEY)
    kid = sealer.key_id
    stored_document = {"status": "pending", "key": "\u6587\u4ef6.txt", "size": 3,
                       SEAL_FIELD: "7b3e26301efb919b0ba4673aed42542c83d80fd21dce1952d33e152cb0d4111f"}
    stored_manifest = {"source_key": "a.txt", "size": 3,
                       SEAL_FIELD: "e5478654ea5170b7f6f0d103e803e4ae4abac0e673bc511074e108ab334e9791"}
    body = {k: v for k, v in stored_document.items() if k != SEAL_FIELD}
    assert sealer.seal(*LEDGER, body) == dict(stored_document, **{SEAL_FIELD: f"{kid}.{stored_document[SEAL_FIELD]}"})
    assert sealer.open(*LEDGER, stored_document) == {"status": "pending", "key": "\u6587\u4ef6.txt", "size": 3}
    assert sealer.open(*LEDGER, sealer.seal(*LEDGER, body)) == body
    manifest = {"source_key": "a.txt", "size": 3}
    assert sealer.seal_manifest(*MANIFEST, manifest) == dict(stored_manifest, **{SEAL_FIELD: f"{kid}.{stored_manifest[SEAL_FIELD]}"})
    assert sealer.open_manifest(*MANIFEST, stored_manifest) == manifest
    assert sealer.release_marker("intake-1250000000", "a.txt", ETAG) == \
        f"{kid}.ac2f4a8d0cedafe08bd1dcd21abf1e7f6fef2b4fd55606f21f7eb280aff03b1b"
    assert sealer.promotion_marker("clean-1250000000", "a.txt", ETAG, "1234567890") == \
        f"{kid}.d1070ab9581565c6956524cbcd2fe7e1ab099e723446fb810c274f6dd53a033c"
    assert sealer.promotion_marker("clean-1250000000", "a.txt", ETAG, "") == \
        f"{kid}.3b1ce53cecb04846c56229a1d2df76dbef4d922edafd5b567e3d71b2e91283bc"
    assert sealer.is_promoted_copy("clean-1250000000", "a.txt", ETAG.strip('"'), {
        PROMOTED_META: "d1070ab9581565c6956524cbcd2fe7e1ab099e723446fb810c274f6dd53a033c"}, "1234567890")
    assert sealer.take_rejected() == []


def test_a_promoted_copy_is_recognised_only_at_its_place_with_its_bytes():
    sealer = Sealer(KEY)
    marker = {PROMOTED_META: sealer.promotion_marker("clean-1250000000", "a.txt", ETAG, "123")}
    assert sealer.is_promoted_copy("clean-1250000000", "a.txt", ETAG.strip('"'), marker, "123")
    for where in [("clean-1250000000", "b.txt", ETAG, marker, "123"), ("other-1250000000", "a.txt", ETAG, marker, "123"),
                  ("clean-1250000000", "a.txt", '"ffff"', marker, "123"), ("clean-1250000000", "a.txt", ETAG, marker, "124"),
                  ("clean-1250000000", "a.txt", ETAG, marker, ""), ("clean-1250000000", "a.txt", ETAG, {}, "123")]:
        assert not sealer.is_promoted_copy(*where)
    # an object older than COS's CRC64 has none: its copy is sealed, and recognised, without one
    without = {PROMOTED_META: sealer.promotion_marker("clean-1250000000", "a.txt", ETAG, "")}
    assert sealer.is_promoted_copy("clean-1250000000", "a.txt", ETAG, without, "")
    assert not sealer.is_promoted_copy("clean-1250000000", "a.txt", ETAG, without, "123")


def test_a_seal_covers_the_content_not_its_spelling():
    """COS hands back the JSON cosguard wrote; a reader that orders keys otherwise still verifies."""
    sealer = Sealer(KEY)
    sealed = sealer.seal(*LEDGER, {"b": 1, "a": "\u00e9", "c": [1.5, None]})
    reordered = dict(reversed(list(json.loads(json.dumps(sealed)).items())))
    assert sealer.open(*LEDGER, reordered) == {"a": "\u00e9", "b": 1, "c": [1.5, None]}
    assert canonical({"b": 1, "a": "\u00e9", "c": [1.5, None]}) == '{"a":"\\u00e9","b":1,"c":[1.5,null]}'


@pytest.mark.parametrize("presented", [None, 7, b"bytes", "", "0" * 64, "\ud800", "\u00e9" * 64])
def test_anything_but_the_right_mac_does_not_match(presented):
    """JSON can carry any of these (a lone surrogate too: "\\ud800" parses): never a crash."""
    assert not Sealer(KEY).matches(presented, "document", "b", "k")
    assert Sealer(KEY).open("b", "k", {"status": "clean", SEAL_FIELD: presented}) is None


def test_a_forged_document_or_manifest_is_absent_reported_and_logged(warnings_logged):
    sealer = Sealer(KEY)
    forged = {"status": "clean", SEAL_FIELD: "0" * 64}
    assert sealer.open(*LEDGER, forged) is None
    assert sealer.open_manifest(*MANIFEST, forged) is None
    assert sealer.open_manifest(*MANIFEST, "not a manifest", report=False) is None
    assert sealer.take_rejected() == ["/".join(LEDGER), "/".join(MANIFEST)]
    assert sealer.take_rejected() == []
    lines = warnings_logged()
    assert [(line["level"], line["message"], line["bucket"], line["key"], line["what"]) for line in lines] == [
        ("WARNING", "unauthenticated document ignored", *LEDGER, "ledger document"),
        ("WARNING", "unauthenticated document ignored", *MANIFEST, "quarantine manifest")]
    assert all(line["event"] == "unauthenticated_document_ignored" for line in lines)
    assert all(line["reason"] == "no valid cosguard seal: written by someone else, or sealed under a "
                                 "COSGUARD_CALLBACK_TOKEN that is neither current nor in "
                                 "COSGUARD_CALLBACK_TOKEN_PREVIOUS" for line in lines)


def test_a_rejection_for_another_reason_says_that_reason(warnings_logged):
    sealer = Sealer(KEY)
    sealer.reject("b", "k", "ledger document", "AccessDenied: COS refused to read it")
    assert sealer.take_rejected() == ["b/k"]
    assert warnings_logged()[0]["reason"] == "AccessDenied: COS refused to read it"


def test_a_long_lived_instance_remembers_only_the_latest_rejections():
    sealer = Sealer(KEY)
    logger = logging.getLogger("cosguard.domain.seal")
    level, logger.level = logger.level, logging.ERROR
    try:
        for n in range(MAX_REMEMBERED + 5):
            sealer.reject("b", f"k{n}", "ledger document")
    finally:
        logger.setLevel(level)
    taken = sealer.take_rejected()
    assert len(taken) == MAX_REMEMBERED and taken[0] == "b/k5" and taken[-1] == f"b/k{MAX_REMEMBERED + 4}"
