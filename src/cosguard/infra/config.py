"""One frozen Settings, built once at cold start from the environment.

Every problem is collected and reported together in one ConfigError, so a bad deploy fails on its
first invocation with a message that names every variable to fix.
"""
from __future__ import annotations

import hashlib
import hmac
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ..errors import ConfigError
from .records import Record, StrEnum
from .settings_spec import (  # noqa: F401
    BUCKET_RE,
    BY_ENV,
    DEPLOYMENT_RE,
    LEGACY_STATE_PREFIX,
    REGION_RE,
    SETTINGS,
    Destination,
    Setting,
)

MIN_TOKEN_LENGTH = 16

# CI's supported formats (spec 004: file formats + compressed formats), lower case, without dots.
SUPPORTED_EXTENSIONS = frozenset("""
exe dll scr sys msi swf jar appletjar js vbs html bat wsf ps1 htm mht hta chm lnk doc docx dotx docm
dotm xls xlsx xlsm xlsb xltm xltx xlam ppt pptx potx ppsx pptm potm ppsm xml rtf pdf elf mac vbe 3dmax
iso cpio rpm xz deb zip 7z rar cab gz tgz tar dmg apk
""".split())


def _seal_key(token: str) -> bytes:
    """The seal key of one COSGUARD_CALLBACK_TOKEN (the derivation every earlier release used)."""
    return hmac.new(token.encode("utf-8"), b"cosguard-seal-key-v1", hashlib.sha256).digest()


class Action(StrEnum):
    """What to do with an infected, unscannable or failed object: the values of the
    COSGUARD_*_ACTION settings (domain/dispositions.py and setaside.py carry them out)."""

    MOVE = "move"
    DELETE = "delete"
    TAG = "tag"
    QUARANTINE = "quarantine"


class Settings(Record, frozen=True, hidden=("secret_key", "session_token", "callback_token",
                                            "callback_token_previous")):
    """Everything the functions, the sweep and the CLI need. Each field but `max_size` is one
    variable declared in settings_spec.SETTINGS (parser, default, doc line)."""

    secret_id: str
    secret_key: str
    session_token: Optional[str]
    region: str
    buckets: Tuple[str, ...]
    callback_url: Optional[str]
    callback_token: str
    callback_token_previous: Tuple[str, ...]   # still verify during a rotation (docs/rotation.md)
    cos_endpoint: Optional[str]
    ci_endpoint: Optional[str]
    quarantine_bucket: Optional[str]
    quarantine_prefix: str
    state_bucket: Optional[str]
    state_prefix: str
    deployment: Optional[str]           # e.g. cosguard-prod: names the owner of the state location
    retain_actions_days: int            # docs/retention.md: what each retention costs
    retain_closed_days: int
    retain_claims_days: int
    include_prefixes: Tuple[str, ...]
    exclude_prefixes: Tuple[str, ...]
    include_suffixes: Tuple[str, ...]
    exclude_suffixes: Tuple[str, ...]
    skip_empty: bool
    require_supported_format: bool
    infected_action: Action
    tag_limit_action: str               # infected, to be tagged, no room for the tag: move | delete | replace
    tag_limit_clean_action: str         # clean, no room for the tag: keep (ledger only) | replace
    unscannable_action: Action
    failed_action: Action
    submit_failed_action: Action        # a submission CI refuses for good (or that binds to no job)
    clean_destination: Optional[Destination]
    appendable_action: str              # infected appendable objects: stream to quarantine, or delete
    max_workers: int                    # threads mostly wait on round trips: sized for I/O, not CPUs
    max_attempts: int
    request_timeout: float
    notify_url: Optional[str]
    notify_format: str
    pending_overdue_seconds: int
    sweep_page_size: int                # ledger entries the sweep lists, then settles, at a time
    sweep_margin_seconds: float         # the sweep stops dispatching this long (or 10 %) before its deadline
    rescan_after_days: Optional[float]   # None: no scheduled rescans (docs/rescan.md)
    rescan_daily_budget: int
    rescan_quiet_hours: Optional[Tuple[int, int]]   # (from, to) UTC hours, `to` excluded
    log_level: str
    max_size: int = 1024 ** 3           # CI's limit, not a setting

    # -- derived ---------------------------------------------------------------------------
    def quarantine_bucket_for(self, source_bucket: str) -> str:
        return self.quarantine_bucket or source_bucket

    def state_bucket_for(self, source_bucket: str) -> str:
        """The bucket holding the ledger: explicit, else the quarantine bucket, else the source."""
        return self.state_bucket or self.quarantine_bucket or source_bucket

    def serves(self, bucket: str) -> bool:
        return bucket in self.buckets

    @property
    def seal_key(self) -> bytes:
        """The key that seals ledger documents, manifests, release markers and callback tokens:
        derived from COSGUARD_CALLBACK_TOKEN, so the token itself never keys anything directly."""
        return _seal_key(self.callback_token)

    @property
    def previous_seal_keys(self) -> Tuple[bytes, ...]:
        """The keys of COSGUARD_CALLBACK_TOKEN_PREVIOUS: they verify seals and callback URLs issued
        before a rotation, and seal nothing."""
        return tuple(_seal_key(token) for token in self.callback_token_previous)

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, require_callback_url: bool = True) -> "Settings":
        """Build Settings from `env`, or raise one ConfigError listing every bad variable."""
        return _EnvReader(env).settings(require_callback_url)


_ACTIONS = {"infected_action", "unscannable_action", "failed_action", "submit_failed_action"}


class _EnvReader:
    """Reads every declared variable, collecting every problem instead of stopping at the first.
    Secrets' problems never quote their value."""

    def __init__(self, env: Mapping[str, str]):
        self.env = env
        self.problems: List[str] = []

    def read(self, setting: Setting, required: Optional[bool] = None) -> Any:
        raw = self.env.get(setting.env)
        if raw is None or raw.strip() == "":
            if setting.required if required is None else required:
                self.problems.append(f"{setting.env} is required")
            return setting.default
        try:
            return setting.parse(raw)
        except ValueError as exc:
            self.problems.append(f"{setting.env} is not valid (the value is a secret: not shown)"
                                 if setting.secret else f"{setting.env}: {exc}")
            return setting.default

    def settings(self, require_callback_url: bool) -> Settings:
        values: Dict[str, Any] = {}
        for setting in SETTINGS:
            if setting.field:
                values[setting.field] = self.read(
                    setting, require_callback_url if setting.env == "COSGUARD_CALLBACK_URL" else None)
                if setting.field == "callback_token_previous":   # next to the token it must differ from
                    self._check_previous_tokens(values[setting.field], values["callback_token"])
        self._check(values)
        if self.problems:
            raise ConfigError(self.problems)
        for name in _ACTIONS:
            values[name] = Action(values[name])
        return Settings(**values)

    def _check(self, values: Dict[str, Any]) -> None:
        """What no single variable's parser can see: fallbacks, defaults and rules across variables."""
        if values["region"] is None:
            if self.env.get("TENCENTCLOUD_REGION", "").strip():
                values["region"] = self.read(BY_ENV["TENCENTCLOUD_REGION"])
            else:
                self.problems.append("COSGUARD_REGION (or TENCENTCLOUD_REGION) is required")
        values["region"] = values["region"] or ""
        buckets = values["buckets"]
        for bucket in buckets:
            if not BUCKET_RE.match(bucket):
                self.problems.append(f"COSGUARD_BUCKETS: {bucket!r} is not of the form <name>-<appid>")
        token = values["callback_token"]
        if token and len(token) < MIN_TOKEN_LENGTH:
            self.problems.append(f"COSGUARD_CALLBACK_TOKEN must be at least {MIN_TOKEN_LENGTH} characters")
        quarantine_bucket = values["quarantine_bucket"]
        if not values["quarantine_prefix"] and (quarantine_bucket is None or quarantine_bucket in buckets):
            self.problems.append("COSGUARD_QUARANTINE_PREFIX may be empty only with a separate "
                                 "COSGUARD_QUARANTINE_BUCKET")
        # Each deployment's ledger is its own: the default prefix names the deployment (two stages
        # sharing one prefix would read each other's documents as forged, forever).
        if values["state_prefix"] is None:
            deployment = values["deployment"]
            values["state_prefix"] = f"{LEGACY_STATE_PREFIX}{deployment}/" if deployment else LEGACY_STATE_PREFIX
        elif not values["state_prefix"]:
            self.problems.append("COSGUARD_STATE_PREFIX must not be empty")
        closed, actions = values["retain_closed_days"], values["retain_actions_days"]
        if closed and (not actions or closed < actions):   # a late duplicate callback finds the job closed
            self.problems.append("COSGUARD_RETAIN_CLOSED_DAYS must be 0 (forever) or at least "
                                 "COSGUARD_RETAIN_ACTIONS_DAYS")
        destination = values["clean_destination"]
        if destination is not None and destination.bucket is None and not destination.prefix:
            self.problems.append("COSGUARD_CLEAN_DESTINATION needs a bucket or a prefix")

    def _check_previous_tokens(self, tokens: Tuple[str, ...], current: str) -> None:
        """COSGUARD_CALLBACK_TOKEN_PREVIOUS: problems name the entry by position, never by value."""
        name = "COSGUARD_CALLBACK_TOKEN_PREVIOUS"
        for number, token in enumerate(tokens, start=1):
            if len(token) < MIN_TOKEN_LENGTH:
                self.problems.append(f"{name}: entry {number} is shorter than {MIN_TOKEN_LENGTH} characters "
                                     "(a previous COSGUARD_CALLBACK_TOKEN was never that short)")
            elif token == current:
                self.problems.append(f"{name}: entry {number} is the current COSGUARD_CALLBACK_TOKEN")
        if len(set(tokens)) < len(tokens):
            self.problems.append(f"{name}: lists one token twice")
