"""domain/layout.py's warnings, each risk and each wording (written from mutmut's survivors,
docs/mutation-testing.md; preflight and `cosguard verify` print them: tests/adversarial/state/test_state_layout.py)."""
from __future__ import annotations

from cosguard.domain.layout import layout_warnings
from cosguard.infra.config import Settings

A, B, STATE = "a-1250000000", "b-1250000000", "state-1250000000"


def settings(**env: str) -> Settings:
    return Settings.from_env({"TENCENTCLOUD_SECRETID": "x", "TENCENTCLOUD_SECRETKEY": "y",
                              "COSGUARD_REGION": "ap-guangzhou", "COSGUARD_BUCKETS": f"{A},{B}",
                              "COSGUARD_CALLBACK_TOKEN": "layout-test-token-0123456789abcdef",
                              "COSGUARD_CALLBACK_URL": "https://fn.example.com/", **env})


LEDGER = (f"{A}: the ledger (.cosguard/) is in the intake bucket, where uploaders can write: forged documents "
          "are detected and ignored, but genuine ones can be overwritten. Set COSGUARD_STATE_BUCKET (or "
          "COSGUARD_QUARANTINE_BUCKET) to a private bucket")
QUARANTINE = (f"{A}: quarantine (quarantine/) is in the intake bucket, where uploaders can write: evidence can be "
              "overwritten (restore refuses swapped bytes). Set COSGUARD_QUARANTINE_BUCKET to a private bucket")


def test_state_and_quarantine_in_the_intake_bucket_are_each_named_in_full():
    warnings = layout_warnings(settings(COSGUARD_STATE_PREFIX=".cosguard/"))
    assert warnings[:2] == [LEDGER, QUARANTINE]
    assert [w.split(":")[0] for w in warnings] == [A, A, B, B]


def test_a_private_state_bucket_leaves_only_quarantine_and_a_private_quarantine_bucket_nothing():
    assert [w.split(":")[1].split("(")[0].strip() for w in layout_warnings(settings(COSGUARD_STATE_BUCKET=STATE))] \
        == ["quarantine", "quarantine"]
    assert layout_warnings(settings(COSGUARD_QUARANTINE_BUCKET=STATE)) == []   # the ledger follows quarantine


def test_a_clean_destination_in_an_intake_bucket_is_named_with_its_bucket_and_prefix():
    same = layout_warnings(settings(COSGUARD_QUARANTINE_BUCKET=STATE, COSGUARD_CLEAN_DESTINATION="/released/"))
    assert same == [
        f"{bucket}: the clean destination ({bucket}/released/) is in an intake bucket, where uploaders can write: "
        "what they put there without cosguard's seal is scanned like an upload when an event (if the trigger's "
        "prefix covers it) or a backfill reaches it, but readers can fetch it before the verdict, and promoted "
        "copies can be overwritten. Set COSGUARD_CLEAN_DESTINATION to a bucket readers use and uploaders cannot write"
        for bucket in (A, B)]
    other_intake = layout_warnings(settings(COSGUARD_QUARANTINE_BUCKET=STATE, COSGUARD_CLEAN_DESTINATION=f"{B}/out/"))
    assert [w[:w.index(")")] for w in other_intake] == [f"{A}: the clean destination ({B}/out/", f"{B}: the clean destination ({B}/out/"]
    assert layout_warnings(settings(COSGUARD_QUARANTINE_BUCKET=STATE,
                                    COSGUARD_CLEAN_DESTINATION="public-1250000000/out/")) == []


def test_versioning_is_judged_only_when_known_and_named_as_found():
    private = settings(COSGUARD_QUARANTINE_BUCKET=STATE)
    assert layout_warnings(private, None) == []
    assert layout_warnings(private, {A: "enabled", B: "enabled"}) == []
    found = layout_warnings(private, {A: "", B: "suspended"})
    assert found == [
        f"{A}: versioning is off: an overwrite that lands while a verdict is applied can hit the new upload, and "
        "quarantine keeps no earlier version. Enable versioning on intake buckets",
        f"{B}: versioning is suspended: an overwrite that lands while a verdict is applied can hit the new upload, "
        "and quarantine keeps no earlier version. Enable versioning on intake buckets"]
    assert [w.split(":")[1] for w in layout_warnings(private, {A: "enabled"})] == [" versioning is unknown"]
