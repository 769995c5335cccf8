"""cosguard.domain.limits: the copies cosguard writes fit COS's per-object limits exactly, no sooner.
(Boundaries and orderings found by mutation testing, docs/mutation-testing.md.)"""
from cosguard.domain.limits import (
    MAX_KEY_BYTES,
    MAX_METADATA_BYTES,
    digest_name,
    fit_beside,
    fit_metadata,
    fitting_key,
    metadata_bytes,
)


def test_a_key_of_exactly_850_bytes_is_kept_one_byte_more_is_digested():
    """COS allows 850 bytes (doc 436/13324): a quarantine key of exactly that keeps the original name."""
    base = "quarantine/intake-1250000000/"
    exact = "\u6587" * 2 + "k" * (MAX_KEY_BYTES - len(base) - 6)   # multi-byte: counted in UTF-8 bytes
    assert len((base + exact).encode("utf-8")) == MAX_KEY_BYTES
    assert fitting_key(base, exact) == base + exact
    assert fitting_key(base, exact + "k") == base + digest_name(exact + "k")
    assert digest_name(exact + "k") != digest_name(exact) and digest_name("k") == digest_name("k")


def test_the_largest_of_the_users_headers_gives_way_first_whatever_their_names():
    user = {"a": "a" * 100, "m": "m" * 1800, "z": "z" * 150}
    kept, dropped = fit_metadata(user, room=400)
    assert kept == {"a": "a" * 100, "z": "z" * 150} and dropped == ["m"]
    kept, dropped = fit_metadata(user, room=200)
    assert kept == {"a": "a" * 100} and dropped == ["m", "z"]


def test_equal_headers_give_way_in_name_order_so_every_retry_drops_the_same():
    kept, dropped = fit_metadata({"b": "x" * 100, "a": "x" * 100, "c": "x" * 100}, room=2 * 112)
    assert kept == {"b": "x" * 100, "c": "x" * 100} and dropped == ["a"]


def test_cosguards_own_metadata_comes_first_and_the_user_gets_the_rest_of_2_kb():
    own = {"cosguard-promoted": "f" * 64}
    user = {"note": "n" * (MAX_METADATA_BYTES - metadata_bytes(own) - len("x-cos-meta-note"))}
    assert fit_beside(own, user) == (dict(user, **own), [])
    # one byte over: the largest header gives way, however small the one that tipped it
    assert fit_beside(own, dict(user, more="1")) == (dict(more="1", **own), ["note"])
