"""Time as COS tells it: HTTP dates parsed, and the Stamp of a GET answer (its Date, the
document's Last-Modified and ETag), so ledger leases and backoffs are judged on COS's clock and
never on the clock of whoever reads them (an operator's laptop may be minutes off)."""
from __future__ import annotations

from typing import Any, Optional

from .records import Record


class Stamp(Record, frozen=True):
    """What a GET answer says besides the body, on COS's clock: the document's ETag (its
    generation: every write of a ledger document differs), when it was written (Last-Modified)
    and when COS answered (Date), in epoch seconds (0 when absent). Leases and backoffs are judged
    as `server_time - last_modified`, never against the reader's own clock (states.py)."""

    etag: str = ""
    last_modified: int = 0
    server_time: int = 0

    @property
    def age(self) -> Optional[int]:
        """Seconds since the document was written, on COS's clock; None when COS did not say."""
        if not (self.last_modified and self.server_time):
            return None
        return self.server_time - self.last_modified


def http_epoch(value: Any) -> int:
    """Epoch seconds of an HTTP date (HEAD) or an ISO 8601 time (listings); 0 when absent or odd."""
    from datetime import datetime, timezone
    from email.utils import parsedate_to_datetime
    text = str(value or "").strip()
    if not text:
        return 0
    try:
        if text[:4].isdigit():
            moment = datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
        else:
            moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return 0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp())


__all__ = ["Stamp", "http_epoch"]
