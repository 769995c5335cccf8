"""LocalCos: moto's S3 backend served over HTTP in COS's dialect, one isolated instance per object."""
from __future__ import annotations

import os
import random
import threading
import time
from typing import Any, Dict, Iterable, List, Optional, Tuple

from moto.s3.models import FakeKey, s3_backends
from moto.server import create_backend_app

from ..auth import Credentials
from ..httpserver import ThreadedServer, switched_on
from ..switches import env_choice, env_flag
from .append import Appendables
from .dialect import CosDialect
from .events import KEY_ENCODINGS, VID_MODES, Callback, EventBus, Subscription, key_encoding_name
from .faults import Counters, Faults
from .inventory import Inventories
from .limits import Limits
from .naming import BucketNames, split_bucket
from .store import MotoObjectStore

DEFAULT_CREDENTIALS = Credentials("AKIDcosguardLOCALexample", "cosguard-local-secret-key")
_PARTITION = "aws"
MULTIPART_TIMES = ("initiation", "completion")
_WARM_LOCK = threading.Lock()


def _warm_moto() -> None:
    """moto builds S3's service model (botocore's JSON, read from disk) for its first answer and
    caches it without a lock, so every request arriving meanwhile built it again: the first
    second of a parallel run cost several CPU-seconds. Built once here, before serving."""
    from moto.core.errors import ErrorLookupFactory
    from moto.core.utils import get_service_model

    with _WARM_LOCK:
        ErrorLookupFactory().for_service(get_service_model("s3"))


class LocalCos:
    """A local COS: buckets, the official SDK's dialect, signature checks, the SCF COS trigger.

    Each instance has its own moto account and bucket-name tag, faults, counters and event thread,
    so several can run in one process without seeing each other's buckets. `fast_path` (default:
    on unless COSGUARD_LOCAL_FASTPATH=0) answers the hot object operations from moto's backend
    without moto's Flask app (fastpath.py); off, moto's app answers everything. `append_events`
    (default off, settable later) publishes `cos:ObjectCreated:Append` for each APPEND Object.
    `append_keeps_etag` (default on, settable later): an appendable object keeps its first append's
    ETag, the answer worse for a scanner (COS does not document it); off, each append has a new one.

    `delete_honours_if_match` (default: off unless COSGUARD_LOCAL_DELETE_IF_MATCH=1): COS's DELETE
    Object documents only the common headers (doc 436/7743), so by default a DELETE's `If-Match`
    is ignored, the answer worse for a caller relying on it; on, it is honoured (412), as S3 does.

    The trigger's event (doc 583/9707 leaves both open; defaults: the worse, settable later):
    `event_key_encoding` `url` (cosObject.key percent-encoded: a key that looks encoded is
    ambiguous) or `literal`; `event_vid` `empty` (cosObject.vid is "" even on a versioned bucket:
    cosguard must HEAD the current version) or `set` (the version id). `multipart_last_modified`:
    which time a completed multipart object's Last-Modified reports, undocumented: `initiation`
    (default: earlier than the write became visible, and than its event) or `completion`. Each
    reads COSGUARD_LOCAL_EVENT_KEY, _EVENT_VID, _MULTIPART_LAST_MODIFIED when not given.

    `clock_offset` (seconds, default 0, settable later) moves COS's clock: the `Date` of every
    answer, the Last-Modified of objects written from then on, and their events' time. Objects
    written before keep theirs, so raising it is time passing on COS since those writes, without
    waiting (a lease or a backoff judged on COS's clock runs out), and any offset is a client whose
    own clock is that far off COS's.
    """

    def __init__(self, region: str = "ap-guangzhou", credentials: Optional[Credentials] = None,
                 host: str = "127.0.0.1", port: int = 0, event_key_encoding: Optional[str] = None,
                 fast_path: Optional[bool] = None, append_events: Optional[bool] = None,
                 append_keeps_etag: bool = True, delete_honours_if_match: Optional[bool] = None,
                 event_vid: Optional[str] = None, multipart_last_modified: Optional[str] = None):
        self.region = region
        self.credentials = credentials or DEFAULT_CREDENTIALS
        self.account_id = str(random.SystemRandom().randint(10 ** 11, 10 ** 12 - 1))
        self.names = BucketNames("lc" + os.urandom(4).hex())
        self.faults = Faults()
        self.limits = Limits()   # COS's key and metadata size rules (limits.py)
        self.counters = Counters()
        self.events = EventBus(
            region, key_encoding_name(env_choice("COSGUARD_LOCAL_EVENT_KEY", event_key_encoding,
                                                 KEY_ENCODINGS + ("raw",), "url")),
            env_choice("COSGUARD_LOCAL_EVENT_VID", event_vid, VID_MODES, "empty"))
        self.multipart_last_modified = env_choice(
            "COSGUARD_LOCAL_MULTIPART_LAST_MODIFIED", multipart_last_modified, MULTIPART_TIMES, "initiation")
        self.multipart_started: Dict[str, float] = {}   # upload id -> COS's clock at its initiation
        self._sizes: Dict[Tuple[str, str], int] = {}
        self._sizes_lock = threading.Lock()
        self.store = MotoObjectStore(self.moto_backend, self.names, self._sizes)
        self.appendables = Appendables(self)
        self.inventories = Inventories(self)   # bucket inventory: configurations and reports
        # SCF's COS trigger doc (583/9707) lists no `cos:ObjectCreated:Append`: off by default.
        self.append_events = env_flag("COSGUARD_LOCAL_APPEND_EVENTS", append_events, False)
        self.append_keeps_etag = append_keeps_etag   # undocumented: see append.py
        self.fast_path = switched_on("COSGUARD_LOCAL_FASTPATH") if fast_path is None else fast_path
        self.delete_honours_if_match = env_flag("COSGUARD_LOCAL_DELETE_IF_MATCH", delete_honours_if_match,
                                                False)
        self._app = CosDialect(create_backend_app("s3"), self, fast_path=self.fast_path)
        self._host, self._port = host, port
        self._server: Optional[ThreadedServer] = None
        self.clock_offset = 0.0

    # -- switches settable on a running instance ---------------------------------------------
    @property
    def event_key_encoding(self) -> str:
        return self.events.key_encoding

    @event_key_encoding.setter
    def event_key_encoding(self, value: str) -> None:
        self.events.key_encoding = key_encoding_name(value)

    @property
    def event_vid(self) -> str:
        return self.events.vid

    @event_vid.setter
    def event_vid(self, value: str) -> None:
        self.events.vid = env_choice("COSGUARD_LOCAL_EVENT_VID", value, VID_MODES, "empty")

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "multipart_last_modified" and value not in MULTIPART_TIMES:
            raise ValueError(f"multipart_last_modified must be one of {MULTIPART_TIMES}, not {value!r}")
        super().__setattr__(name, value)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> "LocalCos":
        _warm_moto()
        self._server = ThreadedServer(self._app, self._host, self._port, clock=self.clock).start()
        self.events.start()
        return self

    def clock(self) -> float:
        """COS's clock: the `Date` of its answers (`clock_offset` seconds off the machine's)."""
        return time.time() + self.clock_offset

    def stop(self) -> None:
        """Stop serving, deliver what is queued (bounded), and free this instance's moto buckets."""
        if self._server is not None:
            self._server.stop()
            self._server = None
        self.events.stop()
        self._forget_buckets()

    def __enter__(self) -> "LocalCos":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("LocalCos is not started")
        return self._server.endpoint

    @property
    def host(self) -> str:
        return self._server.host if self._server else self._host

    @property
    def port(self) -> int:
        return self._server.port if self._server else self._port

    def client_config(self, proxy: bool = False, **overrides: Any) -> Any:
        """A `qcloud_cos.CosConfig` pointed at this instance (the SDK sends the COS Host header).

        By default through `IP`/`Port`. `proxy=True` instead uses this instance as the HTTP proxy
        for COS's real host names: needed for the SDK's managed `copy()`, whose source HEAD
        ignores `IP` and would otherwise resolve `<bucket>.cos.<region>.myqcloud.com` in DNS.
        """
        from qcloud_cos import CosConfig

        settings: Dict[str, Any] = dict(Region=self.region, SecretId=self.credentials.secret_id,
                        SecretKey=self.credentials.secret_key, Token=self.credentials.token,
                        Scheme="http")
        if proxy:
            settings["Proxies"] = {"http": self.endpoint}
        else:
            settings.update(IP=self.host, Port=self.port)
        settings.update(overrides)
        return CosConfig(**settings)

    # -- buckets ---------------------------------------------------------------------------
    def moto_backend(self) -> Any:
        """moto's S3 backend holding this instance's buckets (their names carry `names.prefix`)."""
        return s3_backends[self.account_id][_PARTITION]

    def create_bucket(self, bucket: str, versioning: bool = False) -> None:
        """Create `<name>-<appid>` in this instance; versioning=True enables bucket versioning."""
        split_bucket(bucket)
        backend = self.moto_backend()
        backend.create_bucket(self.names.to_moto(bucket), "us-east-1")
        if versioning:
            backend.put_bucket_versioning(self.names.to_moto(bucket), "Enabled")

    def buckets(self) -> List[str]:
        return sorted(self.names.to_cos(name) for name in self.moto_backend().buckets)

    def bucket_exists(self, bucket: str) -> bool:
        return self.names.to_moto(bucket) in self.moto_backend().buckets

    def versioning_ever_enabled(self, bucket: str) -> bool:
        """Enabled or suspended: COS then ignores x-cos-forbid-overwrite (doc 436/7742)."""
        found = self.moto_backend().buckets.get(self.names.to_moto(bucket))
        return found is not None and found.versioning_status in ("Enabled", "Suspended")

    def _forget_buckets(self) -> None:
        """Close this instance's moto buffers and drop its account from moto's global registries."""
        from moto.iam.models import iam_backends

        backend = self.moto_backend()
        for bucket in list(backend.buckets.values()):
            for _, versions in bucket.keys.iterlists():
                for key in versions:
                    if isinstance(key, FakeKey):
                        key.dispose()
            for part in bucket.multiparts.values():
                part.dispose()
            s3_backends.bucket_accounts.pop(bucket.name, None)
        backend.buckets.clear()
        s3_backends.pop(self.account_id, None)
        iam_backends.pop(self.account_id, None)

    # -- events ----------------------------------------------------------------------------
    def subscribe(self, callback: Callback, bucket: Optional[str] = None, prefix: str = "",
                  suffix: str = "", events: Iterable[str] = ("cos:ObjectCreated:*",),
                  function: str = "cosguard", namespace: str = "default") -> Subscription:
        """Call `callback({"Records": [record]})` after each matching object creation.

        `bucket` None watches every bucket; prefix/suffix match the decoded key; `events` are
        eventName patterns; `function`/`namespace` name the trigger's target in `eventQueue`.
        """
        return self.events.subscribe(callback, bucket=bucket, prefix=prefix, suffix=suffix,
                                     events=events, function=function, namespace=namespace)

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until every queued event is delivered; TimeoutError otherwise."""
        self.events.drain(timeout)

    # -- knobs -----------------------------------------------------------------------------
    def run_inventory(self, bucket: str, inventory_id: str) -> str:
        """Run `bucket`'s inventory configuration `inventory_id` now (real COS runs it daily or
        weekly): the report lands in its destination bucket; returns the manifest.json's key."""
        return self.inventories.run_configured(bucket, inventory_id)

    def simulate_size(self, bucket: str, key: str, size: Optional[int]) -> None:
        """Report `size` for bucket/key in HEAD, listings, events and the store; None undoes it.

        The stored bytes (and GetObject) are untouched: this lets a ≥ 1 GB object be simulated.
        """
        with self._sizes_lock:
            if size is None:
                self._sizes.pop((bucket, key), None)
            else:
                self._sizes[(bucket, key)] = int(size)

    def simulated_size(self, bucket: str, key: str) -> Optional[int]:
        return self._sizes.get((bucket, key))
