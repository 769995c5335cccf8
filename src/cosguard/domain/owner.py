"""Each deployment's state location (state bucket + prefix) is its own: a sealed owner marker.

Two deployments (stages, or two apps) writing one ledger would read each other's documents as
forged, forever (each seals with its own COSGUARD_CALLBACK_TOKEN), and one's sweep would report
the other's work. So the deploy claims the location with `<prefix>owner.json`, sealed and naming
the deployment, and refuses a location whose marker names another deployment or cannot be
verified; `cosguard verify` reports the same. The marker never expires (retention.py).
"""
from __future__ import annotations

import time
from typing import List, Optional

from ..errors import CloudPermanentError, CosguardError, NotFoundError, PreconditionFailed
from ..infra.cloud import CloudGateway
from ..infra.config import LEGACY_STATE_PREFIX, Settings
from .seal import Sealer

MARKER = "owner.json"


class StateLocationTaken(CosguardError):
    """The state location belongs to another deployment (the message is one line)."""


def _locations(settings: Settings) -> List[str]:
    return sorted({settings.state_bucket_for(b) for b in settings.buckets})


def owner_of(gateway: CloudGateway, sealer: Sealer, bucket: str, prefix: str) -> Optional[str]:
    """The deployment named by the location's marker; None when there is none. Raises
    StateLocationTaken when a marker is there but this deployment's key cannot verify it."""
    key = prefix + MARKER
    try:
        document = gateway.get_json(bucket, key, max_bytes=4096)
    except NotFoundError:
        return None
    except CloudPermanentError:   # not JSON, too large, unreadable: not a marker this deployment wrote
        document = None
    opened = sealer.open(bucket, key, document)
    name = opened.get("deployment") if opened else None
    if not isinstance(name, str) or not name:
        raise StateLocationTaken(
            f"state location {bucket}/{prefix} holds an owner marker this deployment cannot verify (another "
            "deployment's, sealed with its own COSGUARD_CALLBACK_TOKEN, or planted): give this deployment its "
            f"own COSGUARD_STATE_PREFIX, or delete {bucket}/{key} if nothing else uses it")
    return name


def _taken(bucket: str, prefix: str, owner: str, deployment: str) -> StateLocationTaken:
    return StateLocationTaken(
        f"state location {bucket}/{prefix} belongs to deployment {owner!r}, not {deployment!r}: give this "
        "deployment its own COSGUARD_STATE_PREFIX (or COSGUARD_STATE_BUCKET)")


def check_state_location(gateway: CloudGateway, sealer: Sealer, settings: Settings) -> List[str]:
    """One line per state bucket whose location is not this deployment's (read-only: verify)."""
    problems = []
    for bucket in _locations(settings):
        try:
            owner = owner_of(gateway, sealer, bucket, settings.state_prefix)
        except StateLocationTaken as exc:
            problems.append(str(exc))
            continue
        if owner is None:
            problems.append(f"state location {bucket}/{settings.state_prefix} is claimed by no deployment: "
                            "run deploy/deploy.py")
        elif owner != settings.deployment:
            problems.append(str(_taken(bucket, settings.state_prefix, owner, str(settings.deployment))))
    return problems


def _legacy_ledger(gateway: CloudGateway, bucket: str) -> bool:
    """Whether the pre-deployment default prefix holds a ledger (an upgrade from before per-deployment
    prefixes: its open jobs and records would be left behind by a new default)."""
    return any(True for kind in ("jobs/", "claims/", "closed/")
               for _ in gateway.list(bucket, prefix=LEGACY_STATE_PREFIX + kind, page_size=1))


def claim_state_location(gateway: CloudGateway, sealer: Sealer, settings: Settings,
                         prefix_is_default: bool = False, clock=time.time) -> List[str]:
    """Claim each state location for `settings.deployment` (created if absent, forbid-overwrite, so
    two deploys racing for one location cannot both win); the buckets newly claimed. Raises
    StateLocationTaken, naming the other owner, before writing anything anywhere."""
    deployment = settings.deployment
    if not deployment:
        raise StateLocationTaken("COSGUARD_DEPLOYMENT is not set: the deploy names each deployment")
    prefix, unclaimed = settings.state_prefix, []
    for bucket in _locations(settings):
        owner = owner_of(gateway, sealer, bucket, prefix)
        if owner is None:
            if prefix_is_default and prefix != LEGACY_STATE_PREFIX and _legacy_ledger(gateway, bucket):
                raise StateLocationTaken(
                    f"{bucket}/{LEGACY_STATE_PREFIX} holds a ledger written before each deployment had its own "
                    f"prefix: set COSGUARD_STATE_PREFIX={LEGACY_STATE_PREFIX} to keep using it, or "
                    f"COSGUARD_STATE_PREFIX={prefix} to start a new one")
            unclaimed.append(bucket)
        elif owner != deployment:
            raise _taken(bucket, prefix, owner, deployment)
    for bucket in unclaimed:
        key = prefix + MARKER
        marker = sealer.seal(bucket, key, {"deployment": deployment, "claimed_at": clock()})
        try:
            gateway.put_json(bucket, key, marker, if_absent=True)
        except PreconditionFailed:   # another deploy claimed it in between: whose is it?
            owner = owner_of(gateway, sealer, bucket, prefix)
            if owner != deployment:
                raise _taken(bucket, prefix, str(owner), deployment) from None
    return unclaimed
