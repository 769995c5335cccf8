"""`cosguard reseal`: after a rotation, seal under the current key what is still sealed under a
previous one (docs/rotation.md), so COSGUARD_CALLBACK_TOKEN_PREVIOUS can be dropped.

What is rewritten: ledger documents that stay (claims/, closed/, removed/, retry/; in the current
format too, so reseal also finishes an upgrade), the manifests of quarantined copies, and the
release and promotion markers of the objects closed records name as released or promoted (an
in-place copy with the new marker, tags put back), and actions/ claims whose lease has passed.
Left alone: jobs/ and live actions/ claims, which their own flow rewrites or deletes, and which a
rewrite could resurrect after a close; they are counted, and the previous token stays until none
is left. A document that verifies under no key of the window
is counted as forged and never touched.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from ..domain.actions import MANIFEST_META, copy_record, decode_manifest, encode_manifest
from ..domain.formats import FORMAT_FIELD, UnknownFormat, is_current, upgrade
from ..domain.ledger import ACTION_LEASE_SECONDS, MAX_DOCUMENT_BYTES, Ledger
from ..domain.rescans import INDEX as RESCAN_INDEX
from ..domain.rescans import RescanIndex
from ..domain.seal import PROMOTED_META, SEAL_FIELD, Sealer
from ..domain.security import RELEASED_META
from ..errors import CloudError, NotFoundError
from ..infra.cloud import CloudGateway, ObjectInfo
from ..infra.config import Settings

LIVE_KINDS = ("jobs", "actions")   # rewritten or deleted by their own flow while live: not by reseal


def _live(ledger: Ledger, kind: str, fields: Dict[str, Any]) -> bool:
    """Whether another writer may still rewrite or delete the document: every open job; an action
    claim until its job is closed (nobody acts on it again) or its lease has passed by another
    lease (clocks differ)."""
    if kind == "jobs":
        return True
    lease_until = fields.get("lease_until")
    if isinstance(lease_until, (int, float)) and time.time() > lease_until + ACTION_LEASE_SECONDS:
        return False
    return not fields.get("job_id") or ledger.get_job(str(fields["job_id"])) is None


class ResealReport:
    """Counts per thing resealed, what was current already, what is left in flight, forgeries and
    one line per error."""

    def __init__(self, dry_run: bool, key_id: str):
        self.dry_run = dry_run
        self.key_id = key_id
        self.resealed: Dict[str, int] = {}
        self.current = 0
        self.in_flight: Dict[str, int] = {}
        self.forged = 0
        self.errors: List[str] = []
        self._lock = threading.Lock()

    def tally(self, what: str, name: str = "") -> None:
        """One more of `what` (`current`, `forged`, or, by `name`, `resealed` / `in_flight`); the
        ledger's documents are read by several threads."""
        with self._lock:
            if what in ("current", "forged"):
                setattr(self, what, getattr(self, what) + 1)
            else:
                table = getattr(self, what)
                table[name] = table.get(name, 0) + 1

    @property
    def problems(self) -> bool:
        return bool(self.errors or self.forged)

    def as_dict(self) -> Dict[str, Any]:
        return {"dry_run": self.dry_run, "key_id": self.key_id, "resealed": dict(sorted(self.resealed.items())),
                "current": self.current, "left_in_flight": dict(sorted(self.in_flight.items())),
                "forged": self.forged, "errors": self.errors}


def _error(where: str, exc: Exception) -> str:
    code = getattr(exc, "code", "") or type(exc).__name__
    return f"{where}: {code}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")


class Resealer:
    def __init__(self, settings: Settings, gateway: CloudGateway, sealer: Sealer, ledgers: Iterable[Ledger],
                 dry_run: bool = False):
        self.settings = settings
        self.gateway = gateway
        self.sealer = sealer
        self.ledgers = list(ledgers)
        self.report = ResealReport(dry_run, sealer.key_id)
        self._marked: List[Tuple[str, Dict[str, Any]]] = []  # closed records naming released/promoted objects

    def run(self) -> ResealReport:
        for ledger in self.ledgers:
            try:
                keys = [str(item["Key"]) for item in self.gateway.list(ledger.bucket, prefix=ledger.prefix)]
            except CloudError as exc:
                self.report.errors.append(_error(f"{ledger.bucket}/{ledger.prefix}", exc))
                continue
            with ThreadPoolExecutor(max_workers=self.settings.max_workers) as pool:
                list(pool.map(lambda key: self._document(ledger, key), keys))
        for location in self._quarantined():
            self._guarded(location, self._manifest)
        for outcome, record in self._marked:
            self._guarded(record, self._marker if outcome == "released" else self._promoted)
        return self.report

    def _guarded(self, what: Any, step: Callable[[Any], None]) -> None:
        try:
            step(what)
        except NotFoundError:
            pass
        except CloudError as exc:
            where = what if isinstance(what, tuple) else (what.get("bucket"), what.get("key"))
            self.report.errors.append(_error(f"{where[0]}/{where[1]}", exc))

    # -- the ledger ---------------------------------------------------------------------------
    def _document(self, ledger: Ledger, key: str) -> None:
        kind = key[len(ledger.prefix):].partition("/")[0]
        where = f"{ledger.bucket}/{key}"
        if kind in ("index", RESCAN_INDEX):   # empty objects sealed by their name (history.py, rescans.py)
            index = ledger.history if kind == "index" else RescanIndex(ledger)
            try:
                self.report.tally(index.reseal(key, dry_run=self.report.dry_run), kind)
            except NotFoundError:
                pass
            except CloudError as exc:
                self.report.errors.append(_error(where, exc))
            return
        try:
            raw = self.gateway.get_json(ledger.bucket, key, max_bytes=MAX_DOCUMENT_BYTES)
        except NotFoundError:
            return
        except CloudError as exc:
            if getattr(exc, "code", "") == "NotJSON":
                self.sealer.reject(ledger.bucket, key, "ledger document")
                self.report.tally("forged")
            else:
                self.report.errors.append(_error(where, exc))
            return
        body = self.sealer.open(ledger.bucket, key, raw)
        if body is None:
            self.report.tally("forged")
            return
        try:
            fields = upgrade(body)
        except UnknownFormat as exc:
            self.report.errors.append(f"{where}: {exc}")
            return
        if kind == "closed" and fields.get("outcome") in ("released", "promoted"):
            self._marked.append((str(fields["outcome"]), fields))
        if kind == "closed" and FORMAT_FIELD not in body:
            self._index(ledger, fields)
        if self.sealer.is_current(raw.get(SEAL_FIELD)) and is_current(body):
            self.report.tally("current")
        elif kind in LIVE_KINDS and _live(ledger, kind, fields):
            self.report.tally("in_flight", kind)
        else:
            if not self.report.dry_run:
                try:   # read again just before: what its own flow rewrote or deleted since is left as is
                    if self.gateway.get_json(ledger.bucket, key, max_bytes=MAX_DOCUMENT_BYTES) != raw:
                        return
                    ledger._write(key, fields)  # noqa: SLF001 - the ledger's one sealed write path
                except NotFoundError:
                    return
                except CloudError as exc:
                    self.report.errors.append(_error(where, exc))
                    return
            self.report.tally("resealed", kind)

    def _index(self, ledger: Ledger, fields: Dict[str, Any]) -> None:
        """A job closed by a release before the history index (format 1) gets its entry, so
        `status` counts it; the same close always names the same entry."""
        try:
            job_id, outcome, closed_at = str(fields["job_id"]), str(fields["outcome"]), float(fields["closed_at"])
        except (KeyError, TypeError, ValueError):
            return
        if not self.report.dry_run:
            ledger.history.record(job_id, outcome, closed_at, fields.get("manifest"))
        self.report.tally("resealed", "index")

    # -- quarantined copies ---------------------------------------------------------------------
    def _quarantined(self) -> List[Tuple[str, str]]:
        """(bucket, key) of everything under the quarantine prefix of every served bucket."""
        found: List[Tuple[str, str]] = []
        for place in sorted({(self.settings.quarantine_bucket_for(b), self.settings.quarantine_prefix)
                             for b in self.settings.buckets}):
            try:
                found += [(place[0], str(item["Key"])) for item in self.gateway.list(place[0], prefix=place[1])]
            except CloudError as exc:
                self.report.errors.append(_error(f"{place[0]}/{place[1]}", exc))
        return found

    def _manifest(self, location: Tuple[str, str]) -> None:
        info = self.gateway.head(*location)
        if MANIFEST_META not in info.metadata:
            return
        raw = decode_manifest(info.metadata)
        manifest = self.sealer.open_manifest(info.bucket, info.key, raw)
        if manifest is None or raw is None:
            self.report.tally("forged")
            return
        if self.sealer.is_current(raw.get(SEAL_FIELD)):
            self.report.tally("current")
            return
        if not self.report.dry_run:
            metadata = dict(info.metadata, **{MANIFEST_META: encode_manifest(
                manifest, lambda d: self.sealer.seal_manifest(info.bucket, info.key, d))})
            copy = self._rewrite(info, metadata)
            self._follow_copy(manifest, info, copy)
        self.report.tally("resealed", "manifests")

    def _follow_copy(self, manifest: Dict[str, Any], before: ObjectInfo, copy: ObjectInfo) -> None:
        """Where the in-place copy has another version id or ETag, the closed record that names the
        copy names the new one (restore reads the recorded version)."""
        job_id = manifest.get("job_id")
        if not job_id or (copy.version_id == before.version_id and copy.etag.strip('"') == before.etag.strip('"')):
            return
        for ledger in self.ledgers:
            entry = ledger.get_job(str(job_id))
            recorded = entry.manifest.get("quarantined") if entry is not None else None
            if entry is not None and isinstance(recorded, dict) and recorded.get("key") == before.key \
                    and recorded.get("bucket") == before.bucket:
                entry.manifest = dict(entry.manifest, quarantined=copy_record(copy))
                ledger._write(ledger._key("closed", str(job_id)), entry.fields_dict())  # noqa: SLF001
                return

    # -- markers on released and promoted objects -------------------------------------------------
    def _marker(self, record: Dict[str, Any]) -> None:
        info = self.gateway.head(str(record["bucket"]), str(record["key"]))
        self._remark(info, RELEASED_META, "released", [info.bucket, info.key, info.etag.strip('"')],
                     lambda etag: self.sealer.release_marker(info.bucket, info.key, etag), "released markers")

    def _promoted(self, record: Dict[str, Any]) -> None:
        manifest = record.get("manifest")
        manifest = manifest if isinstance(manifest, dict) else {}
        bucket, _, key = str(manifest.get("promoted_to") or "").partition("/")
        if not key:
            return
        info = self.gateway.head(bucket, key)
        crc = ["crc64:" + info.crc64] if info.crc64 else []
        self._remark(info, PROMOTED_META, "promoted", [bucket, key, info.etag.strip('"'), *crc],
                     lambda etag: self.sealer.promotion_marker(bucket, key, etag, info.crc64), "promoted markers")

    def _remark(self, info: ObjectInfo, meta: str, kind: str, parts: List[str], marker: Callable[[str], str],
                name: str) -> None:
        """A marker that verifies under a previous key only is put again under the current one; a
        marker that verifies under none belongs to other bytes since (nothing to keep). Markers are
        bound to the ETag: where the in-place copy got another (a multipart copy, above 5 GB), the
        marker is put again for that one, as Actions._rebind_promotion does."""
        presented = info.metadata.get(meta)
        if not presented or self.sealer.verify(presented, kind, *parts) is None:
            return
        if self.sealer.is_current(presented):
            self.report.tally("current")
            return
        if not self.report.dry_run:
            tags = self._tags(info)
            copy = self._rewrite(info, dict(info.metadata, **{meta: marker(info.etag)}), tags)
            if copy.etag.strip('"') != info.etag.strip('"'):
                self._rewrite(copy, dict(info.metadata, **{meta: marker(copy.etag)}), tags)
        self.report.tally("resealed", name)

    def _tags(self, info: ObjectInfo) -> Dict[str, str]:
        return self.gateway.get_tags(info.bucket, info.key, info.version_id) if info.tag_count else {}

    def _rewrite(self, info: ObjectInfo, metadata: Dict[str, str], tags: Optional[Dict[str, str]] = None) -> ObjectInfo:
        """An in-place copy of exactly `info` (CopySourceIfMatch) with `metadata`; its tags put back
        (whether COS's copy keeps them is not relied on)."""
        tags = self._tags(info) if tags is None else tags
        copy = self.gateway.copy(info, info.bucket, info.key, metadata=metadata)
        if tags:
            self.gateway.put_tags(copy.bucket, copy.key, tags, copy.version_id)
        return copy


def reseal(settings: Settings, gateway: CloudGateway, sealer: Sealer, ledgers: Iterable[Ledger],
           dry_run: bool = False) -> ResealReport:
    return Resealer(settings, gateway, sealer, ledgers, dry_run).run()


__all__ = ["ResealReport", "Resealer", "reseal"]

