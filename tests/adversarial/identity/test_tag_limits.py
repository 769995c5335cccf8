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


# Issue 18, item 3: ten tags of the uploader's own, none of them cosguard's, leave no room for
# cosguard-status; a reader policy keyed on it must still never serve the EICAR as untagged.
TEN = {f"team{i}": f"v{i}" for i in range(10)}


def _full_upload(deploy, key, body, **env):
    stack = deploy(**env)
    stack.put(key, body, Tagging=_header(TEN))
    assert stack.scan()["counts"] == {"submitted": 1}
    stack.settle()
    return stack


def _told(stack, key):
    return [n for n in stack.sink.received if n.get("key") == key]


def test_infected_to_be_tagged_with_no_room_is_quarantined_by_default(deploy):
    stack = _full_upload(deploy, "full.exe", eicar(), COSGUARD_INFECTED_ACTION="tag")
    assert stack.body("full.exe") is None
    assert len(stack.quarantined()) == 1
    [note] = _told(stack, "full.exe")
    assert note["outcome"] == "quarantined" and "no room for cosguard-status=infected" in note["detail"]


def test_infected_to_be_tagged_with_no_room_is_deleted_when_so_configured(deploy):
    stack = _full_upload(deploy, "full.exe", eicar(), COSGUARD_INFECTED_ACTION="tag",
                         COSGUARD_TAG_LIMIT_ACTION="delete")
    assert stack.body("full.exe") is None and stack.quarantined() == []
    [note] = _told(stack, "full.exe")
    assert note["outcome"] == "deleted" and "no room" in note["detail"]


def test_infected_to_be_tagged_with_no_room_replaces_one_uploader_tag_when_so_configured(deploy):
    stack = _full_upload(deploy, "full.exe", eicar(), COSGUARD_INFECTED_ACTION="tag",
                         COSGUARD_TAG_LIMIT_ACTION="replace")
    tags = stack.tags("full.exe")
    assert tags["cosguard-status"] == "infected" and len(tags) == 10
    assert {k: v for k, v in tags.items() if k != "cosguard-status"} == {k: v for k, v in TEN.items() if k != "team9"}
    [note] = _told(stack, "full.exe")
    assert note["outcome"] == "infected" and "replacing the uploader's tag team9" in note["detail"]


@pytest.mark.parametrize("action", ["move", "delete"])
def test_infected_with_ten_tags_under_move_or_delete_never_stays(deploy, action):
    stack = _full_upload(deploy, "full.exe", eicar(), COSGUARD_INFECTED_ACTION=action)
    assert stack.body("full.exe") is None
    assert len(stack.quarantined()) == (1 if action == "move" else 0)


def test_the_uploaders_job_tag_gives_way_to_the_status(deploy):
    stack = deploy(COSGUARD_INFECTED_ACTION="tag")
    own = dict(list(TEN.items())[:9], **{"cosguard-job": "forged"})
    stack.put("job.exe", eicar(), Tagging=_header(own))
    stack.scan()
    stack.settle()
    tags = stack.tags("job.exe")
    assert tags["cosguard-status"] == "infected" and "cosguard-job" not in tags
    assert stack.body("job.exe") == eicar()   # tagged in place, as configured


def test_clean_with_no_room_keeps_the_uploaders_tags_and_says_so(deploy):
    stack = _full_upload(deploy, "full.txt", clean_text())
    assert stack.body("full.txt") == clean_text()   # never moved or deleted for want of a slot
    assert stack.tags("full.txt") == TEN
    [note] = _told(stack, "full.txt")
    assert note["outcome"] == "clean" and "left untagged" in note["detail"]


def test_clean_with_no_room_replaces_one_uploader_tag_when_so_configured(deploy):
    stack = _full_upload(deploy, "full.txt", clean_text(), COSGUARD_TAG_LIMIT_CLEAN_ACTION="replace")
    assert stack.body("full.txt") == clean_text()
    tags = stack.tags("full.txt")
    assert tags["cosguard-status"] == "clean" and "team9" not in tags and len(tags) == 10
