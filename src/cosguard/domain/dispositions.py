"""What a verdict does to its object: the configured action for an infected, clean or failed scan,
and what is done instead when COS refuses the copy (fallback.py) or the object's own tags leave no
room for cosguard's status (COS allows 10, doc 436/42997). Shared by the callback and the sweep
through VerdictService; returns what the ledger records.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Dict

from ..errors import CopyRefused
from ..infra.cloud import ObjectInfo
from ..infra.logs import event, get_logger
from .actions import Actions, build_manifest, dropped_metadata, quarantine_record
from .fallback import fall_back
from .jobs import VirusJob
from .promotions import SupersededWrite
from .rules import in_clean_destination
from .status import Action, Outcome, ScanStatus
from .tags import replaced

log = get_logger("cosguard.domain.dispositions")


def carry_out(actions: Actions, info: ObjectInfo, job: VirusJob, promotable: bool = True):
    """Carry out the configured action; returns (outcome, location, manifest).

    User tags are read only where they are kept on the object (tagging in place, promotion). A
    clean version a newer write superseded (not `promotable`) is tagged in place, never promoted."""
    settings = actions.settings

    def user_tags() -> Dict[str, str]:
        return actions.gateway.get_tags(info.bucket, info.key, info.version_id) if info.tag_count else {}
    if job.infected:
        manifest = build_manifest(info, job, "infected")
        if settings.infected_action is Action.MOVE and not actions.deletes_instead_of_moving(info):
            try:
                copy = actions.quarantine(info, manifest)
            except CopyRefused as refused:
                return _fall_back(actions, info, refused, ScanStatus.INFECTED, job, manifest, user_tags)
            return Outcome.QUARANTINED, f"{copy.bucket}/{copy.key}", quarantine_record(manifest, info, copy)
        if settings.infected_action is not Action.TAG:   # DELETE, or an appendable one (above)
            actions.delete(info)
            return Outcome.DELETED, "", manifest
        tags = user_tags()
        if actions.tag(info, ScanStatus.INFECTED, job.job_id, existing=tags):
            return Outcome.INFECTED, f"{info.bucket}/{info.key}", manifest
        return _no_room(actions, info, ScanStatus.INFECTED, job, manifest, tags)
    if job.clean:
        if promotable and settings.clean_destination is not None and \
                not in_clean_destination(settings, info.bucket, info.key):
            try:
                copy = actions.promote(info, job.job_id, user_tags())
            except CopyRefused as refused:
                return _fall_back(actions, info, refused, ScanStatus.CLEAN, job, {}, user_tags)
            except SupersededWrite as superseded:   # tagged in place, as a superseded version is
                outcome, location, record = _tag_clean(actions, info, job, user_tags())
                return outcome, location, dict(record, not_promoted=str(superseded))
            location, dropped = f"{copy.bucket}/{copy.key}", dropped_metadata(info, copy)
            return Outcome.PROMOTED, location, dict(promoted_to=location,
                                                    **({"metadata_dropped": dropped} if dropped else {}))
        return _tag_clean(actions, info, job, user_tags())
    reason = f"job {job.state}: {job.code or 'no code'} {job.message}".strip()
    manifest = build_manifest(info, job, reason)
    if settings.failed_action is Action.QUARANTINE:
        try:
            copy = actions.quarantine(info, manifest, status=ScanStatus.ERROR)
        except CopyRefused as refused:
            return _fall_back(actions, info, refused, ScanStatus.ERROR, job, manifest, user_tags)
        return Outcome.ERROR, f"{copy.bucket}/{copy.key}", quarantine_record(manifest, info, copy)
    tags = user_tags()
    if actions.tag(info, ScanStatus.ERROR, job.job_id, existing=tags):
        return Outcome.ERROR, f"{info.bucket}/{info.key}", manifest
    return _no_room(actions, info, ScanStatus.ERROR, job, manifest, tags)

def _tag_clean(actions: Actions, info: ObjectInfo, job: VirusJob, tags: Dict[str, str]):
    if actions.tag(info, ScanStatus.CLEAN, job.job_id, existing=tags):
        return Outcome.CLEAN, f"{info.bucket}/{info.key}", {}
    return _no_room(actions, info, ScanStatus.CLEAN, job, {}, tags)


def _no_room(actions: Actions, info: ObjectInfo, status: ScanStatus, job: VirusJob, manifest: Dict[str, Any],
             tags: Dict[str, str]):
    """The object's own tags (COS allows 10, doc 436/42997) left no room for `status`: the verdict
    must still be visible. Infected: COSGUARD_TAG_LIMIT_ACTION (move to quarantine, delete, or
    replace one uploader tag). Clean: COSGUARD_TAG_LIMIT_CLEAN_ACTION (keep the uploader's tags,
    the ledger records the verdict, or replace one); a clean or failed object is never moved or
    deleted for want of a tag slot. The ledger's `tag_limit` record says what was done."""
    reason = f"its {len(tags)} tags left no room for cosguard-status={status.value} (COS allows 10)"
    choice = actions.settings.tag_limit_action if status is ScanStatus.INFECTED else (
        actions.settings.tag_limit_clean_action if status is ScanStatus.CLEAN else "keep")
    if choice == "move" and not actions.deletes_instead_of_moving(info):
        try:
            copy = actions.quarantine(info, manifest)
        except CopyRefused as refused:
            outcome, location, record = _fall_back(actions, info, refused, status, job, manifest, lambda: tags)
            return outcome, location, dict(record, tag_limit={"action": "quarantine", "reason": reason})
        record = quarantine_record(manifest, info, copy)
        return Outcome.QUARANTINED, f"{copy.bucket}/{copy.key}", dict(
            record, tag_limit={"action": "moved to quarantine", "reason": reason})
    if choice in ("move", "delete"):
        actions.delete(info)
        return Outcome.DELETED, "", dict(manifest, tag_limit={"action": "deleted", "reason": reason})
    outcome = {ScanStatus.INFECTED: Outcome.INFECTED, ScanStatus.CLEAN: Outcome.CLEAN}.get(status, Outcome.ERROR)
    limit: Dict[str, Any] = {"action": "left untagged: only the ledger records the verdict", "reason": reason}
    dropped = replaced(tags, status, job.job_id) if choice == "replace" else None
    if dropped is not None and actions.tag(info, status, job.job_id, existing=tags, make_room=True):
        limit = {"action": f"tagged in place, replacing the uploader's tag {dropped}", "reason": reason,
                 "replaced": {dropped: tags[dropped]}}
    event(log, "status_tag_no_room", logging.WARNING, bucket=info.bucket, key=info.key,
          job_id=job.job_id, action=limit["action"], reason=reason)
    return outcome, f"{info.bucket}/{info.key}", dict(manifest, tag_limit=limit)

def _fall_back(actions: Actions, info: ObjectInfo, refused: CopyRefused, status: ScanStatus, job: VirusJob,
               manifest: Dict[str, Any], user_tags: Callable[[], Dict[str, str]]):
    """The verdict without its refused copy (fallback.py); the ledger records the fallback."""
    outcome, location, fallback = fall_back(actions, info, refused, status, job.job_id, user_tags)
    return outcome, location, dict(manifest, fallback=fallback)
