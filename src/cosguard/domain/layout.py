"""Where cosguard keeps what it relies on, and where readers read, judged against who can write there.

`deploy/preflight.py` (before deploying) and `cosguard verify` (against the real buckets) both
print these warnings. They are warnings, not errors: a same-bucket layout works and every
document in it is sealed, but an uploader who can write there can still overwrite (destroy)
cosguard's records and evidence, which a private bucket rules out.
"""
from __future__ import annotations

from typing import List, Mapping, Optional

from ..infra.config import Settings


def layout_warnings(settings: Settings, versioning: Optional[Mapping[str, str]] = None) -> List[str]:
    """One line per risky choice; `versioning` maps intake buckets to their versioning status
    (`enabled`, `suspended`, "" for never), or is None when it cannot be known (preflight)."""
    warnings: List[str] = []
    for bucket in settings.buckets:
        if settings.state_bucket_for(bucket) == bucket:
            warnings.append(
                f"{bucket}: the ledger ({settings.state_prefix}) is in the intake bucket, where uploaders can "
                "write: forged documents are detected and ignored, but genuine ones can be overwritten. "
                "Set COSGUARD_STATE_BUCKET (or COSGUARD_QUARANTINE_BUCKET) to a private bucket")
        if settings.quarantine_bucket_for(bucket) == bucket:
            warnings.append(
                f"{bucket}: quarantine ({settings.quarantine_prefix}) is in the intake bucket, where uploaders "
                "can write: evidence can be overwritten (restore refuses swapped bytes). "
                "Set COSGUARD_QUARANTINE_BUCKET to a private bucket")
        destination = settings.clean_destination
        if destination is not None and destination.for_source(bucket) in settings.buckets:
            where = destination.for_source(bucket)
            warnings.append(
                f"{bucket}: the clean destination ({where}/{destination.prefix}) is in an intake bucket, where "
                "uploaders can write: what they put there without cosguard's seal is scanned like an upload when "
                "an event (if the trigger's prefix covers it) or a backfill reaches it, but readers can fetch it "
                "before the verdict, and promoted copies can be overwritten. "
                "Set COSGUARD_CLEAN_DESTINATION to a bucket readers use and uploaders cannot write")
        if versioning is not None:
            status = versioning.get(bucket, "unknown")
            if status != "enabled":
                warnings.append(
                    f"{bucket}: versioning is {status or 'off'}: an overwrite that lands while a verdict is "
                    "applied can hit the new upload, and quarantine keeps no earlier version. "
                    "Enable versioning on intake buckets")
    return warnings
