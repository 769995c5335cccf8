"""The upload trigger: COS's event read into plain upload references (events.py), then scanned."""
from __future__ import annotations

import logging
from typing import Any

from ..domain.rescanning import RESCAN_EVENT_FIELD, rescan_uploads
from ..domain.scan import Scanner, ScanSummary
from ..infra.logs import event, get_logger
from .events import CosUploadEvent, mask_cos_event

log = get_logger("cosguard.triggers.upload")


def scan_upload_event(scanner: Scanner, raw_event: Any) -> ScanSummary:
    """Every record of one COS trigger event; EventParseError when none can be read (SCF's retry
    would read the same), SubmissionError when a record failed in a way a retry may heal."""
    upload_event = CosUploadEvent(raw_event)
    if log.isEnabledFor(logging.DEBUG):
        event(log, "cos_event_received", logging.DEBUG, cos_event=mask_cos_event(upload_event.raw_event))
    rescan = raw_event.get(RESCAN_EVENT_FIELD) if isinstance(raw_event, dict) else None
    if isinstance(rescan, dict) and isinstance(rescan.get("before"), (int, float)):   # `cosguard rescan --fan-out`
        return rescan_uploads(scanner, upload_event.uploads(), float(rescan["before"]))
    return scanner.scan_uploads(upload_event.uploads(), upload_event.invalid_records)
