"""Where a closed job's object is now, as far as the ledger knows (`status`, `report`)."""
from __future__ import annotations

from ..domain.restore import Restorer, copy_state


def now_at(settings, entry, gateway=None) -> str:
    """Where the scanned object is now, as far as the ledger knows; with a `gateway`, a quarantined
    copy that is gone or holds other bytes says so (one HEAD)."""
    if entry.outcome == "quarantined":
        copy = Restorer.recorded_copy(entry, settings)
        state = copy_state(gateway, settings, entry) if gateway is not None else "intact"
        return f"{copy['bucket']}/{copy['key']}" + ("" if state == "intact" else f" ({state} there)")
    if entry.outcome == "promoted" and entry.manifest.get("promoted_to"):
        return str(entry.manifest["promoted_to"])
    if entry.outcome == "promoted" and settings.clean_destination:
        destination = settings.clean_destination
        return f"{destination.for_source(entry.bucket)}/{destination.prefix}{entry.key}"
    if entry.outcome in ("deleted", "gone"):
        return "(deleted)"
    return f"{entry.bucket}/{entry.key}"
