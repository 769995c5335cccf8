"""Acting on a CI verdict: the one code path shared by the callback function and the sweep.

Only a job re-queried from CI is acted on, and only on the object version that was scanned.
"""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional

from ..errors import CloudError, NotFoundError, QuarantineError, StaleObjectError
from ..infra import metrics
from ..infra.cloud import APPENDABLE, ObjectInfo
from ..infra.config import Settings
from ..infra.gateway import Gateway
from ..infra.logs import event, get_logger
from ..infra.records import Record
from ..infra.retry import current_deadline
from .actions import Actions
from .dispositions import carry_out
from .jobs import VirusJob
from .ledger import ACTION_LEASE_SECONDS, ForgedDocument, JobEntry, Ledger, version_token
from .promotions import PromotionBusy
from .removals import describe as describe_removal
from .removals import record as record_loss
from .removals import removal_after, with_ack
from .rescans import record_promoted, rescan_dates
from .seal import Sealer, sealer_for
from .security import object_ref
from .setaside import set_aside
from .stale_promotion import withdraw_promotion
from .states import JobState
from .status import Outcome, ScanStatus
from .versions import distrust_exposed, pinned_scan_failed, superseded

if TYPE_CHECKING:
    from ..infra.notify import Notifier

log = get_logger("cosguard.domain.verdict")


class VerdictResult(Record, hidden=("job",)):
    """What happened to one job; `http_status` is how a callback answers it."""

    job_id: str
    outcome: Outcome
    http_status: int = 200
    detail: str = ""
    bucket: str = ""
    key: str = ""
    location: str = ""
    job: Optional[VirusJob] = None
    alert: bool = False  # an operator must look (e.g. an overwrite raced the verdict)
    rescan: Optional[Dict[str, str]] = None  # a rescan's verdict: the dates of the verdicts (rescans.py)

    def as_dict(self) -> Dict[str, Any]:
        answer = {"job_id": self.job_id, "outcome": self.outcome.value}
        if self.detail:
            answer["detail"] = self.detail
        if self.location:
            answer["location"] = self.location
        return answer


# Called with the callback ref (security.object_ref) of the upload a job belongs to, as soon as it is
# known and before anything is done or revealed; it raises to stop (triggers/callback.py authorises).
Admit = Callable[[Optional[str]], None]


class VerdictService:
    def __init__(self, settings: Settings, gateway: Gateway, notifier: Optional["Notifier"] = None,
                 clock=time.time, sealer: Optional[Sealer] = None):
        self.settings = settings
        self.gateway = gateway
        self.sealer = sealer or sealer_for(settings)
        self.actions = Actions(settings, gateway, self.sealer)
        self.notifier = notifier
        self.clock = clock
        self.pause: Callable[[float], None] = time.sleep   # waits for a job being recorded (open_jobs.py)
        # Set by the runtime to Scanner.scan_object's path: a version that becomes current again
        # when cosguard removes a newer one (versioned buckets) is scanned like a new upload.
        self.rescan: Optional[Callable[[ObjectInfo], Any]] = None
        self.recheck: Optional[Callable[[str, str, float], Any]] = None   # rescanning.recheck_clean_since

    def ledger(self, bucket: str) -> Ledger:
        return Ledger(self.gateway, self.settings.state_bucket_for(bucket), self.settings.state_prefix,
                      self.sealer, clock=self.clock)

    def apply(self, bucket: str, job_id: str, entry: Optional[JobEntry] = None,
              admit: Optional[Admit] = None) -> VerdictResult:
        """Re-query `job_id` on `bucket` and act on the answer; never raises for cloud failures.

        `entry` is the job's ledger entry when the caller has just read it (the sweep). `admit`
        (a callback's) is shown the upload the job belongs to before anything is done: what it
        raises stops the verdict and reaches the caller.
        """
        try:
            result = self._apply(bucket, job_id, entry, admit)
        except CloudError as exc:
            status = 503 if exc.retryable else 502
            result = VerdictResult(job_id, Outcome.ERROR, status, f"{exc.code or type(exc).__name__}: {exc}",
                                   bucket=bucket)
        level = logging.WARNING if (result.http_status >= 500 or result.outcome is Outcome.STALE
                                    or result.alert) else logging.INFO
        event(log, "verdict", level, outcome=result.outcome.value, bucket=result.bucket, key=result.key,
              job_id=job_id, http_status=result.http_status, reason=result.detail, location=result.location,
              virus_count=len(result.job.virus_names) if result.job else 0,
              viruses=result.job.virus_names if result.job else [])
        metrics.count(result.outcome.value)
        metrics.count("viruses_found", int(bool(result.job and result.job.infected)))
        notable = result.alert or result.outcome in (Outcome.QUARANTINED, Outcome.DELETED, Outcome.INFECTED) or (
            result.outcome is Outcome.ERROR and result.http_status not in (404, 409))
        if self.notifier and notable:   # one message per infection, error or alert (e.g. a refused copy)
            from ..infra.notify import kind_of, message  # loaded with the notifier
            kind = kind_of(result.outcome.value, bool(result.job and result.job.infected))
            self.notifier.send(message("found_on_rescan" if result.rescan and kind == "infected" else kind,
                                       result.bucket, result.key, job_id=result.job_id, outcome=result.outcome.value,
                                       viruses=result.job.virus_names if result.job else [],
                                       location=result.location, detail=result.detail, verdicts=result.rescan))
        return result

    def _apply(self, bucket: str, job_id: str, entry: Optional[JobEntry], admit: Optional[Admit]) -> VerdictResult:
        try:
            job = VirusJob.of(self.gateway.query_virus_job(bucket, job_id))
        except NotFoundError:
            return VerdictResult(job_id, Outcome.ERROR, 404, "CI knows no such job on this bucket", bucket)
        if not job.finished:
            return VerdictResult(job_id, Outcome.PENDING, 200, f"job is {job.state}", bucket, job.object_key, job=job)
        ledger = self.ledger(bucket)
        scanned = job.scanned_key(bucket)   # its Object, or the key its pre-signed Url names
        key = entry.key if entry is not None else scanned

        def result(outcome: Outcome, status: int = 200, detail: str = "", location: str = "") -> VerdictResult:
            return VerdictResult(job_id, outcome, status, detail, bucket, key, location, job)

        if not key:
            return result(Outcome.ERROR, 409, "CI's job names no object")
        # Binding from trusted facts only: the object's identity now (HEAD) must equal the identity
        # recorded when this job was submitted. No tag or metadata an uploader can set is evidence.
        try:
            info = self.gateway.head(bucket, key)
        except NotFoundError:
            info = None
        if entry is None:
            if info is None:
                return self._not_current(ledger, bucket, key, job, result, admit, None)
            try:
                entry = ledger.open_entry(bucket, key, version_token(info))
                entry = ledger.recorded_entry(bucket, key, version_token(info), job_id, entry, self.pause)
            except ForgedDocument as exc:
                return self._forged_entry(ledger, info, job_id, result, admit, exc)
            if entry is None or entry.job_id != job_id:
                if entry is not None and entry.state == JobState.SUBMITTING.value:
                    return result(Outcome.PENDING, 503, "the submitter is still recording this job")
                return self._not_current(ledger, bucket, key, job, result, admit, info)
        _shown(admit, entry.callback_ref)
        if entry.version_id and (info is None or version_token(info) != entry.identity):
            return superseded(self, ledger, entry, job, info, result)
        if info is None:
            ledger.close_job(entry, Outcome.GONE.value)
            return self._gone(ledger, entry, result)
        elif version_token(info) != entry.identity:
            self._close_stale(ledger, entry)
            return result(Outcome.STALE, detail="the object was overwritten after submission")
        if entry.pinned and job.failed:
            return pinned_scan_failed(self, ledger, entry, job, info, result)
        if entry.rescan_of and job.failed:   # a clean object is never set aside for a failed rescan
            ledger.close_job(entry, Outcome.ERROR.value, {"rescan_failed": f"{job.code}: {job.message}"})
            return result(Outcome.ERROR, 200, "the rescan failed: the clean verdict stands, the write stays due")
        # A pinned job's version was overwritten once: current again only because the newer write was
        # removed (promoted, or deleted), it is tagged, never promoted over the newer write's copy.
        # a rescan's clean verdict leaves the object where it is
        return self._claim_and_act(ledger, entry, info, job, result, promotable=not (entry.pinned or entry.rescan_of))

    def _claim_and_act(self, ledger: Ledger, entry: JobEntry, info: ObjectInfo, job: VirusJob, result,
                       promotable: bool = True) -> VerdictResult:
        """One delivery at a time acts on the verdict (`promotable`: a clean one may promote `info`).

        The action claim is deleted when the delivery is done, whatever the outcome, so `actions/`
        holds only verdicts being acted on. What keeps a redelivery from acting twice is the job's
        own entry: re-read once the claim is held, it is closed (or rebound to another job) when an
        earlier delivery finished, and then nothing is done."""
        job_id = job.job_id
        lease = min(ACTION_LEASE_SECONDS, max(0.0, current_deadline().remaining()))
        action = ledger.claim_action(job_id, lease=lease)
        if action is None:
            return result(Outcome.PENDING, 503, "another delivery is acting on this verdict")
        try:
            answer = self._act_once(ledger, entry, info, job, promotable)
        except Exception:
            # A failure that can still run code releases the claim; a process that dies leaves it
            # `acting` until its lease (never past this invocation's deadline) runs out on COS's clock.
            self._release(ledger, job_id)
            raise
        self._release(ledger, job_id)   # done: the next delivery finds the job closed (or rebound)
        return answer

    def _act_once(self, ledger: Ledger, entry: JobEntry, info: ObjectInfo, job: VirusJob,
                  promotable: bool) -> VerdictResult:
        """With the action claim held: act, unless an earlier delivery already did."""
        try:
            current = ledger.open_entry(entry.bucket, entry.key, entry.identity)
            done = current is None or current.job_id != job.job_id
        except ForgedDocument:
            done = False  # overwritten meanwhile by someone else: act on what was read before
        if done:
            return VerdictResult(job.job_id, Outcome.ALREADY_DONE, 200, "handled by an earlier delivery",
                                 entry.bucket, entry.key, job=job)
        scanned = job.scanned_key(entry.bucket)   # its Object, or the key its pre-signed Url names
        if scanned and scanned != entry.key:
            return self._differs(ledger, entry, info, job, scanned)
        return self._act(ledger, entry, info, job, promotable)

    @staticmethod
    def _release(ledger: Ledger, job_id: str) -> None:
        try:
            ledger.release_action(job_id)
        except CloudError:
            pass   # its lease runs out; whoever claims it next finds the job closed

    def _act(self, ledger: Ledger, entry: JobEntry, info: ObjectInfo, job: VirusJob,
             promotable: bool = True) -> VerdictResult:
        def result(outcome: Outcome, status: int = 200, detail: str = "", location: str = "") -> VerdictResult:
            return VerdictResult(job.job_id, outcome, status, detail, entry.bucket, entry.key, location, job)

        try:
            outcome, location, manifest = carry_out(self.actions, info, job, promotable)
        except PromotionBusy as exc:   # the next delivery (CI's retry, or the sweep) promotes it
            return result(Outcome.PENDING, 503, str(exc))
        except StaleObjectError as exc:   # a promotion took its copy back already (withdrawn)
            withdrawn = getattr(exc, "withdrawn", None) or withdraw_promotion(self.gateway, self.sealer, exc)
            self._close_stale(ledger, entry)
            stale = result(Outcome.STALE, detail=str(exc) + (f"; {withdrawn}" if withdrawn else ""))
            stale.alert = True
            return stale
        except QuarantineError as exc:   # the next delivery acts again (_claim_and_act released it)
            return result(Outcome.ERROR, 503, str(exc))
        # A failed pinned scan is not a record of the version handled: if it becomes current again
        # (cosguard removed the newer write) its exposure rescans it by key.
        ledger.close_job(entry, outcome.value, manifest, handled=not (entry.pinned and job.failed))
        if info.last_modified:   # upload (COS's Last-Modified of the scanned write) → verdict acted on
            metrics.settled(self.clock() - info.last_modified)
        if outcome is Outcome.PROMOTED and location and \
                not record_promoted(self.ledger(location.partition("/")[0]), entry, location):
            event(log, "promoted_copy_not_recorded", logging.WARNING, bucket=entry.bucket, key=entry.key,
                  location=location, reason="no rescans of this copy: it could not be read as the promoted one")
        if entry.pinned and job.failed and not (manifest or {}).get("quarantined"):
            # ... and if that happened while this verdict was applied, it is rescanned now
            self._rescan_current(entry.bucket, entry.key, lambda current: version_token(current) == entry.identity)
        if info.version_id and outcome in (Outcome.QUARANTINED, Outcome.DELETED, Outcome.ERROR, Outcome.PROMOTED):
            self._exposed(info)
        detail = f"{job.code}: {job.message}" if job.failed else ", ".join(job.virus_names)
        fallback = manifest.get("fallback") if manifest else None
        if fallback:  # the copy was refused for good: an operator must look
            detail = f"{fallback['action']} instead: the copy was refused ({fallback['reason']})"
        limit = manifest.get("tag_limit") if manifest else None
        if limit:  # no room for the status tag (dispositions._no_room): an operator must know what was done instead
            detail = f"{limit['action']}: {limit['reason']}" + (f"; {detail}" if detail else "")
        not_promoted = manifest.get("not_promoted") if manifest else None
        if not_promoted:   # a newer write's copy is in the destination (promotions.py): an operator must know
            detail = not_promoted + (f"; {detail}" if detail else "")
        answer = result(outcome, detail=detail, location=location)
        answer.alert = bool(fallback or limit or not_promoted)
        if entry.rescan_of:   # "found on rescan": when it was found clean, and when it was found again
            answer.rescan, answer.detail = rescan_dates(entry, job.infected, detail, self.clock())
        return answer

    def _differs(self, ledger: Ledger, entry: JobEntry, info: ObjectInfo, job: VirusJob, scanned: str) -> VerdictResult:
        """CI names another object than the recorded upload (a key its XML parser changed): the
        upload was never scanned, and a retry would take the same path. It is handled as a
        submission CI refused for good (COSGUARD_SUBMIT_FAILED_ACTION: tagged `error` and reported
        by every sweep, or quarantined), and an operator is told."""
        reason = f"CI's object differs from the recorded one (CI names {scanned!r}): the upload was not scanned"
        aside = set_aside(self.actions, info, reason, self.settings.submit_failed_action, ScanStatus.ERROR)
        answer = VerdictResult(job.job_id, aside.outcome, 200, aside.detail, entry.bucket, entry.key, job=job)
        answer.alert = True
        if aside.outcome is Outcome.STALE:
            self._close_stale(ledger, entry)
            return answer
        if aside.retryable:   # the quarantine may work on the next delivery (or the sweep's)
            answer.http_status = 503
            return answer
        if not aside.moved:   # still readable at its key: every sweep reports it until a human looks
            ledger.record_retry(entry.bucket, entry.key, entry.identity, reason, retryable=False, held=True)
        else:
            answer.location = "{bucket}/{key}".format(**aside.manifest["quarantined"])
            if info.version_id:
                self._exposed(info)
        ledger.close_job(entry, aside.outcome.value, aside.manifest)
        return answer

    def _gone(self, ledger: Ledger, entry: JobEntry, result) -> VerdictResult:
        """The scanned write no longer exists. On an unversioned bucket cosguard's own DELETE of an
        earlier upload may have taken it (removals.py): then an operator is told, naming the key."""
        gone = result(Outcome.GONE, detail="the scanned object no longer exists")
        if not entry.version_id and entry.last_modified:
            claim = removal_after(ledger, entry.bucket, entry.key, entry.last_modified)
            if claim is not None and claim.get("job_id") != entry.job_id:
                detail = describe_removal(entry.bucket, entry.key, entry.last_modified, claim)
                found_id, _ = record_loss(ledger, entry.bucket, entry.key, entry.last_modified, claim, detail, "verdict")
                gone.detail, gone.alert = with_ack(detail, entry.bucket, found_id), True
        return gone

    def _not_current(self, ledger: Ledger, bucket: str, key: str, job: VirusJob, result,
                     admit: Optional[Admit], current: Optional[ObjectInfo]) -> VerdictResult:
        """The object's current upload (`current`; None: no current version) is not this job's:
        handled already, or overwritten (or deleted) since."""
        job_id = job.job_id
        closed = ledger.get_job(job_id)
        if closed is not None:
            _shown(admit, closed.callback_ref)
            return result(Outcome.ALREADY_DONE, detail=f"already {closed.outcome}")
        for entry in ledger.open_entries_of(bucket, key):
            if entry.job_id == job_id:
                _shown(admit, entry.callback_ref)
                if entry.version_id:   # that version may still be there, by its id
                    return superseded(self, ledger, entry, job, current, result)
                if current is None:
                    break
                self._close_stale(ledger, entry)
                return result(Outcome.STALE, detail="the object was overwritten after submission")
        if current is None:
            return result(Outcome.ALREADY_DONE, detail="the object no longer exists (moved or deleted)")
        return result(Outcome.ALREADY_DONE, detail="no open job for this object's current upload")

    def _forged_entry(self, ledger: Ledger, info: ObjectInfo, job_id: str, result,
                      admit: Optional[Admit], forged: ForgedDocument) -> VerdictResult:
        """An unsealed document sits where this upload's entry belongs (an uploader overwrote or
        planted it). Nothing in it is believed: the upload is scanned again (a retry entry, and a
        sealed `failed` claim in its place, which the sweep resubmits), and an operator is told.

        When COS refuses to serve the entry that cosguard itself wrote at submission (a policy
        denying that key, or one re-archived since), scanning again would end here again: the
        retry entry then asks for a human instead (the sweep reports it every time, resubmits
        nothing) and the object is tagged `error`, never left looking clean."""
        identity = version_token(info)
        _shown(admit, object_ref(info.bucket, info.key, identity))   # the upload whose entry belongs here
        unreadable = forged.code == "Unreadable"
        reason = (f"the entry for job {job_id} cannot be read ({forged}): a human must look" if unreadable
                  else f"the entry for job {job_id} was not sealed by cosguard: scanned again")
        ledger.record_retry(info.bucket, info.key, identity, reason, retryable=not unreadable, held=unreadable)
        ledger.release_claim(JobEntry.for_object(info, self.clock(), 0.0))
        if unreadable:
            self.actions.tag(info, ScanStatus.ERROR, job_id)
        answer = result(Outcome.PENDING, 200, reason)
        answer.alert = True
        return answer

    def _close_stale(self, ledger: Ledger, entry: JobEntry) -> None:
        """Close a job whose upload was not current when looked at. On a versioned bucket that upload
        can become current again meanwhile (a newer version removed by another delivery, whose
        rescan found this job still open): then it is scanned as an upload of its own now."""
        ledger.close_job(entry, Outcome.STALE.value, handled=False)
        if entry.version_id:
            self._rescan_current(entry.bucket, entry.key, lambda current: version_token(current) == entry.identity)
        else:   # an append may fire no event (SCF's trigger doc 583/9707 lists none): scan its write now
            self._rescan_current(entry.bucket, entry.key, lambda current: current.object_type == APPENDABLE)

    def _exposed(self, removed: ObjectInfo) -> None:
        """Removing a version makes the previous one current: it is scanned as an upload of its own,
        and an open job of it submitted by key (which may have read the removed write) is replaced
        by one pinned to it (versions.distrust_exposed)."""
        def wanted(current: ObjectInfo) -> bool:
            if current.version_id == removed.version_id:
                return False
            if not (current.last_modified and current.last_modified > removed.last_modified):
                # older (or written within the same second: the safe side): it was exposed, not just
                # left current by the removal of an older version
                distrust_exposed(self, self.ledger(current.bucket), current)
            return True
        self._rescan_current(removed.bucket, removed.key, wanted)

    def _rescan_current(self, bucket: str, key: str, wanted: Callable[[ObjectInfo], bool]) -> None:
        """Scan the key's current version as a new upload when `wanted` says it is one to scan."""
        if self.rescan is None:
            return
        try:
            current = self.gateway.head(bucket, key)
        except NotFoundError:
            return
        except CloudError as exc:
            event(log, "current_version_not_checked", logging.WARNING, bucket=bucket, key=key, reason=str(exc))
            return
        if wanted(current):
            self.rescan(current)


__all__ = ["VerdictService", "VerdictResult"]


def _shown(admit: Optional[Admit], upload_ref: Optional[str]) -> None:
    """The caller's say on the upload the job belongs to (a callback's authorisation)."""
    if admit is not None:
        admit(upload_ref)
