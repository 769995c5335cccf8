"""How long the ledger keeps what, as COS lifecycle rules on the state bucket (docs/retention.md).

One rule per expiring kind of document under this deployment's state prefix, named by a hash of
that prefix so two deployments sharing a state bucket (under different prefixes) each own their
rules and leave every other rule of the bucket alone: a PUT replaces the whole configuration
(doc 436/8280), so the rules are merged, never written blind. `jobs/`, `retry/` and the owner
marker never expire: they are unfinished work and the location's owner.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, List, Mapping, Tuple

from ..errors import ConfigError
from ..infra.cloud import CloudGateway
from ..infra.config import Settings

MAX_RULES = 1000          # per bucket (doc 436/8280)
NONCURRENT_DAYS = 1       # a versioned state bucket keeps each rewrite as a noncurrent version
RESCAN_BUDGET_DAYS = 2    # a day's rescan budget slots (bulk/rescan_schedule.py) matter on that UTC day only
DIGEST_MARKER_DAYS = 2    # a day's digest marker (bulk/digest.py) matters on that UTC day only


def expiring_kinds(settings: Settings) -> List[Tuple[str, int]]:
    """(ledger folder, days) for every folder with a lifecycle; 0 days keeps forever (no rule)."""
    kinds = [("actions", settings.retain_actions_days), ("closed", settings.retain_closed_days),
             ("index", settings.retain_closed_days), ("removed", settings.retain_closed_days),
             ("losses", settings.retain_closed_days), ("claims", settings.retain_claims_days),
             ("rescan-index", settings.retain_claims_days), ("rescan-budget", RESCAN_BUDGET_DAYS),
             ("digests", DIGEST_MARKER_DAYS),
             ("promoting", settings.retain_actions_days), ("promoted", settings.retain_closed_days)]
    return [(kind, days) for kind, days in kinds if days > 0]


def rule_family(prefix: str) -> str:
    """What every rule ID of the ledger at `prefix` ends with."""
    return "-" + hashlib.sha256(prefix.encode("utf-8")).hexdigest()[:12]


def lifecycle_rules(settings: Settings) -> List[Dict[str, Any]]:
    """The rules that implement the retention of `settings`, as the SDK takes them."""
    prefix, family = settings.state_prefix, rule_family(settings.state_prefix)
    rules = [{"ID": f"cosguard-{kind}{family}", "Filter": {"Prefix": f"{prefix}{kind}/"}, "Status": "Enabled",
              "Expiration": {"Days": days}} for kind, days in expiring_kinds(settings)]
    rules.append({"ID": f"cosguard-noncurrent{family}", "Filter": {"Prefix": prefix}, "Status": "Enabled",
                  "NoncurrentVersionExpiration": {"NoncurrentDays": NONCURRENT_DAYS}})
    return rules


def _normal(value: Any) -> Any:
    """Rules as compared: the SDK reads numbers back as strings."""
    if isinstance(value, Mapping):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return str(value)


def _same(a: List[Dict[str, Any]], b: List[Dict[str, Any]]) -> bool:
    def spelled(rules):
        return sorted(json.dumps(_normal(r), sort_keys=True) for r in rules)
    return spelled(a) == spelled(b)


def apply_lifecycle(gateway: CloudGateway, settings: Settings) -> Dict[str, str]:
    """Bring each state bucket's rules for this ledger to `lifecycle_rules`, keeping every other
    rule; {bucket: "unchanged" | "updated"}. Idempotent: a second run writes nothing."""
    wanted = lifecycle_rules(settings)
    family = rule_family(settings.state_prefix)
    done: Dict[str, str] = {}
    for bucket in sorted({settings.state_bucket_for(b) for b in settings.buckets}):
        current = gateway.lifecycle_rules(bucket)
        others = [r for r in current if not (str(r.get("ID", "")).startswith("cosguard-")
                                             and str(r.get("ID", "")).endswith(family))]
        ours = [r for r in current if r not in others]
        if _same(ours, wanted):
            done[bucket] = "unchanged"
            continue
        if len(others) + len(wanted) > MAX_RULES:
            raise ConfigError([f"{bucket} has {len(others)} other lifecycle rules: adding cosguard's "
                               f"{len(wanted)} would pass COS's limit of {MAX_RULES}"])
        gateway.put_lifecycle_rules(bucket, others + wanted)
        done[bucket] = "updated"
    return done


def missing_rules(gateway: CloudGateway, settings: Settings) -> List[str]:
    """One line per state bucket whose rules differ from this ledger's retention (`cosguard verify`)."""
    wanted = lifecycle_rules(settings)
    family = rule_family(settings.state_prefix)
    problems = []
    for bucket in sorted({settings.state_bucket_for(b) for b in settings.buckets}):
        ours = [r for r in gateway.lifecycle_rules(bucket)
                if str(r.get("ID", "")).startswith("cosguard-") and str(r.get("ID", "")).endswith(family)]
        if not _same(ours, wanted):
            problems.append(f"{bucket}: the ledger's lifecycle rules ({settings.state_prefix}) are missing or "
                            "differ from COSGUARD_RETAIN_*_DAYS: run deploy/deploy.py (docs/retention.md)")
    return problems
