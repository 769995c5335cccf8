"""Issue 9, attacks 3 and 4: every key is scanned; one spelling never stands in for another."""
from __future__ import annotations

from cosguard.local.samples import clean_text, eicar


def test_a_slash_suffixed_key_with_content_is_scanned(stack):
    stack.put("uploads/evil/", eicar())
    stack.put("uploads/folder/", b"")
    summary = stack.scan()
    assert summary["counts"] == {"submitted": 1, "skipped": 1}
    stack.settle()
    assert stack.body("uploads/evil/") is None and len(stack.quarantined()) == 1
    assert stack.body("uploads/folder/") == b""  # a real folder marker stays untouched


def _eicar_event(stack, decoy: bytes):
    stack.put("docs/invoice%202024.exe", decoy)   # the decoy, at the percent-encoded spelling
    stack.take_events()
    stack.put("docs/invoice 2024.exe", eicar())  # the real upload; COS may send its key encoded
    return stack.take_events()


def test_a_decoy_at_the_encoded_spelling_does_not_stand_in_for_the_upload(stack):
    event = _eicar_event(stack, clean_text())  # sizes differ: the event's size picks the upload
    assert stack.scan(event)["counts"] == {"submitted": 1}
    stack.settle()
    assert stack.body("docs/invoice 2024.exe") is None
    assert stack.body("docs/invoice%202024.exe") == clean_text()  # the clean decoy is never moved


def test_when_sizes_do_not_tell_every_candidate_is_scanned(stack):
    decoy = b"clean " * 11 + b"ab"  # as long as EICAR
    assert len(decoy) == len(eicar())
    event = _eicar_event(stack, decoy)
    assert stack.scan(event)["counts"] == {"submitted": 2}
    stack.settle()
    assert stack.body("docs/invoice 2024.exe") is None
    assert stack.body("docs/invoice%202024.exe") == decoy
    assert stack.tags("docs/invoice%202024.exe")["cosguard-status"] == "clean"


def test_raw_event_keys_resolve_too(stack):
    stack.cloud.cos.event_key_encoding = "raw"
    event = _eicar_event(stack, clean_text())
    assert stack.scan(event)["counts"] == {"submitted": 1}
    stack.settle()
    assert stack.body("docs/invoice 2024.exe") is None
    assert stack.body("docs/invoice%202024.exe") == clean_text()
