"""cosguard's services over the in-memory gateway and one injected clock (infra/memory.py): the
ledger, the scanner, the verdict service and the sweep wired as the runtime wires them, tested
without the emulator and without sleeping (time moves by `world.clock.advance`)."""
from __future__ import annotations

from typing import List, Optional

from cosguard.bulk.sweep import Sweeper, SweepReport
from cosguard.domain.ledger import Ledger
from cosguard.domain.scan import Scanner, ScanResult
from cosguard.domain.verdict import VerdictResult, VerdictService
from cosguard.infra.cloud import ObjectInfo
from cosguard.infra.config import Settings
from cosguard.infra.memory import ManualClock, MemoryGateway
from cosguard.local.samples import clean_text, eicar

INTAKE, JAIL = "intake-1250000000", "jail-1250000000"
ENV = {"TENCENTCLOUD_SECRETID": "AKIDexample", "TENCENTCLOUD_SECRETKEY": "secret",
       "COSGUARD_REGION": "ap-guangzhou", "COSGUARD_BUCKETS": INTAKE, "COSGUARD_QUARANTINE_BUCKET": JAIL,
       "COSGUARD_CALLBACK_URL": "https://1250000000-abc.ap-guangzhou.tencentscf.com/",
       "COSGUARD_CALLBACK_TOKEN": "memory-callback-secret-0123456789"}

__all__ = ["INTAKE", "JAIL", "World", "clean_text", "eicar"]


class World:
    """One deployment in memory: `put` uploads, `scan` is the upload trigger, `ci` is CI,
    `apply` is a callback, `sweep` is the timer."""

    def __init__(self, versioned: bool = False, **env: str):
        self.clock = ManualClock()
        self.gateway = MemoryGateway([JAIL], versioned=[INTAKE] if versioned else [], clock=self.clock)
        if not versioned:
            self.gateway.create_bucket(INTAKE)
        self.ci = self.gateway.ci
        self.settings = Settings.from_env(dict(ENV, **env))
        self.scanner = Scanner(self.settings, self.gateway, clock=self.clock)
        self.verdicts = VerdictService(self.settings, self.gateway, clock=self.clock, sealer=self.scanner.sealer)
        self.verdicts.rescan = lambda info: self.scanner.scan_object(info.bucket, [info.key], info.version_id,
                                                                     info=info)
        self.verdicts.recheck = self.scanner.recheck   # as runtime.py wires them
        self.sweeper = Sweeper(self.settings, self.verdicts, self.scanner, clock=self.clock)
        self.ledger: Ledger = self.scanner.ledger(INTAKE)

    def put(self, key: str, body: bytes) -> ObjectInfo:
        return self.gateway.put_object(INTAKE, key, body)

    def scan(self, key: str) -> ScanResult:
        return self.scanner.scan_object(INTAKE, [key])

    def apply(self, job_id: str) -> VerdictResult:
        return self.verdicts.apply(INTAKE, job_id)

    def sweep(self) -> SweepReport:
        return self.sweeper.sweep()

    def ledger_keys(self, kind: str) -> List[str]:
        """The ledger's documents of one kind (`jobs`, `claims`, `retry`, ...), under `.cosguard/`."""
        return self.gateway.keys(self.ledger.bucket, f"{self.settings.state_prefix}{kind}/")

    def quarantined(self, key: str) -> List[str]:
        return [k for k in self.gateway.keys(JAIL, "quarantine/") if k.endswith("/" + key)]

    def status_tag(self, key: str) -> Optional[str]:
        return self.gateway.get_tags(INTAKE, key).get("cosguard-status")
