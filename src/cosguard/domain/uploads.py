"""What the scanner is asked to scan: plain references to uploads. Each event source builds them
(triggers/upload.py from COS's upload trigger), so a new source never changes the scanner."""
from __future__ import annotations

from typing import Optional, Tuple

from ..infra.records import Record


class Upload(Record, frozen=True):
    """One write to scan, as its event named it."""

    bucket: str
    key_candidates: Tuple[str, ...]   # the keys the event may name, most literal first (HEAD tells which exists)
    version_id: Optional[str] = None
    size: Optional[int] = None        # the event's: tells folder markers apart, picks among the candidates
    written_at: Optional[int] = None  # the event's time (epoch seconds, COS's clock): when the write was made
    listed: Optional[str] = None      # a backfill's: the write's identity as its listing showed it


# An `--inventory --fan-out` invocation's event names a data file of a report here instead of
# records (domain/inventory_slice.py, loaded only for such an event: the upload path stays light).
INVENTORY_EVENT_FIELD = "cosguard_inventory"

# A record of the event that could not be read: its index, and why (reported as an error).
Unreadable = Tuple[int, str]
