"""A time index of closed jobs, so `cosguard status` counts by LIST alone, never one GET per job.

Each close also writes an empty object whose key says everything a count needs (an upload found
unscannable before any job, too: its `<job id>` is `none-` and the start of its ledger digest):

    <state prefix>index/<YYYY-MM-DD>/<outcome>.<detail>.<HHMMSS>.<job id>.<facts>.<mac>

`detail` is `-`, `rescan` (a rescan's verdict, rescans.py; it may prefix the
others), `fallback` (the copy was refused, domain/fallback.py), `noroom_<action>` (no room
for the status tag, and what was done instead: domain/dispositions.py) or both, joined by `+`.
`facts` is `<intake bucket>~<upload wait>~<submission wait>`: the scanned object's bucket and the
seconds from its upload (Last-Modified) and from its job's submission to the close (`-` when
unknown), so `cosguard report` groups by bucket and draws latency by LIST too (issue 23). Entries
written before have no `facts` and read back with bucket "" and waits None (counted as unknown); a
release before this one reads a new entry's job id as `<job id>.<facts>`: its counts stay right,
and it finds no closed/ record for that entry's rows (a missing row, never a wrong count).

The MAC (seal.py's key) covers the bucket and the rest of the key: where uploaders can write the
state prefix, an entry they plant is reported as unauthenticated and never counted. A day's
entries are one LIST per 1,000; a report over `--since` days costs about (closes in the window /
1,000) + days requests, however long the deployment has run; the closed/ record is read only for
the few rows a report prints. Entries expire with closed/ (retention.py).
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
_FACTS = re.compile(r"^([a-z0-9-]{1,64}|-)~([0-9]{1,10}|-)~([0-9]{1,10}|-)$")
_DAY = 86400
NO_JOB = "none-"   # the `<job id>` of an entry without a CI job (an upload found unscannable first)


class Closed(NamedTuple):
    """One closed job as its index entry names it."""

    day: str        # YYYY-MM-DD (UTC)
    time: str       # HHMMSS (UTC)
    outcome: str
    detail: str
    job_id: str
    bucket: str = ""                     # the intake bucket; "" for entries written before facts
    upload_wait: Optional[int] = None    # seconds from the upload (Last-Modified) to the close
    submit_wait: Optional[int] = None    # seconds from the job's submission to the close

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
    def scanned(self) -> bool:
        """Whether CI scanned it (a job was submitted)."""
        return not self.job_id.startswith(NO_JOB)

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


class About(NamedTuple):
    """What an index entry says of the scanned upload besides its close (`facts`)."""

    bucket: str
    last_modified: float    # the upload's Last-Modified (epoch seconds), 0 when unknown
    submitted_at: float     # when its job was submitted, 0 when unknown

    @classmethod
    def of(cls, fields: Any) -> "About":
        """From a job entry or its fields (a closed/ document), whatever is missing unknown."""
        get = fields.get if isinstance(fields, Mapping) else (lambda name: getattr(fields, name, None))
        numbers = [get(name) for name in ("last_modified", "submitted_at")]
        return cls(str(get("bucket") or ""), *[float(n) if isinstance(n, (int, float)) and not isinstance(n, bool)
                                                 else 0.0 for n in numbers])

    def facts(self, closed_at: float) -> str:
        def wait(start: float) -> str:
            return str(max(0, int(closed_at - start))) if start > 0 else "-"
        bucket = self.bucket if re.match(r"^[a-z0-9-]{1,64}$", self.bucket) else "-"
        return f"{bucket}~{wait(self.last_modified)}~{wait(self.submitted_at)}"


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

    def key_for(self, job_id: str, outcome: str, closed_at: float, manifest: Any = None,
                about: Optional[About] = None) -> str:
        """The entry's key; without `about`, as written before facts (no `<facts>` part)."""
        stamp = time.gmtime(closed_at)
        outcome = outcome if _WORD.match(outcome or "") else "unknown"
        name = (f"{self.prefix}index/{time.strftime('%Y-%m-%d', stamp)}/"
                f"{outcome}.{detail_of(manifest)}.{time.strftime('%H%M%S', stamp)}.{job_id}")
        if about is not None:
            name = f"{name}.{about.facts(closed_at)}"
        return f"{name}.{self._mac(name)}"

    def record(self, job_id: str, outcome: str, closed_at: float, manifest: Any = None,
               replaces: Optional[Tuple[str, float, Any]] = None, about: Optional[About] = None) -> None:
        """Index one close (a PUT of zero bytes; rewriting the same close writes the same key).
        `replaces`: the (outcome, closed_at, manifest) the job was closed with before, whose entry
        is removed (as this release and as one before facts would have named it), so a job is
        counted once, as it ended last."""
        key = self.key_for(job_id, outcome, closed_at, manifest, about)
        self.gateway.upload(self.bucket, key, b"")
        if replaces is not None:
            for earlier in {self.key_for(job_id, *replaces, about=about), self.key_for(job_id, *replaces)}:
                if earlier == key:
                    continue
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
        parts = leaf.split(".", 4)
        facts = _FACTS.match(parts[4]) if len(parts) == 5 else None
        if (len(parts) not in (4, 5) or not _WORD.match(parts[0]) or not _DETAIL.match(parts[1])
                or (len(parts) == 5 and facts is None) or self._key_of(key) is None):
            if report:
                self.sealer.reject(self.bucket, key, "history index entry")
            return None
        outcome, detail, hhmmss, job_id = parts[:4]
        if facts is None:   # written before facts: bucket and waits unknown
            return Closed(day, hhmmss, outcome, detail, job_id)
        bucket, upload_wait, submit_wait = (None if f == "-" else f for f in facts.groups())
        return Closed(day, hhmmss, outcome, detail, job_id, bucket or "",
                      int(upload_wait) if upload_wait else None, int(submit_wait) if submit_wait else None)

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
