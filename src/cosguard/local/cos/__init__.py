"""Local COS: moto's S3 backend speaking COS's dialect over HTTP, with the SCF COS trigger.

    from cosguard.local.cos import LocalCos
    cos = LocalCos(region="ap-guangzhou", credentials=Credentials(id, key)).start()
    cos.create_bucket("examplebucket-1250000000")
    client = CosS3Client(cos.client_config())        # IP/Port; client_config(proxy=True) for copy()
    cos.subscribe(handler, bucket=..., prefix="uploads/", suffix=".exe")
    ...; cos.drain(); cos.stop()

Modules: `dialect` (COS <-> S3 WSGI middleware), `wire` (ids, error body, answer rewriting),
`naming` (hosts, buckets, regions, storage classes), `limits` (key and metadata sizes),
`addressing` (virtual host, proxy and path style), `operations` (API names), `postobject`
(form uploads), `append` (APPEND Object, appendable objects), `events` (trigger), `faults` (knobs,
counters), `store` (ObjectStore for local CI),
`server` (LocalCos).
"""
from .events import ObjectCreated, Subscription, build_event
from .faults import Counters, Faults
from .server import DEFAULT_CREDENTIALS, LocalCos
from .store import MotoObjectStore

__all__ = ["LocalCos", "DEFAULT_CREDENTIALS", "Faults", "Counters", "Subscription",
           "ObjectCreated", "build_event", "MotoObjectStore"]
