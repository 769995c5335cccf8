"""cosguard.domain.rules: which objects are scanned, skipped or unscannable, and the reason each
caller (upload trigger, backfill, sweep) reports. Each rule at its edge, found by mutation testing
(docs/mutation-testing.md); the adversarial suites drive the same rules through the deployed stack."""
import pytest

from cosguard.domain.rules import skip_reason, skip_reason_for_object, unscannable_reason
from cosguard.domain.seal import Sealer
from cosguard.domain.security import RELEASED_META
from cosguard.infra.cloud import ObjectInfo
from cosguard.infra.config import Settings

ENV = {
    "TENCENTCLOUD_SECRETID": "AKIDexample", "TENCENTCLOUD_SECRETKEY": "secret",
    "COSGUARD_REGION": "ap-guangzhou", "COSGUARD_BUCKETS": "intake-1250000000",
    "COSGUARD_CALLBACK_URL": "https://1250000000-abc.ap-guangzhou.tencentscf.com/",
    "COSGUARD_CALLBACK_TOKEN": "x" * 32,
}
BUCKET = "intake-1250000000"
ETAG = '"0cc175b9c0f1b6a831c399e269772661"'


def settings(**env: str) -> Settings:
    return Settings.from_env(dict(ENV, **env))


def head(key: str, size: int = 3, storage_class: str = "STANDARD", **metadata: str) -> ObjectInfo:
    return ObjectInfo(BUCKET, key, size, ETAG, storage_class, None, 0, metadata)


@pytest.mark.parametrize("env, key, reason", [
    ({}, "any/thing.exe", None),
    ({"COSGUARD_INCLUDE_PREFIXES": "in/,also/"}, "also/a.exe", None),
    ({"COSGUARD_INCLUDE_PREFIXES": "in/,also/"}, "out/a.exe", "outside the included prefixes"),
    ({"COSGUARD_EXCLUDE_PREFIXES": "logs/"}, "logs/a.exe", "excluded prefix"),
    ({"COSGUARD_EXCLUDE_PREFIXES": "logs/"}, "up/logs/a.exe", None),
    ({"COSGUARD_INCLUDE_SUFFIXES": ".exe,.zip"}, "up/A.ZIP", None),        # suffixes ignore case
    ({"COSGUARD_INCLUDE_SUFFIXES": ".exe,.zip"}, "up/a.txt", "outside the included suffixes"),
    ({"COSGUARD_EXCLUDE_SUFFIXES": ".log"}, "up/A.LOG", "excluded suffix"),
    ({"COSGUARD_EXCLUDE_SUFFIXES": ".log"}, "up/a.log.exe", None),
])
def test_skip_reason_by_name(env, key, reason):
    assert skip_reason(settings(**env), BUCKET, key) == reason


def test_only_a_zero_byte_slash_key_is_a_folder_and_empty_objects_follow_the_setting():
    sealer = Sealer(b"k")
    assert skip_reason_for_object(settings(), head("up/", 0), sealer) == "folder marker"
    assert skip_reason_for_object(settings(COSGUARD_SKIP_EMPTY="false"), head("up/", 0), sealer) == "folder marker"
    assert skip_reason_for_object(settings(), head("up/", 1), sealer) is None      # content: an object
    assert skip_reason_for_object(settings(), head("up/a", 0), sealer) == "empty object"
    assert skip_reason_for_object(settings(COSGUARD_SKIP_EMPTY="false"), head("up/a", 0), sealer) is None
    assert skip_reason_for_object(settings(), head("up/a", 1), sealer) is None


def test_a_released_object_is_skipped_only_where_and_as_it_was_released():
    sealer = Sealer(b"k")
    marker = sealer.release_marker(BUCKET, "up/a.exe", ETAG)
    released = head("up/a.exe", **{RELEASED_META: marker})
    assert skip_reason_for_object(settings(), released, sealer) == "released from quarantine by a human decision"
    moved = ObjectInfo(BUCKET, "up/b.exe", 3, ETAG, "STANDARD", None, 0, {RELEASED_META: marker})
    other_bytes = ObjectInfo(BUCKET, "up/a.exe", 3, '"ffff"', "STANDARD", None, 0, {RELEASED_META: marker})
    other_bucket = ObjectInfo("other-1250000000", "up/a.exe", 3, ETAG, "STANDARD", None, 0, {RELEASED_META: marker})
    for copied in (moved, other_bytes, other_bucket):
        assert skip_reason_for_object(settings(), copied, sealer) is None
    assert skip_reason_for_object(settings(), released, Sealer(b"another key")) is None


def test_ci_scans_objects_under_1_gb_so_exactly_1_gb_is_unscannable():
    limit = settings().max_size
    assert unscannable_reason(settings(), head("up/a.exe", limit - 1)) is None
    assert unscannable_reason(settings(), head("up/a.exe", limit)) == \
        f"too_large: {limit} bytes, CI scans objects under {limit}"


@pytest.mark.parametrize("storage_class", ["ARCHIVE", "DEEP_ARCHIVE"])
def test_archived_objects_are_unscannable_until_restored(storage_class):
    assert unscannable_reason(settings(), head("up/a.exe", storage_class=storage_class)) == \
        f"archived: storage class {storage_class} must be restored before scanning"
    assert unscannable_reason(settings(), head("up/a.exe", storage_class="STANDARD_IA")) is None


@pytest.mark.parametrize("key, reason", [
    ("up/a.exe", None), ("up/A.PDF", None), ("up/archive.tar.gz", None),
    ("up/notes.txt", "unsupported_format: .txt is not in CI's supported list"),
    ("up/README", "unsupported_format: .(none) is not in CI's supported list"),
    ("up/.exe", "unsupported_format: .(none) is not in CI's supported list"),   # a dot-file, no extension
])
def test_unsupported_formats_when_required(key, reason):
    assert unscannable_reason(settings(COSGUARD_REQUIRE_SUPPORTED_FORMAT="true"), head(key)) == reason
    assert unscannable_reason(settings(), head(key)) is None
