"""Verdicts about a version that is no longer current (versioned intake buckets).

CI scans a key, not a version: a job's Input is an Object key or a Url (doc 436/50132), and its
answer names only the key. A job submitted for version v1 reads whatever the key holds when CI gets
to it, so once v1 is no longer current at verdict time nobody can tell whether CI read v1 or a newer
write, and the verdict is believed for v1 neither way (an `infected` one may be the newer bytes, a
`clean` one too). v1 is scanned again through CI's Url input with a pre-signed GET pinned to its
version id; that job's verdict is about v1 and is applied to v1 by version id (quarantine, delete or
tag that version), whatever is current then. The current version has its own event and job; it is
offered to the scanner here as well (its claim makes that a duplicate when it has one).

The same holds for a version that is current again because cosguard removed a newer one (promoted
or quarantined it by version id): its job submitted by key may have read the removed write, and
then nothing at verdict time shows it (distrust_exposed replaces that job at the removal).

Costs per overwritten version: one HEAD by version id, one more CI job (CI's Url input; the
pre-signed URL is computed locally), two ledger writes, and the current version's claim check.
"""
from __future__ import annotations

import logging
from typing import Any, Optional

from ..errors import CloudError, NotFoundError
from ..infra.cloud import ObjectInfo
from ..infra.gateway import Gateway
from ..infra.logs import event, get_logger
from ..infra.retry import current_deadline
from .jobs import VirusJob
from .ledger import ACTION_LEASE_SECONDS, ForgedDocument, JobEntry, Ledger, version_token
from .security import object_ref, upload_callback
from .states import JobState
from .status import Outcome, ScanStatus

log = get_logger("cosguard.domain.versions")



def submit_pinned(gateway: Gateway, settings, sealer, now: float, version: ObjectInfo, ref: str,
                  pinned: bool = True) -> str:
    """Submit a CI job reading exactly `version` (a pre-signed GET naming its version id; with
    `pinned` False, whatever its key holds), with the upload's own callback URL (bound to `ref`,
    as the submitter's)."""
    callback = upload_callback(settings.callback_url, sealer, version.bucket, ref, now)
    return gateway.submit_virus_job(version.bucket, version.key, callback, version.version_id, pinned=pinned)


def _ref_of(entry: JobEntry) -> str:
    """What the entry's callback URLs bind (recorded on the entry the first time it is needed)."""
    entry.callback_ref = entry.callback_ref or object_ref(entry.bucket, entry.key, entry.identity)
    return entry.callback_ref


def rescan_pinned(service, ledger: Ledger, entry: JobEntry, version: ObjectInfo, reason: str = "") -> JobEntry:
    """Replace the entry's job by one pinned to its version; returns the rebound entry. A cloud
    error propagates (a retryable one: the next delivery or sweep tries again, nothing changed)."""
    job_id = submit_pinned(service.gateway, service.settings, service.sealer, service.clock(), version,
                           _ref_of(entry))
    rebound = ledger.rebind_job(entry, job_id)
    event(log, "version_rescanned_pinned", logging.WARNING, bucket=entry.bucket, key=entry.key,
          version=entry.version_id, job_id=job_id, reason=reason or f"job {entry.job_id} may have read a newer write")
    return rebound


def rescan_by_key(service, ledger: Ledger, entry: JobEntry, current: ObjectInfo) -> JobEntry:
    """A pinned scan failed (a CI that cannot fetch the pre-signed URL: the local CI's default) but
    its version is current again: it is scanned by key, as any upload (if it is overwritten again
    before CI reads it, that job's verdict comes back here)."""
    job_id = submit_pinned(service.gateway, service.settings, service.sealer, service.clock(), current,
                           _ref_of(entry), pinned=False)
    return ledger.rebind_job(entry, job_id, pinned=False)


def submit_superseded(scanner, ledger: Ledger, entry: JobEntry, version: ObjectInfo) -> str:
    """Submit a claimed upload whose version is no longer current (the sweep: its submitter died or
    failed before a job was recorded) pinned to its version, as `Scanner._submit` would the key:
    tagged `pending` (that version), recorded, its retry entry cleared. Returns the job id; a cloud
    error propagates (the claim's lease, or its retry entry, brings the sweep back)."""
    ref = entry.callback_ref = object_ref(entry.bucket, entry.key, entry.identity)
    entry.job_id = submit_pinned(scanner.gateway, scanner.settings, scanner.sealer, scanner.clock(), version, ref)
    entry.pinned = True
    scanner.actions.tag(version, ScanStatus.PENDING, entry.job_id)
    entry.submitted_at = scanner.clock()
    ledger.open_job(entry)
    ledger.clear_retry(entry.bucket, entry.key, entry.identity)
    event(log, "version_submitted_pinned", logging.WARNING, bucket=entry.bucket, key=entry.key,
          version=entry.version_id, job_id=entry.job_id, reason="overwritten before it was submitted")
    return entry.job_id


def distrust_exposed(service, ledger: Ledger, current: ObjectInfo) -> None:
    """cosguard removed a newer version, making `current` current again. Its open job, when one was
    submitted by key, may have read the newer write (CI reads the key when it gets to the job, doc
    436/50132): once its version is current again its verdict would look like its own. That job is
    replaced by one pinned to the version (rescan_pinned), so its verdict finds its job rebound and
    is believed for nothing. Costs, per removal on a versioned bucket: one ledger read, and when
    such a job is open one more CI job and two ledger writes. A failure is logged and leaves the
    job as it was (as before this check)."""
    try:
        entry = ledger.open_entry(current.bucket, current.key, version_token(current))
    except ForgedDocument:
        return   # nothing in it is believed: its verdict takes the forged-entry path
    except CloudError as exc:
        event(log, "current_version_not_offered", logging.WARNING, bucket=current.bucket, key=current.key,
              reason=f"its open job could not be read: {exc}")
        return
    if entry is None or entry.pinned or not entry.job_id or not entry.version_id or \
            entry.state != JobState.SUBMITTED.value:
        return
    lease = min(ACTION_LEASE_SECONDS, max(0.0, current_deadline().remaining()))
    try:
        if ledger.claim_action(entry.job_id, lease=lease) is None:   # its verdict is being acted on now
            event(log, "current_version_not_offered", logging.WARNING, bucket=current.bucket,
                  key=current.key, reason=f"job {entry.job_id} was submitted by key and its verdict is "
                                          "being applied as this version was exposed")
            return
        try:
            reread = ledger.open_entry(entry.bucket, entry.key, entry.identity)
            if reread is not None and reread.job_id == entry.job_id:
                rescan_pinned(service, ledger, reread, current,
                              reason=f"job {entry.job_id} was submitted by key and a newer write was removed")
        finally:
            ledger.release_action(entry.job_id)
    except CloudError as exc:
        event(log, "current_version_not_offered", logging.WARNING, bucket=current.bucket, key=current.key,
              reason=f"job {entry.job_id} was submitted by key and could not be replaced by a pinned scan: {exc}")


def removed_by_another(service, ledger: Ledger, bucket: str, key: str, version_id: Optional[str],
                       written_at: float) -> None:
    """A version cosguard did not remove is gone: deleted by its id (an uploader can delete any version
    of their own key). While it existed, a job of this key submitted by key may have read it (CI reads
    the key when it gets to the job), and nothing at that job's verdict showed it: the current
    version's open job of that kind is replaced by a pinned scan (distrust_exposed), and every clean
    verdict of the key given since that write landed is rescanned (`service.recheck`, rescanning.py).
    Costs, per version deleted by someone else: one HEAD and one ledger read, plus what the recheck
    reads (a HEAD and a read, two in fail-closed mode); a scan per verdict found. Best effort: a
    failure is logged."""
    try:
        current: Optional[ObjectInfo] = service.gateway.head(bucket, key)
    except NotFoundError:
        current = None
    except CloudError as exc:
        event(log, "current_version_not_checked", logging.WARNING, bucket=bucket, key=key, reason=str(exc))
        current = None
    if current is not None and current.version_id != version_id and not current.last_modified > written_at:
        distrust_exposed(service, ledger, current)
    recheck = getattr(service, "recheck", None)
    if recheck is None or not written_at:
        return
    try:
        recheck(bucket, key, written_at)
    except CloudError as exc:
        event(log, "verdicts_not_rechecked", logging.WARNING, bucket=bucket, key=key, reason=str(exc))


def offer_current(service, current: Optional[ObjectInfo]) -> None:
    """The key's current version gets its own scan (normally from its own event: then a duplicate)."""
    if current is None or service.rescan is None:
        return
    try:
        service.rescan(current)
    except CloudError as exc:
        event(log, "current_version_not_offered", logging.WARNING, bucket=current.bucket, key=current.key,
              reason=str(exc))


# -- verdicts (VerdictService delegates here; `result` builds its VerdictResult) -------------------
def _claim_action(service, ledger: Ledger, entry: JobEntry, job_id: str, result) -> Any:
    """One delivery at a time acts on a verdict (ledger.claim_action), within this invocation: None
    when this one holds the claim and the job is still open; else the answer to give (another
    delivery is acting, or an earlier one finished: the claim is released again)."""
    lease = min(ACTION_LEASE_SECONDS, max(0.0, current_deadline().remaining()))
    if ledger.claim_action(job_id, lease=lease) is None:
        return result(Outcome.PENDING, 503, "another delivery is acting on this verdict")
    try:
        current = ledger.open_entry(entry.bucket, entry.key, entry.identity)
    except CloudError:
        current = entry   # unreadable now (forged, or COS failing): act on what was read before
    if current is None or current.job_id != job_id:
        ledger.release_action(job_id)
        return result(Outcome.ALREADY_DONE, detail="handled by an earlier delivery")
    return None


def superseded(service, ledger: Ledger, entry: JobEntry, job: VirusJob, current: Optional[ObjectInfo],
               result) -> Any:
    """The job's version is no longer current (see the module's docstring). Gone: closed. Read
    by a pinned job: the verdict is applied to that version by its id. Otherwise CI may have read
    newer bytes: that version is scanned again, pinned, and an operator is told."""
    try:
        version = service.gateway.head(entry.bucket, entry.key, entry.version_id)
    except NotFoundError:
        ledger.close_job(entry, Outcome.GONE.value)
        removed_by_another(service, ledger, entry.bucket, entry.key, entry.version_id, entry.last_modified)
        return result(Outcome.GONE, detail=f"version {entry.version_id} no longer exists")
    if entry.pinned and job.url:
        return service._claim_and_act(ledger, entry, version, job, result, promotable=False)
    busy = _claim_action(service, ledger, entry, job.job_id, result)
    if busy is not None:
        return busy
    try:
        rebound = rescan_pinned(service, ledger, entry, version)
    except CloudError as exc:
        ledger.release_action(job.job_id)
        if exc.retryable:
            raise
        return _unscanned(service, ledger, entry, version, job, exc, result)
    ledger.release_action(job.job_id)   # done: the job is rebound (a redelivery of this one finds so)
    offer_current(service, current)
    answer = result(Outcome.STALE, detail=(
        f"version {entry.version_id} was overwritten before its verdict was applied and CI may have read "
        f"the newer write: {'infected' if job.infected else 'clean' if job.clean else 'failed'} is not "
        f"believed for it; scanned again pinned to that version (job {rebound.job_id})"))
    answer.alert = True
    return answer


def pinned_scan_failed(service, ledger: Ledger, entry: JobEntry, job: VirusJob, info: ObjectInfo,
                       result) -> Any:
    """The pinned scan failed and its version is current again: scanned by key instead."""
    busy = _claim_action(service, ledger, entry, job.job_id, result)
    if busy is not None:
        return busy
    try:
        rebound = rescan_by_key(service, ledger, entry, info)
    except CloudError:
        ledger.release_action(job.job_id)
        raise
    ledger.release_action(job.job_id)   # done: the job is rebound (a redelivery of this one finds so)
    return result(Outcome.STALE, detail=f"the scan pinned to version {entry.version_id} failed ({job.code}) "
                                       f"and the version is current again: scanned by key (job {rebound.job_id})")


def _unscanned(service, ledger: Ledger, entry: JobEntry, version: ObjectInfo, job: VirusJob, exc: CloudError,
               result) -> Any:
    """CI refused the pinned scan for good: the version is tagged `error` and a human is told."""
    ledger.close_job(entry, Outcome.STALE.value, handled=False)
    detail = (f"version {entry.version_id} was overwritten before its verdict and cannot be scanned "
              f"pinned ({exc.code or exc}): left unscanned, tagged error; a human must look")
    try:
        service.actions.tag(version, ScanStatus.ERROR, job.job_id)
    except CloudError as tag_exc:
        detail += f" (tagging failed: {tag_exc})"
    answer = result(Outcome.STALE, detail=detail)
    answer.alert = True
    return answer


__all__ = ["distrust_exposed", "offer_current", "pinned_scan_failed", "removed_by_another", "rescan_by_key",
           "rescan_pinned", "submit_pinned", "submit_superseded", "superseded"]
