"""Backfill: scan the objects a bucket held before cosguard watched it.

Every object goes through `Scanner.scan_object`, the path the upload trigger takes (skip and
unscannable rules, the exactly-once claim, submission, tags). What the listing alone can decide is
decided without a request: the skip rules that need only the key, empty objects, and objects that
already have a claim in the ledger (one listing of `claims/` and `jobs/` up front, compared with
`digest(bucket, key, version token)` of each listed object: the same upload identity the trigger
computes from HEAD, built here from the listing's ETag and LastModified or version id).

The listing itself (object versions in a versioned bucket) is `listing.py`'s; the run's options and
report are `run_report.py`'s.
"""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, Callable, Dict, Iterator, List, Optional, Set

from ..domain.ledger import digest
from ..domain.rules import skip_reason, unscannable_reason
from ..domain.status import Outcome
from ..errors import CloudError
from ..infra.cloud import ObjectInfo
from ..infra.retry import TokenBucket
from .checkpoint import CHECKPOINT_FORMAT, BackfillError, read_checkpoint, write_checkpoint
from .claimset import ClaimSet
from .inventory import Manifest, ReportError, Rows, listed_identity, read_manifest
from .inventory_fan_out import FILES_SENT, send_files
from .invoke import ObjectRef, batch_events, synthetic_record
from .listing import Entry, Page, pages
from .run_report import DEFAULT_PRICE_PER_1000, DEFAULT_WORKERS, Options, Report

SKIPPED, ALREADY, UNSCANNABLE, SCAN = "skipped", "already_scanned", "unscannable", "scan"


class Backfill:
    """One backfill run over `options.bucket`/`options.prefix`; `run()` returns the Report.

    `stop` (a threading.Event) ends the run after in-flight work; `on_page(report, marker)` is called
    after each fully processed page, once its checkpoint is written.
    """

    KIND = "backfill"        # what its checkpoint is for (a rescan's cannot resume a backfill)
    DRY_RUN_READS = False    # a dry run decides from the listing alone (rescan.py reads each record)

    def __init__(self, runtime, options: Options, *, stop: Optional[threading.Event] = None,
                 on_page: Optional[Callable[[Report, Dict[str, str]], None]] = None):
        self.settings, self.gateway, self.scanner = runtime.settings, runtime.gateway, runtime.scanner
        self.options = options
        self.stop = stop or threading.Event()
        self.on_page = on_page
        mode = "dry-run" if options.dry_run else "fan-out" if options.invoker else "scan"
        self.report = Report(options.bucket, options.prefix, mode, price_per_1000=options.price_per_1000)
        self.limiter = TokenBucket(options.rps) if options.rps else None
        self._lock = threading.Lock()
        self._claimed = ClaimSet()
        self._retrying: Set[str] = set()
        self._start: Dict[str, str] = {}
        self._totals: Dict[str, int] = {}
        self.manifest: Optional[Manifest] = None
        self.files_sent: List[str] = []   # --inventory --fan-out: the data files handed to invocations
        self.rows: Optional[Rows] = None
        self._validate()
        if options.inventory:   # a report that cannot be read is refused before anything runs
            self.manifest = read_manifest(self.gateway, options.inventory, options.bucket)
            self.rows = Rows(self.gateway, self.manifest, options.prefix, raw_keys=options.inventory_keys == "raw")
            self.report.inventory = self.manifest.location
            options.versioned = self.manifest.versioned
        self.gateway.size_pool(options.workers)

    def _validate(self) -> None:
        o = self.options
        if not self.settings.serves(o.bucket):
            raise BackfillError(f"{o.bucket} is not in COSGUARD_BUCKETS")
        if o.workers < 1 or o.page_size < 1 or o.batch_size < 1 or (o.rps is not None and o.rps <= 0):
            raise BackfillError("--workers, --page-size, --batch-size and --rps must be positive")
        if o.rows_per_invocation is not None and (o.rows_per_invocation < 1 or not (o.inventory and o.invoker)):
            raise BackfillError("--rows-per-invocation takes a positive number, with --inventory and --fan-out")
        if o.resume and not o.checkpoint:
            raise BackfillError("--resume needs --checkpoint FILE")
        if o.checkpoint and not o.resume and not o.dry_run and os.path.exists(o.checkpoint):
            raise BackfillError(f"checkpoint {o.checkpoint} exists: pass --resume to continue it, "
                                "or remove it to start over")
        if o.resume and o.checkpoint:  # (--resume without --checkpoint was refused above)
            doc = read_checkpoint(o.checkpoint)
            if doc.get("kind", "backfill") != self.KIND:
                raise BackfillError(f"checkpoint {o.checkpoint} is a {doc.get('kind', 'backfill')}'s, not a {self.KIND}'s")
            self._resumed(doc)
            if (doc.get("bucket"), doc.get("prefix")) != (o.bucket, o.prefix):
                raise BackfillError(f"checkpoint {o.checkpoint} is for {doc.get('bucket')}/{doc.get('prefix')}, "
                                    f"not {o.bucket}/{o.prefix}")
            if (doc.get("inventory") or None) != (o.inventory or None):
                raise BackfillError(f"checkpoint {o.checkpoint} is for the listing "
                                    f"{doc.get('inventory') or 'ListObjects'}, not {o.inventory or 'ListObjects'}")
            self._start = dict(doc.get("marker") or {})
            self._totals = dict(doc.get("totals") or {})
            self.files_sent = [str(k) for k in doc.get(FILES_SENT) or []]
            self.report.resumed_from = dict(self._start) or None
            self.report.complete = bool(doc.get("complete"))
            if o.versioned is None:
                o.versioned = bool(doc.get("versioned"))

    def _resumed(self, doc: Dict[str, Any]) -> None:
        """What a subclass restores from a checkpoint it resumes (rescan.py: the cut-off)."""

    def _checkpoint_fields(self) -> Dict[str, Any]:
        return {}

    # -- listing ---------------------------------------------------------------------------
    def _is_versioned(self) -> bool:
        if self.options.versioned is None:
            # Suspended still holds versions written while it was enabled: list versions there too.
            self.options.versioned = self.gateway.versioning_status(self.options.bucket) in ("enabled", "suspended")
        return bool(self.options.versioned)

    def pages(self) -> Iterator[Page]:
        """The listing from the checkpoint's marker (or the start), one page at a time: the bucket's,
        or the inventory report's (bulk/inventory.py, positions are file and record)."""
        o = self.options
        if self.rows is not None:
            return self.rows.pages(dict(self._start), o.page_size)
        return pages(self.gateway, o.bucket, o.prefix, o.page_size, dict(self._start), self._is_versioned())

    def load_claims(self) -> ClaimSet:
        """Digests of every handled or in-flight upload (failed submissions are asked separately:
        they may be retried): one listing each of `claims/` and `jobs/`, streamed into 8 bytes a
        claim (claimset.py), so memory stays small however long the ledger.

        Driven by an inventory, none: whoever scans (this process, or each fan-out invocation)
        reads the ledger's record of each listed write (Scanner.scan_object's `listed`), so no
        process holds the claim set, however large the bucket."""
        if self.options.inventory:
            return ClaimSet()
        state_bucket = self.settings.state_bucket_for(self.options.bucket)
        base = self.settings.state_prefix

        def names(kind: str) -> Iterator[str]:
            for item in self.gateway.list(state_bucket, prefix=f"{base}{kind}/"):
                key = str(item["Key"])
                if key.endswith(".json"):
                    yield key.rsplit("/", 1)[-1][:-len(".json")]
        # jobs/ before claims/: a job closing meanwhile moves from the one to the other (claims/ is
        # written before jobs/ is deleted), so listed in this order it is seen at least once.
        claimed = ClaimSet(names("jobs"))
        for name in names("claims"):
            claimed.add(name)
        self.report.ledger_claims = len(claimed.freeze())
        if state_bucket == self.options.bucket:
            # uploaders can PUT claims/ here: a name in a listing proves nothing, so every object
            # takes the scan path, where the sealed claim answers `duplicate` (and a forged one is ignored)
            return ClaimSet()
        self._retrying = set(names("retry"))   # few: failures waiting for a human or the sweep
        return claimed

    # -- deciding and scanning ------------------------------------------------------------------
    def triage(self, entry: Entry) -> str:
        """What the listing alone decides: skipped, already scanned, (dry run) unscannable, or scan."""
        bucket = self.options.bucket
        reason = skip_reason(self.settings, bucket, entry.key)
        if reason is None and entry.size == 0 and entry.key.endswith("/"):
            reason = "folder marker"
        if reason is None and entry.size == 0 and self.settings.skip_empty:
            reason = "empty object"
        if reason:
            with self._lock:
                self.report.skip_reasons[reason] = self.report.skip_reasons.get(reason, 0) + 1
            return SKIPPED
        name = digest(bucket, entry.key, entry.token)
        if name in self._claimed and name not in self._retrying:
            return ALREADY
        if self.options.dry_run and unscannable_reason(self.settings, ObjectInfo(
                bucket, entry.key, entry.size, entry.etag, entry.storage_class, entry.version_id, 0, {},
                last_modified=entry.last_modified)):
            return UNSCANNABLE
        return SCAN

    def _done(self, entries: List[Entry], outcome: str, scan_bytes: bool = False, reason: str = "") -> None:
        size = sum(e.size for e in entries)
        with self._lock:
            r = self.report
            r.counts[outcome] = r.counts.get(outcome, 0) + len(entries)
            r.processed += len(entries)
            r.processed_bytes += size
            r.scan_bytes += size if scan_bytes else 0
            if outcome == Outcome.ERROR.value:
                where = entries[0].key if len(entries) == 1 else f"{entries[0].key} .. {entries[-1].key}"
                r.errors.append({"key": where, "reason": reason})

    def _scan(self, entries: List[Entry]) -> None:
        entry = entries[0]
        try:
            if self.options.inventory:
                result = self.scanner.scan_object(self.options.bucket, [entry.key, *entry.alternates],
                                                  entry.version_id, size=entry.size, listed=listed_identity(entry))
            else:
                result = self.scanner.scan_object(self.options.bucket, [entry.key], entry.version_id)
            if result.also:   # an inventory key under two spellings, both existing: each was scanned
                chosen = next((r for r in [result, *result.also] if r.outcome is Outcome.ERROR), None) or \
                    next((r for r in [result, *result.also] if r.outcome is Outcome.SUBMITTED), result)
                result = chosen
            outcome, reason = result.outcome.value, result.reason
        except Exception as exc:  # a bug must not sink the run: count it, keep going
            outcome, reason = Outcome.ERROR.value, f"{type(exc).__name__}: {exc}"
        self._done(entries, outcome, scan_bytes=outcome == Outcome.SUBMITTED.value, reason=reason)

    def _invoke(self, entries: List[Entry], event: Dict[str, Any]) -> None:
        assert self.options.invoker is not None   # _work plans invocations only with an invoker
        try:
            self.options.invoker.invoke(event)
        except Exception as exc:  # InvokeError, or a bug: the batch is counted as failed, the run goes on
            self._done(entries, Outcome.ERROR.value, reason=f"invoke failed for {len(entries)} records: {exc}")
            return
        with self._lock:
            self.report.invocations += 1
        self._done(entries, "sent", scan_bytes=True)

    def _work(self, to_scan: List[Entry]) -> List[tuple]:
        """(function, entries, extra args) per unit of work: one object, or one fan-out batch."""
        if self.options.invoker is None:
            return [(self._scan, [entry]) for entry in to_scan]
        o, records = self.options, {}
        listed = bool(o.inventory)
        for entry in to_scan:
            # an inventory's ambiguous key goes under each spelling: the one that does not exist is `gone`
            for key in (entry.key, *entry.alternates):
                ref = ObjectRef(o.bucket, key, entry.size, entry.version_id, listed_identity(entry) if listed else None)
                record = synthetic_record(ref, self.settings.region, function=o.function, namespace=o.namespace)
                records[id(record)] = (entry, record)   # batch_events keeps the dicts: map them back
        return [(self._invoke, list({id(e): e for e in (records[id(r)][0] for r in event["Records"])}.values()),
                 dict(event, **self._event_fields()))
                for event in batch_events([r for _, r in records.values()], o.batch_size)]

    def _event_fields(self) -> Dict[str, Any]:
        """What a fanned-out event carries besides its records (rescan.py: its cut-off)."""
        return {}

    def _throttle(self, n: int) -> bool:
        """Wait for `n` tokens; False when asked to stop meanwhile."""
        if self.limiter is not None:
            pause = self.limiter.reserve(n)
            if pause > 0 and self.stop.wait(pause):
                return False
        return not self.stop.is_set()

    def _process(self, page: Page, pool: ThreadPoolExecutor, slots: threading.Semaphore) -> bool:
        """Everything on one page; True when all of it was handled (not interrupted)."""
        to_scan: List[Entry] = []
        for entry in page.entries:
            verdict = self.triage(entry)
            if verdict == SCAN:
                to_scan.append(entry)
            else:
                self._done([entry], verdict)
        if self.options.dry_run and not self.DRY_RUN_READS:
            self._done(to_scan, "to_scan", scan_bytes=True)
            return True
        futures: List[Future] = []
        complete = True
        for fn, entries, *extra in self._work(to_scan):
            if not self._throttle(len(entries)):   # --rps counts scans: a batch costs its records
                complete = False
                break
            slots.acquire()
            if self.stop.is_set():  # asked to stop while waiting for a free worker
                slots.release()
                complete = False
                break
            futures.append(pool.submit(fn, entries, *extra))
            futures[-1].add_done_callback(lambda _: slots.release())
        wait(futures)
        return complete


    def _save(self, marker: Dict[str, str], complete: bool) -> None:
        if not self.options.checkpoint or self.options.dry_run:
            return
        totals = dict(self._totals)
        for name, n in self.report.counts.items():
            totals[name] = totals.get(name, 0) + n
        write_checkpoint(self.options.checkpoint, {
            **self._checkpoint_fields(), "kind": self.KIND,
            "format": CHECKPOINT_FORMAT, "bucket": self.options.bucket, "prefix": self.options.prefix,
            "versioned": bool(self.options.versioned), "marker": marker, "complete": complete,
            "inventory": self.options.inventory, **({FILES_SENT: self.files_sent} if self.files_sent else {}),
            "totals": totals, "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})

    def run(self) -> Report:
        report = self.report
        if report.complete:  # resuming a finished checkpoint: nothing left to do
            report.finished = time.monotonic()
            return report
        marker = dict(self._start)
        try:
            self._claimed = self.load_claims()
            report.versioned = self._is_versioned()
            report.complete = self._pages(marker)
        except CloudError as exc:  # listing kept failing after retries: stop, keep the checkpoint
            report.failure = f"{exc.operation or 'listing'}: {exc}"
        except ReportError as exc:  # a report file unreadable or failing its checksum: same
            report.failure = str(exc)
        report.finished = time.monotonic()
        return report

    def _pages(self, marker: Dict[str, str]) -> bool:
        """Every page in turn, the checkpoint saved after each; True when the listing was exhausted."""
        if self.manifest is not None and self.options.invoker is not None and not self.options.dry_run:
            return send_files(self, marker, self.files_sent)   # one invocation per data file (inventory_fan_out.py)
        report, slots = self.report, threading.Semaphore(self.options.workers)
        with ThreadPoolExecutor(max_workers=self.options.workers, thread_name_prefix="cosguard-backfill") as pool:
            for page in self.pages():
                with self._lock:
                    report.listed += len(page.entries)
                    report.bytes_listed += sum(e.size for e in page.entries)
                    bad = self.rows.take_malformed() if self.rows is not None else []
                    if bad:   # rows off the schema: errors (the run ends `failed`), never guessed at
                        report.counts[Outcome.ERROR.value] = report.counts.get(Outcome.ERROR.value, 0) + len(bad)
                        report.errors.extend(bad)
                if self.stop.is_set() or not self._process(page, pool, slots):
                    report.interrupted = True
                    self._save(marker, complete=False)  # same marker: the partial page is redone
                    return False
                report.pages += 1
                marker = page.marker
                self._save(marker, complete=False)
                if self.on_page is not None:
                    self.on_page(report, marker)
        self._save(marker, complete=True)
        return True


__all__ = ["ALREADY", "DEFAULT_PRICE_PER_1000", "DEFAULT_WORKERS", "SCAN", "SKIPPED", "UNSCANNABLE", "Backfill",
           "BackfillError", "Options", "Report"]
