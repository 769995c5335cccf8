"""`--inventory --fan-out`: this process reads only the report's manifest (checksum-checked) and
hands each data file to one `scan_on_upload` invocation, which reads the file itself and decides
"already handled" for its rows (domain/inventory_slice.py). No process streams every row, and none
holds the claim set.

A checkpoint's marker is the next file to send (`{"file": n, "row": "0"}`) and `files_sent` lists
the files handed over. A file sent is done as far as this process is concerned: its invocation
retries on its own (SCF's async retry; a retry skips the rows handled the first time). A checkpoint
written by a run without --fan-out may stop inside a file: that file is sent from its record on.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Tuple

from ..domain.inventory_slice import INVENTORY_EVENT_FIELD
from ..domain.status import Outcome

if TYPE_CHECKING:
    from .backfill import Backfill

FILES_SENT = "files_sent"


def slice_event(backfill: "Backfill", index: int, first_row: int = 0, end_row: Optional[int] = None) -> Dict[str, Any]:
    """The event of file `index`: where the manifest is, which file, its MD5 as the manifest gives
    it (the worker checks the manifest and the file again), the rows, and rescan's cut-off."""
    o, manifest = backfill.options, backfill.manifest
    assert manifest is not None
    data = manifest.files[index]
    return {INVENTORY_EVENT_FIELD: {"manifest": manifest.location, "bucket": o.bucket, "file": data.key,
                                    "md5": data.md5, "rows": [first_row, end_row], "prefix": o.prefix,
                                    "raw_keys": o.inventory_keys == "raw"},
            **backfill._event_fields()}


def ranges(backfill: "Backfill", index: int, first: int) -> Iterator[Tuple[int, Optional[int]]]:
    """The record ranges of file `index` from record `first` on: the whole file, or with
    --rows-per-invocation N ranges of N records (the file is then read here once, to count them:
    no ledger read, memory flat)."""
    per = backfill.options.rows_per_invocation
    if not per:
        yield first, None
        return
    assert backfill.rows is not None
    total = first
    for total, _ in backfill.rows.file(index, first):
        pass
    backfill.rows.take_malformed()   # the worker reports those
    for start in range(first, max(total, first + 1), per):
        yield start, min(start + per, total) if start + per < total else None


def send_files(backfill: "Backfill", marker: Dict[str, str], sent: List[str]) -> bool:
    """One invocation per data file from `marker` on, the checkpoint saved after each; True when
    every file was handed over. An invocation refused (after the invoker's retries) stops the run:
    the checkpoint resumes from that file."""
    report, manifest, invoker = backfill.report, backfill.manifest, backfill.options.invoker
    assert manifest is not None and invoker is not None
    first, row = int(marker.get("file") or 0), int(marker.get("row") or 0)
    for index in range(first, len(manifest.files)):
        if backfill.stop.is_set() or not backfill._throttle(1):
            report.interrupted = True
            backfill._save(marker, complete=False)
            return False
        data = manifest.files[index]
        try:
            for start, end in ranges(backfill, index, row if index == first else 0):
                invoker.invoke(slice_event(backfill, index, start, end))
                report.invocations += 1
        except Exception as exc:  # InvokeError, or a bug: stop here, the checkpoint resends this file
            report.counts[Outcome.ERROR.value] = report.counts.get(Outcome.ERROR.value, 0) + 1
            report.errors.append({"key": data.key, "reason": f"invoke failed: {exc}"})
            report.failure = f"Invoke: {exc}"
            backfill._save(marker, complete=False)
            return False
        report.counts[FILES_SENT] = report.counts.get(FILES_SENT, 0) + 1
        report.scan_bytes += data.size
        sent.append(data.key)
        marker = {"file": str(index + 1), "row": "0"}
        report.pages += 1
        backfill._save(marker, complete=False)
        if backfill.on_page is not None:
            backfill.on_page(report, marker)
    backfill._save(marker, complete=True)
    return True
