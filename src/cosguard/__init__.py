"""cosguard: automatic virus scanning and quarantine for Tencent Cloud COS buckets.

The library behind the SCF functions (shipped as a layer) and the `cosguard` CLI. Handlers build a
`Runtime` once at cold start and call its services.
"""
from .domain.status import Action, Outcome, ScanStatus
from .errors import CosguardError
from .infra.config import Settings
from .runtime import Runtime

__all__ = ["Settings", "Runtime", "CosguardError", "ScanStatus", "Outcome", "Action"]
__version__ = "0.1.0"
