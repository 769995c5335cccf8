import pytest

from cosguard.domain.status import Action
from cosguard.errors import ConfigError
from cosguard.infra.config import Destination, Settings

GOOD = {
    "TENCENTCLOUD_SECRETID": "AKIDexample", "TENCENTCLOUD_SECRETKEY": "secret",
    "COSGUARD_REGION": "ap-guangzhou", "COSGUARD_BUCKETS": "intake-1250000000",
    "COSGUARD_CALLBACK_URL": "https://1250000000-abc.ap-guangzhou.tencentscf.com/",
    "COSGUARD_CALLBACK_TOKEN": "x" * 32,
}


def test_defaults_from_a_minimal_environment():
    settings = Settings.from_env(GOOD)
    assert settings.region == "ap-guangzhou"
    assert settings.buckets == ("intake-1250000000",)
    assert settings.infected_action is Action.MOVE
    assert settings.quarantine_bucket_for("intake-1250000000") == "intake-1250000000"
    assert settings.state_bucket_for("intake-1250000000") == "intake-1250000000"
    assert settings.quarantine_prefix == "quarantine/"
    assert settings.cos_endpoint is None
    assert (settings.tag_limit_action, settings.tag_limit_clean_action) == ("move", "keep")


def test_tag_limit_actions_are_validated_at_cold_start():
    assert Settings.from_env(dict(GOOD, COSGUARD_TAG_LIMIT_ACTION="Replace")).tag_limit_action == "replace"
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(dict(GOOD, COSGUARD_TAG_LIMIT_ACTION="tag", COSGUARD_TAG_LIMIT_CLEAN_ACTION="delete"))
    assert [p.split(":")[0] for p in caught.value.problems] == ["COSGUARD_TAG_LIMIT_ACTION",
                                                               "COSGUARD_TAG_LIMIT_CLEAN_ACTION"]


def test_every_bad_variable_is_reported_at_once():
    env = {"COSGUARD_BUCKETS": "NoAppid", "COSGUARD_CALLBACK_TOKEN": "short",
           "COSGUARD_INFECTED_ACTION": "burn", "COSGUARD_MAX_WORKERS": "zero",
           "COSGUARD_COS_ENDPOINT": "ftp://x", "COSGUARD_SKIP_EMPTY": "maybe"}
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    text = str(caught.value)
    for name in ("COSGUARD_REGION", "COSGUARD_BUCKETS", "COSGUARD_CALLBACK_URL", "COSGUARD_CALLBACK_TOKEN",
                 "TENCENTCLOUD_SECRETID", "TENCENTCLOUD_SECRETKEY", "COSGUARD_INFECTED_ACTION",
                 "COSGUARD_MAX_WORKERS", "COSGUARD_COS_ENDPOINT", "COSGUARD_SKIP_EMPTY"):
        assert name in text, name
    assert len(caught.value.problems) == 10


def test_region_falls_back_to_tencentcloud_region():
    env = dict(GOOD)
    del env["COSGUARD_REGION"]
    env["TENCENTCLOUD_REGION"] = "ap-beijing"
    assert Settings.from_env(env).region == "ap-beijing"


def test_callback_function_does_not_need_a_callback_url():
    env = dict(GOOD)
    del env["COSGUARD_CALLBACK_URL"]
    assert Settings.from_env(env, require_callback_url=False).callback_url is None
    with pytest.raises(ConfigError, match="COSGUARD_CALLBACK_URL"):
        Settings.from_env(env)


@pytest.mark.parametrize("raw, expected", [
    ("clean-1250000000", Destination("clean-1250000000", "")),
    ("clean-1250000000/released", Destination("clean-1250000000", "released/")),
    ("/clean/", Destination(None, "clean/")),
])
def test_clean_destination_forms(raw, expected):
    assert Settings.from_env({**GOOD, "COSGUARD_CLEAN_DESTINATION": raw}).clean_destination == expected


def test_same_bucket_quarantine_needs_a_prefix():
    with pytest.raises(ConfigError, match="COSGUARD_QUARANTINE_PREFIX"):
        Settings.from_env({**GOOD, "COSGUARD_QUARANTINE_PREFIX": "/"})
    settings = Settings.from_env({**GOOD, "COSGUARD_QUARANTINE_PREFIX": "/",
                                  "COSGUARD_QUARANTINE_BUCKET": "jail-1250000000"})
    assert settings.quarantine_prefix == ""
    assert settings.state_bucket_for("intake-1250000000") == "jail-1250000000"


def test_secrets_stay_out_of_repr():
    text = repr(Settings.from_env({**GOOD, "TENCENTCLOUD_SESSIONTOKEN": "tok-123456"}))
    assert "secret" not in text.replace("secret_id", "")
    assert "x" * 32 not in text and "tok-123456" not in text


def test_submit_failed_action_is_validated_at_cold_start():
    assert Settings.from_env(GOOD).submit_failed_action is Action.TAG
    assert Settings.from_env({**GOOD, "COSGUARD_SUBMIT_FAILED_ACTION": "quarantine"}).submit_failed_action \
        is Action.QUARANTINE
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**GOOD, "COSGUARD_SUBMIT_FAILED_ACTION": "delete"})
    assert "COSGUARD_SUBMIT_FAILED_ACTION" in str(caught.value)


OLD_TOKENS = ("old-token-one-0123456789", "old-token-two-0123456789")


def test_previous_callback_tokens_verify_and_never_seal():
    settings = Settings.from_env({**GOOD, "COSGUARD_CALLBACK_TOKEN_PREVIOUS": " , ".join(OLD_TOKENS) + ","})
    assert settings.callback_token_previous == OLD_TOKENS
    assert len(settings.previous_seal_keys) == 2 and settings.seal_key not in settings.previous_seal_keys
    assert Settings.from_env(GOOD).previous_seal_keys == ()
    text = repr(settings)
    assert not any(token in text for token in OLD_TOKENS)


def test_bad_previous_tokens_are_reported_with_the_rest_and_never_shown():
    short, current = "tooshort", GOOD["COSGUARD_CALLBACK_TOKEN"]
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**GOOD, "COSGUARD_MAX_WORKERS": "0",
                           "COSGUARD_CALLBACK_TOKEN_PREVIOUS": f"{OLD_TOKENS[0]},{short},{current},{OLD_TOKENS[0]}"})
    problems = caught.value.problems
    assert [p.split(":")[0] for p in problems] == ["COSGUARD_CALLBACK_TOKEN_PREVIOUS"] * 3 + ["COSGUARD_MAX_WORKERS"]
    assert "entry 2 is shorter" in problems[0] and "entry 3 is the current" in problems[1] and "twice" in problems[2]
    assert not any(secret in str(caught.value) for secret in (short, current, OLD_TOKENS[0]))


def test_a_named_deployment_gets_its_own_state_prefix_unless_one_is_set():
    assert Settings.from_env(GOOD).state_prefix == ".cosguard/"
    named = Settings.from_env(dict(GOOD, COSGUARD_DEPLOYMENT="cosguard-prod"))
    assert (named.deployment, named.state_prefix) == ("cosguard-prod", ".cosguard/cosguard-prod/")
    explicit = Settings.from_env(dict(GOOD, COSGUARD_DEPLOYMENT="cosguard-prod", COSGUARD_STATE_PREFIX=".cosguard/"))
    assert explicit.state_prefix == ".cosguard/"


def test_retention_days_are_validated_at_cold_start():
    settings = Settings.from_env(GOOD)
    assert (settings.retain_actions_days, settings.retain_closed_days, settings.retain_claims_days) == (1, 180, 365)
    assert Settings.from_env(dict(GOOD, COSGUARD_RETAIN_CLAIMS_DAYS="0")).retain_claims_days == 0
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(dict(GOOD, COSGUARD_RETAIN_CLAIMS_DAYS="-1", COSGUARD_DEPLOYMENT="a/b",
                               COSGUARD_RETAIN_ACTIONS_DAYS="5", COSGUARD_RETAIN_CLOSED_DAYS="2"))
    assert [p.split(":")[0].split(" ")[0] for p in caught.value.problems] == [
        "COSGUARD_DEPLOYMENT", "COSGUARD_RETAIN_CLAIMS_DAYS", "COSGUARD_RETAIN_CLOSED_DAYS"]
