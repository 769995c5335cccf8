"""The upload trigger: COS's event read into plain upload references (events.py), then scanned."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Union

from ..domain.probe_mode import PROBE_SEGMENT
from ..domain.rescanning import RESCAN_EVENT_FIELD, rescan_uploads
from ..domain.scan import Scanner, ScanSummary
from ..domain.uploads import INVENTORY_EVENT_FIELD
from ..infra.logs import event, get_logger
from .events import CosUploadEvent, mask_cos_event

if TYPE_CHECKING:
    from ..domain.inventory_slice import SliceSummary

log = get_logger("cosguard.triggers.upload")


def scan_upload_event(scanner: Scanner, raw_event: Any) -> Union[ScanSummary, "SliceSummary"]:
    """Every record of one COS trigger event; EventParseError when none can be read (SCF's retry
    would read the same), SubmissionError when a record failed in a way a retry may heal.
    An inventory-driven fan-out's event names a data file of a report instead (inventory_slice.py)."""
    if isinstance(raw_event, dict) and INVENTORY_EVENT_FIELD in raw_event:   # `--inventory --fan-out`
        from ..domain.inventory_slice import scan_inventory_slice  # its CSV reader loads for such events only
        rescan = raw_event.get(RESCAN_EVENT_FIELD)
        before = rescan.get("before") if isinstance(rescan, dict) else None
        return scan_inventory_slice(scanner, raw_event[INVENTORY_EVENT_FIELD],
                                    float(before) if isinstance(before, (int, float)) else None)
    upload_event = CosUploadEvent(raw_event)
    if log.isEnabledFor(logging.DEBUG):
        event(log, "cos_event_received", logging.DEBUG, cos_event=mask_cos_event(upload_event.raw_event))
    record_probe_events(scanner, upload_event)
    rescan = raw_event.get(RESCAN_EVENT_FIELD) if isinstance(raw_event, dict) else None
    if isinstance(rescan, dict) and isinstance(rescan.get("before"), (int, float)):   # `cosguard rescan --fan-out`
        return rescan_uploads(scanner, upload_event.uploads(), float(rescan["before"]))
    return scanner.scan_uploads(upload_event.uploads(), upload_event.invalid_records)


def record_probe_events(scanner: Scanner, upload_event: CosUploadEvent) -> None:
    """Probe mode (domain/probe_mode.py): the raw records of `cosguard probe`'s scratch objects are
    recorded for it; every other record costs nothing (its key holds no probe segment)."""
    found = []
    for record in upload_event.records:   # readable records only: a malformed one is in invalid_records
        keys = record.key_candidates
        if any(PROBE_SEGMENT in key for key in keys):
            found.append((record.bucket, keys, mask_cos_event({"Records": [dict(record.raw_event)]})["Records"][0]))
    if found:
        scanner.probe.record_event_records(found)
