"""Local Cloud Infinite (CI) virus detection: `POST /virus/detect`, `GET /virus/detect/<JobId>`.

Structured as moto structures a service: `models` (jobs, no HTTP), `wire` (XML in and out),
`server` (WSGI app + `LocalCi`), with the detection `engine` (+ `signatures`, `archives`),
`callbacks` delivery and per-instance `faults` beside them.
"""
from __future__ import annotations

from .archives import ScanLimits
from .callbacks import Delivery, DeliveryLog, RetryPolicy
from .engine import Detection, Engine, ScanReport
from .faults import Counters, Faults
from .models import CiBackend, CiError, InvalidArgument, Job, JobState, NoSuchJob, Suggestion
from .server import CiApp, LocalCi
from .signatures import EICAR_NAME, SignatureDb, SignatureFormatError, eicar_bytes

__all__ = [
    "CiApp", "CiBackend", "CiError", "Counters", "Delivery", "DeliveryLog", "Detection",
    "EICAR_NAME", "Engine", "Faults", "InvalidArgument", "Job", "JobState", "LocalCi",
    "NoSuchJob", "RetryPolicy", "ScanLimits", "ScanReport", "SignatureDb", "SignatureFormatError",
    "Suggestion", "eicar_bytes",
]
