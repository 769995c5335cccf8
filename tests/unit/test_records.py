"""cosguard.infra.records: the value classes on the handlers' path behave as the dataclasses they replace.

mypy checks this module too (pyproject.toml): each `type: ignore[...]` below marks a call that the
runtime refuses and that a type checker must refuse as well (Record is a `dataclass_transform`). Were
the fields hidden from type checkers again, the ignores would go unused and mypy would fail."""
import pickle
import subprocess
import sys
from typing import Any, ClassVar, Dict, List, Optional

import pytest

from cosguard.domain.ledger import JobEntry
from cosguard.infra.cloud import ObjectInfo
from cosguard.infra.config import Settings
from cosguard.infra.records import Factory, FrozenInstanceError, Record

ENV = {
    "TENCENTCLOUD_SECRETID": "AKIDexample", "TENCENTCLOUD_SECRETKEY": "the-secret-key",
    "TENCENTCLOUD_SESSIONTOKEN": "the-session-token", "COSGUARD_REGION": "ap-guangzhou",
    "COSGUARD_BUCKETS": "intake-1250000000", "COSGUARD_CALLBACK_URL": "https://example.com/cb",
    "COSGUARD_CALLBACK_TOKEN": "the-callback-token-0123456789",
}


class Point(Record, frozen=True):
    limit: ClassVar[int] = 3
    x: int
    y: int = 0


class Bag(Record, uncompared=("note",)):
    name: str
    items: List[Any] = Factory(list)
    note: Optional[str] = None


def test_fields_defaults_and_positional_or_keyword_arguments():
    assert Point._fields == ("x", "y")
    assert Point(1) == Point(x=1, y=0) == Point(1, 0)
    assert Point(1, y=2).y == 2
    with pytest.raises(TypeError):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Point(1, 2, 3)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Point(1, x=1)  # type: ignore[misc]
    with pytest.raises(TypeError):
        Point(1, z=1)  # type: ignore[call-arg]


def test_a_field_without_default_cannot_follow_one_with():
    with pytest.raises(TypeError):
        class Broken(Record):  # noqa: F841
            a: int = 0
            b: int  # type: ignore[misc]


def test_frozen_records_refuse_assignment_and_hash_by_value():
    point = Point(1, 2)
    with pytest.raises(FrozenInstanceError):
        point.x = 5  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del point.y
    assert point.x == 1
    assert hash(point) == hash(Point(1, 2)) and len({point, Point(1, 2)}) == 1
    assert point != (1, 2) and point != Point(2, 1)


def test_mutable_records_get_fresh_factory_defaults_and_are_unhashable():
    first, second = Bag("a"), Bag("a")
    first.items.append("x")
    assert second.items == [] and first != second
    first.items.clear()
    first.note = "ignored by eq"
    assert first == second
    with pytest.raises(TypeError):
        hash(first)


def test_replace_and_fields_dict_as_dataclasses_did():
    point = Point(1, 2)
    moved = point.replace(y=7)
    assert (moved, point) == (Point(1, 7), Point(1, 2))
    with pytest.raises(TypeError):
        point.replace(z=1)
    bag = Bag("a", [["nested"]])
    plain = bag.fields_dict()
    assert plain == {"name": "a", "items": [["nested"]], "note": None}
    plain["items"][0].append("copy")
    assert bag.items == [["nested"]]  # containers are copied


def test_settings_stay_frozen_typed_and_keep_secrets_out_of_repr():
    settings = Settings.from_env(ENV)
    with pytest.raises(AttributeError):
        settings.region = "ap-beijing"  # type: ignore[misc]
    text = repr(settings)
    assert "AKIDexample" in text and "ap-guangzhou" in text
    for secret in ("the-secret-key", "the-session-token", "the-callback-token"):
        assert secret not in text
    rotated = settings.replace(secret_key="rotated")
    assert rotated.secret_key == "rotated" and settings.secret_key == "the-secret-key"
    assert rotated != settings and Settings.from_env(ENV) == settings
    assert pickle.loads(pickle.dumps(settings)) == settings


def test_ledger_entries_round_trip_through_their_document():
    info = ObjectInfo("intake-1250000000", "a.exe", 3, '"e"', "STANDARD", None, 0, {}, last_modified=5)
    entry = JobEntry.for_object(info, now=10.0, lease=60.0)
    assert entry.job_id == "" and entry.state == "submitting"   # a claim has no job until the submission records one
    doc: Dict = entry.fields_dict()
    assert doc["key"] == "a.exe" and doc["manifest"] == {} and doc["state"] == "submitting"
    assert JobEntry.from_doc(dict(doc, unknown_field=1)) == entry
    assert (entry.bucket, entry.key, entry.size, entry.etag, entry.last_modified) == ("intake-1250000000", "a.exe", 3, '"e"', 5)


def test_the_runtime_needs_no_typing_extensions():
    """`dataclass_transform` comes from typing on 3.11; on 3.9 only type checkers import it (from
    typing_extensions, which the package does not depend on) and the runtime uses a no-op."""
    probe = ("import sys, cosguard.infra.records as r; "
             "print('typing_extensions' in sys.modules, hasattr(r.Record, '__dataclass_transform__'))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", str(sys.version_info >= (3, 11))]


def test_a_write_set_aside_by_moving_it_is_not_kept_in_place():
    """`unscannable` and `error` end tagged in place, or moved to quarantine (the manifest says
    where): only the first leaves the write handled at its key."""
    from cosguard.domain.entries import kept_in_place
    assert kept_in_place("unscannable", {}) and kept_in_place("error", {"quarantined": None})
    assert not kept_in_place("unscannable", {"quarantined": {"bucket": "jail", "key": "q/a.exe"}})
    assert not kept_in_place("quarantined", {})


def test_a_ledger_document_that_is_no_object_names_what_it_is():
    from cosguard.domain.entries import MalformedEntry
    with pytest.raises(MalformedEntry, match="^a JSON list, not an object$"):
        JobEntry.from_doc([])


def test_a_null_version_id_is_no_identity():
    """An object written while versioning was off or suspended may carry the version id `null` (S3's
    spelling; the local COS leaves the header out): every such write has it, so it would make an
    overwrite look like the write already handled. Its ETag and second identify it instead."""
    from cosguard.domain.entries import token_for
    assert token_for("null", '"e1"', 5) == "e1@5" != token_for("null", '"e2"', 5)
    assert token_for("v-1", '"e1"', 5) == "v-1" and token_for(None, '"e1"', 0) == "e1"


def test_an_entry_written_before_its_job_has_no_job_id_and_a_bad_field_is_named():
    """A claim taken before the submission carries no `job_id` (read back as ""); a field of another
    type, or a required one missing, is refused with what is wrong, so a forgery report says it."""
    from cosguard.domain.entries import MalformedEntry
    info = ObjectInfo("intake-1250000000", "a.exe", 3, '"e"', "STANDARD", None, 0, {}, last_modified=5)
    doc = JobEntry.for_object(info, now=10.0, lease=60.0).fields_dict()
    doc.pop("job_id")
    assert JobEntry.from_doc(doc).job_id == ""
    with pytest.raises(MalformedEntry, match="^field 'size' is a str$"):
        JobEntry.from_doc(dict(doc, size="3"))
    with pytest.raises(MalformedEntry, match="missing required argument 'bucket'$"):
        JobEntry.from_doc({k: v for k, v in doc.items() if k != "bucket"})
