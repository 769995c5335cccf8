"""domain/security.py rule by rule: what a callback URL binds, when it expires, and the release
marker (written from mutmut's survivors, docs/mutation-testing.md). The callback function's use of
them over HTTP is in tests/adversarial/state/test_state_callback.py and tests/integration."""
from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from cosguard.domain.seal import Sealer
from cosguard.domain.security import (
    CALLBACK_TOKEN_TTL,
    RELEASED_META,
    callback_token,
    callback_url,
    check_callback_query,
    is_released,
    object_ref,
    released_marker,
    upload_callback,
)

SEALER = Sealer(b"s" * 32)
BUCKET = "a-1250000000"


def query_of(url: str):
    return dict(parse_qsl(urlsplit(url).query))


def test_a_ref_is_the_same_in_every_release():
    """URLs in flight carry refs computed by the release that submitted them, and entries written
    before `callback_ref` was recorded are recomputed: the digest of a key never changes."""
    assert object_ref(BUCKET, "docs/x.pdf", "etag-1") == "19f4a422935746b547bcb2bc0e9f9d4e"
    assert object_ref(BUCKET, "résumé/é.pdf", "v-1") == "e7c7877069d67f8997bec6340df03fb9"   # escaped, never raw


def test_a_token_is_valid_through_its_expiry_second_and_not_after():
    query = query_of(callback_url("https://fn.example.com/cb", SEALER, BUCKET, "r" * 32, 2000))
    assert check_callback_query(SEALER, query, now=2000) == (True, "")
    assert check_callback_query(SEALER, query, now=2000.5) == (False, "expired token")


def test_an_expiry_that_is_not_a_number_is_refused_even_with_a_genuine_token():
    for expires in ("soon", "-5", "", "1e9"):
        token = callback_token(SEALER, BUCKET, "r" * 32, expires)
        query = {"bucket": BUCKET, "ref": "r" * 32, "exp": expires, "token": token}
        assert check_callback_query(SEALER, query, now=0) == (False, "expired token"), expires


def test_a_query_without_its_fields_is_refused_without_an_error():
    assert check_callback_query(SEALER, {}, now=0) == (False, "missing token")
    assert check_callback_query(SEALER, {"token": "x.y"}, now=0) == (False, "bad token")


def test_an_upload_callback_expires_a_week_after_it_is_issued():
    url = upload_callback("https://fn.example.com/cb", SEALER, BUCKET, "r" * 32, now=1000.9)
    assert CALLBACK_TOKEN_TTL == 7 * 24 * 3600
    assert query_of(url)["exp"] == str(1000 + CALLBACK_TOKEN_TTL)
    assert check_callback_query(SEALER, query_of(url), now=1000 + CALLBACK_TOKEN_TTL) == (True, "")
    assert upload_callback(None, SEALER, BUCKET, "r" * 32, now=1000) is None
    assert upload_callback("", SEALER, BUCKET, "r" * 32, now=1000) is None


def test_a_base_url_without_a_path_or_query_gets_one_path_and_no_stray_separator():
    url = callback_url("https://fn.example.com", SEALER, BUCKET, "r" * 32, 2000.7)
    assert url.startswith(f"https://fn.example.com/?bucket={BUCKET}&ref={'r' * 32}&exp=2000&token=")
    assert urlsplit(url).fragment == ""
    assert check_callback_query(SEALER, query_of(url), now=2000) == (True, "")


def test_the_release_marker_verifies_for_its_object_and_bytes_only():
    marker = released_marker(SEALER, BUCKET, "k", '"abc"')
    assert is_released(SEALER, BUCKET, "k", "abc", {RELEASED_META: marker})
    assert is_released(SEALER, BUCKET, "k", '"abc"', {RELEASED_META: marker})
    assert RELEASED_META == "cosguard-released"
    assert not is_released(SEALER, BUCKET, "k", '"abd"', {RELEASED_META: marker})
    assert not is_released(SEALER, BUCKET, "other", '"abc"', {RELEASED_META: marker})
    assert not is_released(SEALER, "b-1250000000", "k", '"abc"', {RELEASED_META: marker})
    assert not is_released(Sealer(b"t" * 32), BUCKET, "k", '"abc"', {RELEASED_META: marker})
    assert not is_released(SEALER, BUCKET, "k", '"abc"', {})
    assert not is_released(SEALER, BUCKET, "k", '"abc"', {RELEASED_META: ""})
    assert not is_released(SEALER, BUCKET, "k", '"abc"', {"cosguard-promoted": marker})


def test_a_missing_bucket_or_ref_is_judged_as_empty_never_a_crash():
    """A query without `bucket` (or `ref`) is checked as if it named the empty string: a token made
    for that verifies, any other is a bad token, and nothing raises on the public URL."""
    query = query_of(callback_url("https://fn.example.com/cb", SEALER, "", "", 2000))
    assert query.get("bucket", "") == "" and query.get("ref", "") == ""
    for missing in ({k: v for k, v in query.items() if k not in ("bucket", "ref")},
                    {k: v for k, v in query.items() if k != "bucket"}):
        assert check_callback_query(SEALER, missing, now=1000) == (True, "")
    forged = query_of(callback_url("https://fn.example.com/cb", SEALER, BUCKET, "r" * 32, 2000))
    forged.pop("bucket")
    assert check_callback_query(SEALER, forged, now=1000) == (False, "bad token")


def test_each_missing_parameter_gives_its_own_refusal():
    """No `exp`: a token made for an empty expiry verifies and is refused as expired (never
    believed, never a crash); no `token`: missing; a `ref` left out is not some other ref."""
    made = query_of(callback_url("https://fn.example.com/cb", SEALER, BUCKET, "", 2000))
    no_ref = {k: v for k, v in made.items() if k != "ref"}
    assert check_callback_query(SEALER, no_ref, now=1000) == (True, "")
    no_exp = {"bucket": BUCKET, "ref": "r", "token": callback_token(SEALER, BUCKET, "r", "")}
    assert check_callback_query(SEALER, no_exp, now=1000) == (False, "expired token")
    assert check_callback_query(SEALER, {k: v for k, v in made.items() if k != "token"}, now=1000) == (
        False, "missing token")
