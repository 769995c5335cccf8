"""One frozen Settings, built once at cold start from the environment.

Every problem is collected and reported together in one ConfigError, so a bad deploy fails on its
first invocation with a message that names every variable to fix.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple
from urllib.parse import urlsplit

from ..errors import ConfigError
from ..domain.status import Action
from .records import Record

BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,48}-\d{6,12}$")
REGION_RE = re.compile(r"^[a-z]{2,}(-[a-z0-9]+)+$")
MIN_TOKEN_LENGTH = 16
DEPLOYMENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
LEGACY_STATE_PREFIX = ".cosguard/"   # the default before each deployment derived its own

# CI's supported formats (spec 004: file formats + compressed formats), lower case, without dots.
SUPPORTED_EXTENSIONS = frozenset("""
exe dll scr sys msi swf jar appletjar js vbs html bat wsf ps1 htm mht hta chm lnk doc docx dotx docm
dotm xls xlsx xlsm xlsb xltm xltx xlam ppt pptx potx ppsx pptm potm ppsm xml rtf pdf elf mac vbe 3dmax
iso cpio rpm xz deb zip 7z rar cab gz tgz tar dmg apk
""".split())


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true/false, got {raw!r}")


def _list(raw: str) -> Tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _prefix(raw: str) -> str:
    value = raw.strip().lstrip("/")
    if value and not value.endswith("/"):
        value += "/"
    return value


def _endpoint(raw: str) -> str:
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected http(s)://host[:port], got {raw!r}")
    return raw.strip().rstrip("/")


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError(f"must be a positive integer, got {raw!r}")
    return value


def _days(raw: str) -> int:
    """A retention in days: 0 keeps forever (no lifecycle rule)."""
    value = int(raw)
    if value < 0:
        raise ValueError(f"must be a number of days (0 keeps forever), got {raw!r}")
    return value


def _deployment(raw: str) -> str:
    value = raw.strip()
    if not DEPLOYMENT_RE.match(value):
        raise ValueError(f"expected letters, digits, '-' or '_' (at most 64), got {raw!r}")
    return value


def _page_size(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= 1000:   # COS lists at most 1,000 keys a request (doc 436/7734)
        raise ValueError(f"must be between 1 and 1000, got {raw!r}")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if value <= 0:
        raise ValueError(f"must be a positive number, got {raw!r}")
    return value


def _seal_key(token: str) -> bytes:
    """The seal key of one COSGUARD_CALLBACK_TOKEN (the derivation every earlier release used)."""
    return hmac.new(token.encode("utf-8"), b"cosguard-seal-key-v1", hashlib.sha256).digest()


class Destination(Record, frozen=True):
    """Where clean objects are promoted to: a bucket (None = the source bucket) and a key prefix."""

    bucket: Optional[str]
    prefix: str

    def for_source(self, source_bucket: str) -> str:
        return self.bucket or source_bucket


def _destination(raw: str) -> Destination:
    """`bucket-appid`, `bucket-appid/prefix/` or `/prefix/` (same bucket)."""
    value = raw.strip()
    if value.startswith("/"):
        prefix = _prefix(value)
        if not prefix:
            raise ValueError("a same-bucket destination needs a prefix, e.g. /clean/")
        return Destination(None, prefix)
    bucket, _, rest = value.partition("/")
    if not BUCKET_RE.match(bucket):
        raise ValueError(f"{bucket!r} is not a bucket name of the form <name>-<appid>")
    return Destination(bucket, _prefix(rest))


class Settings(Record, frozen=True, hidden=("secret_key", "session_token", "callback_token",
                                            "callback_token_previous")):
    """Everything both functions, the sweep and the CLI need; see the table in docs/configuration.md."""

    secret_id: str
    secret_key: str
    session_token: Optional[str]
    region: str
    buckets: Tuple[str, ...]
    callback_url: Optional[str]
    callback_token: str
    cos_endpoint: Optional[str] = None
    ci_endpoint: Optional[str] = None
    quarantine_bucket: Optional[str] = None
    quarantine_prefix: str = "quarantine/"
    state_bucket: Optional[str] = None
    state_prefix: str = ".cosguard/"
    include_prefixes: Tuple[str, ...] = ()
    exclude_prefixes: Tuple[str, ...] = ()
    include_suffixes: Tuple[str, ...] = ()
    exclude_suffixes: Tuple[str, ...] = ()
    skip_empty: bool = True
    require_supported_format: bool = False
    max_size: int = 1024 ** 3
    infected_action: Action = Action.MOVE
    unscannable_action: Action = Action.TAG
    failed_action: Action = Action.TAG
    submit_failed_action: Action = Action.TAG   # a submission CI refuses for good (or that binds to no job)
    clean_destination: Optional[Destination] = None
    appendable_action: str = "stream"   # infected appendable objects: stream to quarantine, or delete
    tag_limit_action: str = "move"      # infected, to be tagged, no room for the tag: move | delete | replace
    tag_limit_clean_action: str = "keep"  # clean, no room for the tag: keep (ledger only) | replace
    max_workers: int = 32   # threads mostly wait on round trips: sized for I/O, not CPUs
    max_attempts: int = 5
    request_timeout: float = 10.0
    notify_url: Optional[str] = None
    notify_format: str = "json"
    pending_overdue_seconds: int = 3600
    sweep_page_size: int = 1000        # ledger entries the sweep lists, then settles, at a time
    sweep_margin_seconds: float = 5.0  # the sweep stops dispatching this long (or 10 %) before its deadline
    log_level: str = "INFO"
    callback_token_previous: Tuple[str, ...] = ()   # still verify during a rotation (docs/rotation.md)
    deployment: Optional[str] = None    # e.g. cosguard-prod: names the owner of the state location
    retain_actions_days: int = 1        # docs/retention.md: what each retention costs
    retain_closed_days: int = 180
    retain_claims_days: int = 365

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


class _EnvReader:
    """Reads variables one by one, collecting every problem instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str]):
        self.env = env
        self.problems: List[str] = []

    def get(self, name: str, parse: Callable[[str], Any] = str, default: Any = None,
            required: bool = False) -> Any:  # what `parse` returns: Settings' fields say which
        raw = self.env.get(name)
        if raw is None or raw.strip() == "":
            if required:
                self.problems.append(f"{name} is required")
            return default
        try:
            return parse(raw)
        except ValueError as exc:
            self.problems.append(f"{name}: {exc}")
            return default

    def settings(self, require_callback_url: bool) -> Settings:
        g = self.get
        region = g("COSGUARD_REGION") or g("TENCENTCLOUD_REGION")
        if region is None:
            self.problems.append("COSGUARD_REGION (or TENCENTCLOUD_REGION) is required")
        elif not REGION_RE.match(str(region)):
            self.problems.append(f"COSGUARD_REGION: {region!r} is not a region like ap-guangzhou")
        buckets = g("COSGUARD_BUCKETS", _list, (), required=True)
        for bucket in buckets:
            if not BUCKET_RE.match(bucket):
                self.problems.append(f"COSGUARD_BUCKETS: {bucket!r} is not of the form <name>-<appid>")
        callback_url = g("COSGUARD_CALLBACK_URL", _endpoint, required=require_callback_url)
        token = g("COSGUARD_CALLBACK_TOKEN", str, "", required=True)
        if token and len(str(token)) < MIN_TOKEN_LENGTH:
            self.problems.append(f"COSGUARD_CALLBACK_TOKEN must be at least {MIN_TOKEN_LENGTH} characters")
        previous = self._previous_tokens(str(token or ""))
        quarantine_bucket = g("COSGUARD_QUARANTINE_BUCKET")
        state_bucket = g("COSGUARD_STATE_BUCKET")
        for name, bucket in (("COSGUARD_QUARANTINE_BUCKET", quarantine_bucket),
                             ("COSGUARD_STATE_BUCKET", state_bucket)):
            if bucket is not None and not BUCKET_RE.match(str(bucket)):
                self.problems.append(f"{name}: {bucket!r} is not of the form <name>-<appid>")
        quarantine_prefix = g("COSGUARD_QUARANTINE_PREFIX", _prefix, "quarantine/")
        if not quarantine_prefix and (quarantine_bucket is None or quarantine_bucket in buckets):
            self.problems.append("COSGUARD_QUARANTINE_PREFIX may be empty only with a separate "
                                 "COSGUARD_QUARANTINE_BUCKET")
        deployment = g("COSGUARD_DEPLOYMENT", _deployment)
        # Each deployment's ledger is its own: the default prefix names the deployment (two stages
        # sharing one prefix would read each other's documents as forged, forever).
        state_prefix = g("COSGUARD_STATE_PREFIX", _prefix,
                         f"{LEGACY_STATE_PREFIX}{deployment}/" if deployment else LEGACY_STATE_PREFIX)
        if not state_prefix:
            self.problems.append("COSGUARD_STATE_PREFIX must not be empty")
        settings: Dict[str, Any] = dict(
            secret_id=g("TENCENTCLOUD_SECRETID", str, "", required=True),
            secret_key=g("TENCENTCLOUD_SECRETKEY", str, "", required=True),
            session_token=g("TENCENTCLOUD_SESSIONTOKEN"),
            region=region or "",
            buckets=buckets,
            callback_url=callback_url,
            callback_token=token,
            cos_endpoint=g("COSGUARD_COS_ENDPOINT", _endpoint),
            ci_endpoint=g("COSGUARD_CI_ENDPOINT", _endpoint),
            quarantine_bucket=quarantine_bucket,
            quarantine_prefix=quarantine_prefix,
            state_bucket=state_bucket,
            state_prefix=state_prefix,
            include_prefixes=tuple(p.lstrip("/") for p in g("COSGUARD_INCLUDE_PREFIXES", _list, ())),
            exclude_prefixes=tuple(p.lstrip("/") for p in g("COSGUARD_EXCLUDE_PREFIXES", _list, ())),
            include_suffixes=tuple(s.lower() for s in g("COSGUARD_INCLUDE_SUFFIXES", _list, ())),
            exclude_suffixes=tuple(s.lower() for s in g("COSGUARD_EXCLUDE_SUFFIXES", _list, ())),
            skip_empty=g("COSGUARD_SKIP_EMPTY", _bool, True),
            require_supported_format=g("COSGUARD_REQUIRE_SUPPORTED_FORMAT", _bool, False),
            infected_action=self._action("COSGUARD_INFECTED_ACTION", Action.MOVE,
                                         (Action.MOVE, Action.DELETE, Action.TAG)),
            unscannable_action=self._action("COSGUARD_UNSCANNABLE_ACTION", Action.TAG,
                                            (Action.TAG, Action.QUARANTINE)),
            failed_action=self._action("COSGUARD_FAILED_ACTION", Action.TAG,
                                       (Action.TAG, Action.QUARANTINE)),
            submit_failed_action=self._action("COSGUARD_SUBMIT_FAILED_ACTION", Action.TAG,
                                              (Action.TAG, Action.QUARANTINE)),
            clean_destination=g("COSGUARD_CLEAN_DESTINATION", _destination),
            appendable_action=self._choice("COSGUARD_APPENDABLE_ACTION", "stream", ("stream", "delete")),
            tag_limit_action=self._choice("COSGUARD_TAG_LIMIT_ACTION", "move", ("move", "delete", "replace")),
            tag_limit_clean_action=self._choice("COSGUARD_TAG_LIMIT_CLEAN_ACTION", "keep", ("keep", "replace")),
            max_workers=g("COSGUARD_MAX_WORKERS", _positive_int, 32),
            max_attempts=g("COSGUARD_MAX_ATTEMPTS", _positive_int, 5),
            request_timeout=g("COSGUARD_REQUEST_TIMEOUT", _positive_float, 10.0),
            notify_url=g("COSGUARD_NOTIFY_URL", _endpoint),
            notify_format=self._choice("COSGUARD_NOTIFY_FORMAT", "json", ("json", "wecom", "dingtalk")),
            pending_overdue_seconds=g("COSGUARD_PENDING_OVERDUE_SECONDS", _positive_int, 3600),
            sweep_page_size=g("COSGUARD_SWEEP_PAGE_SIZE", _page_size, 1000),
            sweep_margin_seconds=g("COSGUARD_SWEEP_MARGIN_SECONDS", _positive_float, 5.0),
            log_level=self._choice("COSGUARD_LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
            callback_token_previous=previous,
            deployment=deployment,
            retain_actions_days=g("COSGUARD_RETAIN_ACTIONS_DAYS", _days, 1),
            retain_closed_days=g("COSGUARD_RETAIN_CLOSED_DAYS", _days, 180),
            retain_claims_days=g("COSGUARD_RETAIN_CLAIMS_DAYS", _days, 365),
        )
        closed, actions = settings["retain_closed_days"], settings["retain_actions_days"]
        if closed and (not actions or closed < actions):   # a late duplicate callback finds the job closed
            self.problems.append("COSGUARD_RETAIN_CLOSED_DAYS must be 0 (forever) or at least "
                                 "COSGUARD_RETAIN_ACTIONS_DAYS")
        destination = settings["clean_destination"]
        if destination is not None and destination.bucket is None and not destination.prefix:
            self.problems.append("COSGUARD_CLEAN_DESTINATION needs a bucket or a prefix")
        if self.problems:
            raise ConfigError(self.problems)
        return Settings(**settings)

    def _previous_tokens(self, current: str) -> Tuple[str, ...]:
        """COSGUARD_CALLBACK_TOKEN_PREVIOUS: a comma-separated list of earlier tokens. Problems name
        the entry by position, never by value (these are secrets)."""
        name = "COSGUARD_CALLBACK_TOKEN_PREVIOUS"
        tokens = _list(self.env.get(name, ""))
        for number, token in enumerate(tokens, start=1):
            if len(token) < MIN_TOKEN_LENGTH:
                self.problems.append(f"{name}: entry {number} is shorter than {MIN_TOKEN_LENGTH} characters "
                                     "(a previous COSGUARD_CALLBACK_TOKEN was never that short)")
            elif token == current:
                self.problems.append(f"{name}: entry {number} is the current COSGUARD_CALLBACK_TOKEN")
        if len(set(tokens)) < len(tokens):
            self.problems.append(f"{name}: lists one token twice")
        return tokens

    def _choice(self, name: str, default: str, allowed: Tuple[str, ...]) -> str:
        raw = self.env.get(name, "").strip()
        if not raw:
            return default
        value = raw.upper() if default.isupper() else raw.lower()
        if value not in allowed:
            self.problems.append(f"{name}: expected one of {', '.join(allowed)}, got {raw!r}")
            return default
        return value

    def _action(self, name: str, default: Action, allowed: Tuple[Action, ...]) -> Action:
        value = self._choice(name, default.value, tuple(a.value for a in allowed))
        return Action(value)
