"""Every setting cosguard reads, declared once: variable, Settings field, parser, default, doc line.

`Settings.from_env` (infra/config.py) reads the environment through this table, and
tests/unit/test_settings_listed.py checks every other place that lists settings against it: the
three sls-*/serverless.yml environment blocks, `.env.example` (with each default) and the table in
docs/configuration.md (with each default). A new setting is one `Setting(...)` line here, a field
on `Settings`, and whatever that test then names.

    python -c "from cosguard.infra.settings_spec import markdown_table; print(markdown_table())"
"""
from __future__ import annotations

import re
from typing import Any, Callable, NamedTuple, Optional, Tuple
from urllib.parse import urlsplit

from .records import Record

BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,48}-\d{6,12}$")
REGION_RE = re.compile(r"^[a-z]{2,}(-[a-z0-9]+)+$")
DEPLOYMENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
LEGACY_STATE_PREFIX = ".cosguard/"   # the default before each deployment derived its own

# The three SCF functions (functions/<name>, sls-<name>/serverless.yml).
FUNCTIONS = ("scan_on_upload", "quarantine_callback", "reconcile_pending")
SUBMITTERS = ("scan_on_upload", "reconcile_pending")   # the functions that submit CI jobs


# -- parsers: raw text -> value, or ValueError saying what was expected -----------------------------
def parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true/false, got {raw!r}")


def parse_list(raw: str) -> Tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def parse_prefix_list(raw: str) -> Tuple[str, ...]:
    return tuple(item.lstrip("/") for item in parse_list(raw))


def parse_suffix_list(raw: str) -> Tuple[str, ...]:
    return tuple(item.lower() for item in parse_list(raw))


def parse_prefix(raw: str) -> str:
    value = raw.strip().lstrip("/")
    if value and not value.endswith("/"):
        value += "/"
    return value


def parse_endpoint(raw: str) -> str:
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected http(s)://host[:port], got {raw!r}")
    return raw.strip().rstrip("/")


def parse_positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError(f"must be a positive integer, got {raw!r}")
    return value


def parse_days(raw: str) -> int:
    """A retention in days: 0 keeps forever (no lifecycle rule)."""
    value = int(raw)
    if value < 0:
        raise ValueError(f"must be a number of days (0 keeps forever), got {raw!r}")
    return value


def parse_deployment(raw: str) -> str:
    value = raw.strip()
    if not DEPLOYMENT_RE.match(value):
        raise ValueError(f"expected letters, digits, '-' or '_' (at most 64), got {raw!r}")
    return value


def parse_page_size(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= 1000:   # COS lists at most 1,000 keys a request (doc 436/7734)
        raise ValueError(f"must be between 1 and 1000, got {raw!r}")
    return value


def parse_positive_float(raw: str) -> float:
    value = float(raw)
    if value <= 0:
        raise ValueError(f"must be a positive number, got {raw!r}")
    return value


def parse_bucket(raw: str) -> str:
    value = raw.strip()
    if not BUCKET_RE.match(value):
        raise ValueError(f"{value!r} is not of the form <name>-<appid>")
    return value


def parse_region(raw: str) -> str:
    value = raw.strip()
    if not REGION_RE.match(value):
        raise ValueError(f"{value!r} is not a region like ap-guangzhou")
    return value


def parse_rescan_days(raw: str) -> float:
    """Days a clean verdict stands before the timer rescans it (fractions allowed; 0: every verdict
    given before the run)."""
    value = float(raw)
    if value < 0 or value != value:
        raise ValueError(f"must be a number of days (0 or more), got {raw!r}")
    return value


def parse_quiet_hours(raw: str) -> Tuple[int, int]:
    """`22-06`: from 22:00 to 06:00 UTC (the end excluded); `13-14`: one hour."""
    match = re.match(r"^\s*(\d{1,2})\s*-\s*(\d{1,2})\s*$", raw)
    if not match or not all(0 <= int(h) <= 23 for h in match.groups()) or match.group(1) == match.group(2):
        raise ValueError(f"expected two different hours 0-23 like 22-06 (UTC), got {raw!r}")
    return int(match.group(1)), int(match.group(2))


class Choice:
    """One of a few words, case-insensitive (kept upper case when the words are)."""

    def __init__(self, *allowed: str):
        self.allowed = allowed

    def __call__(self, raw: str) -> str:
        value = raw.strip().upper() if self.allowed[0].isupper() else raw.strip().lower()
        if value not in self.allowed:
            raise ValueError(f"expected one of {', '.join(self.allowed)}, got {raw!r}")
        return value


class Destination(Record, frozen=True):
    """Where clean objects are promoted to: a bucket (None = the source bucket) and a key prefix."""

    bucket: Optional[str]
    prefix: str

    def for_source(self, source_bucket: str) -> str:
        return self.bucket or source_bucket


def parse_destination(raw: str) -> Destination:
    """`bucket-appid`, `bucket-appid/prefix/` or `/prefix/` (same bucket)."""
    value = raw.strip()
    if value.startswith("/"):
        prefix = parse_prefix(value)
        if not prefix:
            raise ValueError("a same-bucket destination needs a prefix, e.g. /clean/")
        return Destination(None, prefix)
    bucket, _, rest = value.partition("/")
    if not BUCKET_RE.match(bucket):
        raise ValueError(f"{bucket!r} is not a bucket name of the form <name>-<appid>")
    return Destination(bucket, parse_prefix(rest))


# -- the declaration -------------------------------------------------------------------------------
class Setting(NamedTuple):
    """One environment variable. `functions`: the sls-*/serverless.yml that set it (() = set by SCF
    itself, or local only); `source`: the .env variable the templates fill it from (None = its own
    name, which `.env.example` then lists with `example`, its default unless stated)."""

    env: str
    field: str
    parse: Callable[[str], Any]
    default: Any
    doc: str
    required: bool = False
    secret: bool = False
    functions: Tuple[str, ...] = FUNCTIONS
    source: Optional[str] = None
    example: Optional[str] = None

    @property
    def default_text(self) -> str:
        """The default as written in `.env.example` and docs/configuration.md ("" = none)."""
        return format_value(self.default)

    @property
    def example_text(self) -> str:
        return self.default_text if self.example is None else self.example

    @property
    def in_env_example(self) -> bool:
        return bool(self.functions) and self.source is None


def format_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return ",".join(format_value(item) for item in value)
    return str(value)


_S = Setting
SETTINGS: Tuple[Setting, ...] = (
    _S("TENCENTCLOUD_SECRETID", "secret_id", str, "", "the execution role's temporary key id (set by SCF)",
       required=True, functions=()),
    _S("TENCENTCLOUD_SECRETKEY", "secret_key", str, "", "the execution role's temporary secret key",
       required=True, secret=True, functions=()),
    _S("TENCENTCLOUD_SESSIONTOKEN", "session_token", str, None, "the execution role's session token",
       secret=True, functions=()),
    _S("TENCENTCLOUD_REGION", "", parse_region, None, "the function's region (SCF), when COSGUARD_REGION "
       "is unset", functions=()),
    _S("COSGUARD_REGION", "region", parse_region, None, "the buckets' region, e.g. ap-guangzhou",
       example="ap-guangzhou"),
    _S("COSGUARD_BUCKETS", "buckets", parse_list, (), "the <name>-<appid> buckets this deployment serves",
       required=True, source="DEPLOY_INTAKE_BUCKET"),
    _S("COSGUARD_CALLBACK_URL", "callback_url", parse_endpoint, None, "the quarantine_callback "
       "function's URL (required by the functions that submit jobs)", functions=SUBMITTERS),
    _S("COSGUARD_CALLBACK_TOKEN", "callback_token", str, "", "secret (>= 16 characters) the seal key "
       "is derived from", required=True, secret=True),
    _S("COSGUARD_CALLBACK_TOKEN_PREVIOUS", "callback_token_previous", parse_list, (), "during a "
       "rotation: the replaced tokens, comma-separated", secret=True),
    _S("COSGUARD_COS_ENDPOINT", "cos_endpoint", parse_endpoint, None, "a local COS (tests, cosguard "
       "local); unset in production", functions=()),
    _S("COSGUARD_CI_ENDPOINT", "ci_endpoint", parse_endpoint, None, "a local CI; unset in production",
       functions=()),
    _S("COSGUARD_QUARANTINE_BUCKET", "quarantine_bucket", parse_bucket, None, "where infected objects "
       "are moved (unset: the source bucket)", example="quarantine-1250000000"),
    _S("COSGUARD_QUARANTINE_PREFIX", "quarantine_prefix", parse_prefix, "quarantine/", "key prefix in "
       "the quarantine bucket"),
    _S("COSGUARD_STATE_BUCKET", "state_bucket", parse_bucket, None, "where the ledger lives (unset: "
       "the quarantine bucket, else the source)"),
    _S("COSGUARD_STATE_PREFIX", "state_prefix", parse_prefix, None, "the ledger's key prefix (unset: "
       ".cosguard/<deployment>/)"),
    _S("COSGUARD_DEPLOYMENT", "deployment", parse_deployment, None, "the deployment's name, owner of "
       "its state location"),
    _S("COSGUARD_RETAIN_ACTIONS_DAYS", "retain_actions_days", parse_days, 1, "days the ledger keeps "
       "actions/ (0 = forever)"),
    _S("COSGUARD_RETAIN_CLOSED_DAYS", "retain_closed_days", parse_days, 180, "days the ledger keeps "
       "closed/, index/, removed/"),
    _S("COSGUARD_RETAIN_CLAIMS_DAYS", "retain_claims_days", parse_days, 365, "days the ledger keeps "
       "claims/, rescan-index/"),
    _S("COSGUARD_INCLUDE_PREFIXES", "include_prefixes", parse_prefix_list, (), "only keys under these "
       "prefixes are scanned", source="DEPLOY_INTAKE_PREFIX"),
    _S("COSGUARD_EXCLUDE_PREFIXES", "exclude_prefixes", parse_prefix_list, (), "keys under these "
       "prefixes are skipped"),
    _S("COSGUARD_INCLUDE_SUFFIXES", "include_suffixes", parse_suffix_list, (), "only keys with these "
       "suffixes are scanned"),
    _S("COSGUARD_EXCLUDE_SUFFIXES", "exclude_suffixes", parse_suffix_list, (), "keys with these "
       "suffixes are skipped"),
    _S("COSGUARD_SKIP_EMPTY", "skip_empty", parse_bool, True, "skip zero-byte objects"),
    _S("COSGUARD_REQUIRE_SUPPORTED_FORMAT", "require_supported_format", parse_bool, False,
       "extensions outside CI's list are unscannable"),
    _S("COSGUARD_INFECTED_ACTION", "infected_action", Choice("move", "delete", "tag"), "move",
       "what happens to an infected object"),
    _S("COSGUARD_TAG_LIMIT_ACTION", "tag_limit_action", Choice("move", "delete", "replace"), "move",
       "an infected object to tag with no tag slot left"),
    _S("COSGUARD_TAG_LIMIT_CLEAN_ACTION", "tag_limit_clean_action", Choice("keep", "replace"), "keep",
       "a clean object with no tag slot left"),
    _S("COSGUARD_UNSCANNABLE_ACTION", "unscannable_action", Choice("tag", "quarantine"), "tag",
       "objects CI cannot scan"),
    _S("COSGUARD_FAILED_ACTION", "failed_action", Choice("tag", "quarantine"), "tag",
       "jobs that end Failed"),
    _S("COSGUARD_SUBMIT_FAILED_ACTION", "submit_failed_action", Choice("tag", "quarantine"), "tag",
       "uploads CI refuses for good"),
    _S("COSGUARD_CLEAN_DESTINATION", "clean_destination", parse_destination, None, "fail-closed mode: "
       "where clean objects are promoted"),
    _S("COSGUARD_APPENDABLE_ACTION", "appendable_action", Choice("stream", "delete"), "stream",
       "infected appendable objects: streamed to quarantine or deleted"),
    _S("COSGUARD_MAX_WORKERS", "max_workers", parse_positive_int, 32, "threads: records, objects in "
       "flight (they mostly wait on round trips)"),
    _S("COSGUARD_MAX_ATTEMPTS", "max_attempts", parse_positive_int, 5, "attempts per cloud call"),
    _S("COSGUARD_REQUEST_TIMEOUT", "request_timeout", parse_positive_float, 10.0, "seconds per HTTP "
       "request"),
    _S("COSGUARD_NOTIFY_URL", "notify_url", parse_endpoint, None, "webhook for infections, "
       "unscannable objects and errors"),
    _S("COSGUARD_NOTIFY_FORMAT", "notify_format", Choice("json", "wecom", "dingtalk"), "json",
       "the webhook's format"),
    _S("COSGUARD_PENDING_OVERDUE_SECONDS", "pending_overdue_seconds", parse_positive_int, 3600,
       "the sweep reports jobs pending longer"),
    _S("COSGUARD_SWEEP_PAGE_SIZE", "sweep_page_size", parse_page_size, 1000, "ledger entries the "
       "sweep lists, then settles, at a time"),
    _S("COSGUARD_SWEEP_MARGIN_SECONDS", "sweep_margin_seconds", parse_positive_float, 5.0, "the sweep "
       "stops dispatching this long (or 10 %) before its deadline"),
    _S("COSGUARD_RESCAN_AFTER_DAYS", "rescan_after_days", parse_rescan_days, None, "the timer rescans "
       "writes whose clean verdict is older than this many days (unset: no scheduled rescans)"),
    _S("COSGUARD_RESCAN_DAILY_BUDGET", "rescan_daily_budget", parse_positive_int, 1000, "scheduled "
       "rescans submitted per UTC day, across runs and instances"),
    _S("COSGUARD_RESCAN_QUIET_HOURS", "rescan_quiet_hours", parse_quiet_hours, None, "UTC hours "
       "without scheduled rescans, e.g. 22-06"),
    _S("COSGUARD_LOG_LEVEL", "log_level", Choice("DEBUG", "INFO", "WARNING", "ERROR"), "INFO",
       "the functions' log level"),
)
BY_ENV = {setting.env: setting for setting in SETTINGS}


def markdown_table() -> str:
    """The declaration as a Markdown table (a starting point when docs/configuration.md changes)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for s in SETTINGS:
        default = f"`{s.default_text}`" if s.default_text else ("required" if s.required else "unset")
        rows.append(f"| `{s.env}` | {default} | {s.doc} |")
    return "\n".join(rows)

