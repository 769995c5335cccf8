"""Issue 17: COS's tag limits (doc 436/42997: at most 10 tags, key < 128 bytes, value < 256 bytes),
now enforced by the local COS, used to the full by an uploader: cosguard has no room for its own tags
on such an upload, and must still scan it and act on its verdict."""
from __future__ import annotations

from urllib.parse import quote

import pytest
from qcloud_cos import CosServiceError

from cosguard.local.samples import clean_text, eicar

# Ten tags of the largest legal size, one of them claiming cosguard's verdict.
FULL = {f"k{i}".ljust(127, "x"): "v" * 255 for i in range(9)} | {"cosguard-status": "clean"}


def _header(tags):
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in tags.items())


def test_infected_bytes_with_every_tag_slot_taken_are_quarantined(stack):
    stack.put("full.exe", eicar(), Tagging=_header(FULL))
    assert stack.scan()["counts"] == {"submitted": 1}
    stack.settle()
    assert stack.body("full.exe") is None
    assert len(stack.quarantined()) == 1


def test_clean_bytes_with_every_tag_slot_taken_stay_with_the_users_tags(stack):
    stack.put("full.txt", clean_text(), Tagging=_header(FULL))
    assert stack.scan()["counts"] == {"submitted": 1}
    stack.settle()
    assert stack.body("full.txt") == clean_text()
    assert stack.tags("full.txt") == FULL


def test_a_tag_set_over_cos_limits_is_refused_at_upload_and_nothing_is_scanned(stack):
    with pytest.raises(CosServiceError) as err:
        stack.put("over.exe", eicar(), Tagging=_header({"k" * 128: "v"}))
    assert err.value.get_status_code() == 400
    assert stack.body("over.exe") is None
    assert stack.take_events()["Records"] == []   # no write, so no event
