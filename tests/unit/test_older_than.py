"""The order promotions follow (domain/promotions.py): an older version of a key is never promoted
over a newer one's copy. Through the HTTP stack in tests/adversarial/identity/test_promotion_order.py;
here, every rule of `older_than` on its own."""
from __future__ import annotations

import pytest

from cosguard.domain.promotions import older_than
from cosguard.infra.cloud import ObjectInfo

SECOND = 1_800_000_000


def version(version_id: str, second: int = SECOND, key: str = "k") -> ObjectInfo:
    return ObjectInfo(bucket="intake", key=key, size=1, etag='"e"', storage_class="STANDARD",
                      version_id=version_id or None, tag_count=0, metadata={}, last_modified=second)


def record(identity: str = "v2", second: int = SECOND, older=(), key: str = "k"):
    return {"bucket": "intake", "key": key, "identity": identity, "last_modified": second, "older": list(older)}


@pytest.mark.parametrize("info, doc, recorded_at, older", [
    (version("v1", SECOND - 1), record(), SECOND, True),            # an earlier second
    (version("v3", SECOND + 1), record(), SECOND + 1, False),       # a later second
    (version("v1"), record(older=["v1"]), SECOND, True),            # same second, known open then
    (version("v3"), record(older=["v1"]), SECOND, False),           # same second, written after the record
    (version("v1"), record(), SECOND + 1, True),                    # same second, the record written later
    (version("v2"), record(), SECOND + 5, False),                   # the recorded write itself
    (version("v1", key="other"), record(), SECOND + 1, False),      # another key: not ordered
    (version("", SECOND - 1), record(), SECOND, False),             # unversioned: current is newest
    (version("v1"), dict(record(), last_modified="x"), SECOND, False),   # no second recorded
])
def test_older_than(info, doc, recorded_at, older):
    assert older_than(info, doc, recorded_at) is older
