"""Local COS: moto's S3 backend speaking COS's dialect over HTTP, with the SCF COS trigger.

    from cosguard.local.cos import LocalCos
    cos = LocalCos(region="ap-guangzhou").start()
    cos.create_bucket("examplebucket-1250000000")
    client = CosS3Client(cos.client_config())
"""
from .events import ObjectCreated, Subscription, build_event
from .faults import Counters, Faults
from .server import DEFAULT_CREDENTIALS, LocalCos
from .store import MotoObjectStore

__all__ = ["LocalCos", "DEFAULT_CREDENTIALS", "Faults", "Counters", "Subscription",
           "ObjectCreated", "build_event", "MotoObjectStore"]
