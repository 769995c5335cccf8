"""A time index of closed jobs, so `cosguard status` counts by LIST alone, never one GET per job.

Each close also writes an empty object whose key says everything a count needs:

    <state prefix>index/<YYYY-MM-DD>/<outcome>.<detail>.<HHMMSS>.<job id>.<mac>

`detail` is `-`, `rescan` (a rescan's verdict, rescans.py; it may prefix the others), `fallback` (the copy was refused, domain/fallback.py), `noroom_<action>` (no room
for the status tag, and what was done instead: domain/dispositions.py) or both, joined by `+`. The MAC (seal.py's key) covers the
bucket and the rest of the key: where uploaders can write the state prefix, an entry they plant
is reported as unauthenticated and never counted. A day's entries are one LIST per 1,000; a
report over `--since` days costs about (closes in the window / 1,000) + days requests, however
long the deployment has run; the closed/ record is read only for the few rows a report prints.
Entries expire with closed/ (retention.py).
"""
from __future__ import annotations

import re
import time
from typing import Any, Iterator, Mapping, NamedTuple, Optional, Tuple

from ..errors import NotFoundError
from ..infra.gateway import Gateway
from .seal import Sealer

MAC_CHARS = 32
_WORD = re.compile(r"^[a-z_]{1,32}$")
_DETAIL = re.compile(r"^(-|(rescan\+)?(rescan|fallback|noroom_[a-z]{1,16}|fallback\+noroom_[a-z]{1,16}))$")
_DAY = 86400


class Closed(NamedTuple):
    """One closed job as its index entry names it."""

    day: str        # YYYY-MM-DD (UTC)
    time: str       # HHMMSS (UTC)
    outcome: str
    detail: str
    job_id: str

    @property
    def fallback(self) -> bool:
        return "fallback" in self.detail

    @property
    def rescan(self) -> bool:
        return self.detail.startswith("rescan")

    @property
    def no_room(self) -> bool:
        return "noroom" in self.detail

    @property
    def no_room_action(self) -> str:
        return self.detail.rpartition("noroom_")[2] if self.no_room else ""

    @property
    def when(self) -> str:
        return f"{self.day}T{self.time[:2]}:{self.time[2:4]}:{self.time[4:6]}Z"


def detail_of(manifest: Any) -> str:
    manifest = manifest if isinstance(manifest, Mapping) else {}
    marks = ["rescan"] if manifest.get("rescan_of") else []   # a rescan's verdict (rescans.py)
    marks += ["fallback"] if isinstance(manifest.get("fallback"), Mapping) else []
    limit = manifest.get("tag_limit")
    if isinstance(limit, Mapping):
        action = str(limit.get("action") or "")
        marks.append("noroom_" + (action if re.match(r"^[a-z]{1,16}$", action) else "other"))
    return "+".join(marks) or "-"


class History:
    """The index of one ledger (state bucket + prefix)."""

    def __init__(self, gateway: Gateway, bucket: str, prefix: str, sealer: Sealer):
        self.gateway, self.bucket, self.prefix, self.sealer = gateway, bucket, prefix, sealer

    def _mac(self, name: str) -> str:
        return self.sealer.short_mac("index", self.bucket, name, chars=MAC_CHARS)

    def _key_of(self, key: str) -> Optional[str]:
        """The id of the key that sealed the entry at `key`, or None when its MAC does not hold."""
        name, _, mac = key.rpartition(".")
        return self.sealer.verify_short(mac, "index", self.bucket, name, chars=MAC_CHARS)

    def reseal(self, key: str, dry_run: bool = False) -> str:
        """After a rotation: an entry sealed by a previous key is written again under the current
        one (and the old one deleted). Returns `current`, `resealed` or `forged`."""
        sealed_by = self._key_of(key)
        if sealed_by is None or self._parse(key, report=False) is None:
            self.sealer.reject(self.bucket, key, "history index entry")
            return "forged"
        if sealed_by == self.sealer.key_id:
            return "current"
        if not dry_run:
            name = key.rpartition(".")[0]
            self.gateway.upload(self.bucket, f"{name}.{self._mac(name)}", b"")
            self.gateway.delete(self.bucket, key)
        return "resealed"

    def key_for(self, job_id: str, outcome: str, closed_at: float, manifest: Any = None) -> str:
        stamp = time.gmtime(closed_at)
        outcome = outcome if _WORD.match(outcome or "") else "unknown"
        name = (f"{self.prefix}index/{time.strftime('%Y-%m-%d', stamp)}/"
                f"{outcome}.{detail_of(manifest)}.{time.strftime('%H%M%S', stamp)}.{job_id}")
        return f"{name}.{self._mac(name)}"

    def record(self, job_id: str, outcome: str, closed_at: float, manifest: Any = None,
               replaces: Optional[Tuple[str, float, Any]] = None) -> None:
        """Index one close (a PUT of zero bytes; rewriting the same close writes the same key).
        `replaces`: the (outcome, closed_at, manifest) the job was closed with before, whose entry
        is removed, so a job is counted once, as it ended last."""
        key = self.key_for(job_id, outcome, closed_at, manifest)
        self.gateway.upload(self.bucket, key, b"")
        if replaces is not None:
            earlier = self.key_for(job_id, *replaces)
            if earlier != key:
                try:
                    self.gateway.delete(self.bucket, earlier)
                except NotFoundError:
                    pass

    def is_own_entry(self, key: str) -> bool:
        """Whether `key` is an index entry this ledger wrote (its MAC holds)."""
        return self._parse(key, report=False) is not None

    def _parse(self, key: str, report: bool = True) -> Optional[Closed]:
        """The entry at `key`, or None (reported to the sealer) when its MAC does not hold."""
        name = key.rpartition(".")[0]
        rest = name[len(f"{self.prefix}index/"):]
        day, _, leaf = rest.partition("/")
        parts = leaf.split(".", 3)
        if (len(parts) != 4 or not _WORD.match(parts[0]) or not _DETAIL.match(parts[1])
                or self._key_of(key) is None):
            if report:
                self.sealer.reject(self.bucket, key, "history index entry")
            return None
        outcome, detail, hhmmss, job_id = parts
        return Closed(day, hhmmss, outcome, detail, job_id)

    def since(self, seconds: float, now: Optional[float] = None) -> Iterator[Closed]:
        """Every job closed in the last `seconds` (whole UTC days: the first day is read whole),
        newest day first: one LIST page per 1,000 entries per day, no GET."""
        now = time.time() if now is None else now
        first = now - seconds
        day = now
        while day >= first - _DAY:
            stamp = time.strftime("%Y-%m-%d", time.gmtime(day))
            if stamp < time.strftime("%Y-%m-%d", time.gmtime(first)):
                return
            for item in self.gateway.list(self.bucket, prefix=f"{self.prefix}index/{stamp}/"):
                entry = self._parse(str(item["Key"]))
                if entry is not None:
                    yield entry
            day -= _DAY
