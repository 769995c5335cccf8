"""The SCF COS trigger: subscriptions with prefix/suffix filters and an ordered dispatcher thread.

Events are shaped as reference/tencent-formats.md §3.4 and delivered on one thread per LocalCos,
in creation order, after the HTTP answer is produced: a slow subscriber never slows an upload.
"""
from __future__ import annotations

import fnmatch
import logging
import queue
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple
from urllib.parse import quote

from .naming import object_url, short_region, split_bucket

log = logging.getLogger("cosguard_local.cos.events")

Callback = Callable[[Dict[str, Any]], Any]
_SENT_WAIT = 5.0   # seconds a delivery waits for its HTTP answer to be written


@dataclass(frozen=True)
class ObjectCreated:
    """What COS knows about one object creation when it fires the trigger."""

    bucket: str                 # `<name>-<appid>`
    key: str                    # decoded object key
    size: int
    event_name: str             # `cos:ObjectCreated:Put|Post|Copy|CompleteMultipartUpload|Append`
    request_id: str
    version_id: Optional[str] = None
    content_type: str = ""
    user_meta: Dict[str, str] = field(default_factory=dict)   # `x-cos-meta-*` -> value
    authorization: str = ""
    source_ip: str = "127.0.0.1"
    time: int = 0


# Switches for what doc 583/9707 leaves open (docs/cos-parity.md "Switches"); defaults: the worse.
KEY_ENCODINGS = ("url", "literal")   # `cosObject.key` percent-encoded, or as stored
VID_MODES = ("empty", "set")         # `cosObject.vid` on a versioned bucket: "" or the version id
_KEY_ALIASES = {"raw": "literal"}    # the earlier name of `literal`


def key_encoding_name(encoding: str) -> str:
    """`encoding` checked against KEY_ENCODINGS (`raw` is taken for `literal`); ValueError if neither."""
    name = _KEY_ALIASES.get(encoding, encoding)
    if name not in KEY_ENCODINGS:
        raise ValueError(f"event_key_encoding must be one of {KEY_ENCODINGS}, not {encoding!r}")
    return name


def vid_mode_name(mode: str) -> str:
    if mode not in VID_MODES:
        raise ValueError(f"event_vid must be one of {VID_MODES}, not {mode!r}")
    return mode


def encode_event_key(key: str, encoding: str) -> str:
    if key_encoding_name(encoding) == "url":
        return quote(key, safe="/-_.~")
    return key


def build_event(created: ObjectCreated, region: str, key_encoding: str = "url",
                function: str = "cosguard", namespace: str = "default",
                reqid: Optional[int] = None, vid: str = "set") -> Dict[str, Any]:
    """The `{"Records": [record]}` dict SCF hands the COS-triggered `namespace.function`."""
    name, appid = split_bucket(created.bucket)
    event_queue = f"qcs:0:lambda:{short_region(region)}:appid/{appid}:{namespace}.{function}.$LATEST"
    meta = {"x-cos-request-id": created.request_id, "Content-Type": created.content_type}
    meta.update(created.user_meta)
    record = {
        "cos": {
            "cosSchemaVersion": "1.0",
            "cosObject": {
                "url": object_url(created.bucket, region, created.key),
                "meta": meta,
                "vid": (created.version_id or "") if vid_mode_name(vid) == "set" else "",
                "key": f"/{appid}/{name}/{encode_event_key(created.key, key_encoding)}",
                "size": int(created.size),
            },
            "cosBucket": {"region": short_region(region), "name": name, "appid": appid},
            "cosNotificationId": "unknown",
        },
        "event": {
            "eventName": created.event_name,
            "eventVersion": "1.0",
            "eventTime": int(created.time or time.time()),
            "eventSource": "qcs::cos",
            "requestParameters": {
                "requestSourceIP": created.source_ip,
                "requestHeaders": {"Authorization": created.authorization},
            },
            "eventQueue": event_queue,
            "reservedInfo": "",
            "reqid": reqid if reqid is not None else random.randint(10 ** 8, 2 ** 31 - 1),
        },
    }
    return {"Records": [record]}


class Subscription:
    """One trigger: a callback, the bucket it watches (None: all), prefix/suffix and event filters."""

    def __init__(self, bus: "EventBus", callback: Callback, bucket: Optional[str], prefix: str,
                 suffix: str, events: Tuple[str, ...], function: str, namespace: str):
        self._bus = bus
        self.callback = callback
        self.bucket = bucket
        self.prefix = prefix
        self.suffix = suffix
        self.events = events
        self.function = function
        self.namespace = namespace
        self.active = True

    def matches(self, created: ObjectCreated) -> bool:
        if self.bucket is not None and self.bucket != created.bucket:
            return False
        if not (created.key.startswith(self.prefix) and created.key.endswith(self.suffix)):
            return False
        return any(fnmatch.fnmatchcase(created.event_name, pattern) for pattern in self.events)

    def cancel(self) -> None:
        """No further deliveries, including events already queued for it."""
        self.active = False
        self._bus._remove(self)


class EventBus:
    """Subscriptions plus the dispatcher thread that calls them in order."""

    def __init__(self, region: str, key_encoding: str = "url", vid: str = "empty"):
        self.region = region
        self.key_encoding = key_encoding_name(key_encoding)
        self.vid = vid_mode_name(vid)
        self.delivered = 0
        self.failed = 0
        self._subs: List[Subscription] = []
        self._queue: "queue.Queue[Any]" = queue.Queue()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        self._thread: Optional[threading.Thread] = None

    def subscribe(self, callback: Callback, bucket: Optional[str] = None, prefix: str = "",
                  suffix: str = "", events: Iterable[str] = ("cos:ObjectCreated:*",),
                  function: str = "cosguard", namespace: str = "default") -> Subscription:
        if bucket is not None:
            split_bucket(bucket)   # ValueError early for a name COS would not have
        sub = Subscription(self, callback, bucket, prefix, suffix, tuple(events), function, namespace)
        with self._lock:
            self._subs.append(sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def publish(self, created: ObjectCreated, sent: Optional[threading.Event] = None) -> None:
        """Queue `created` for every subscription that matches it now.

        `sent`, when given, is set once the HTTP answer has gone out: delivery waits for it (up to
        a few seconds), so a subscriber never hears of an object before its uploader does.
        """
        with self._lock:
            targets = [s for s in self._subs if s.matches(created)]
            if not targets:
                if sent is not None:
                    sent.set()
                return
            self._pending += 1
        self._queue.put((created, targets, sent))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="local-cos-events", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout)
        self._thread = None

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until every queued event has been delivered; TimeoutError if that takes too long."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{self._pending} COS event(s) still undelivered")
                self._idle.wait(remaining)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            created, targets, sent = item
            if sent is not None:
                sent.wait(_SENT_WAIT)
            try:
                for sub in targets:
                    if sub.active:
                        self._deliver(sub, created)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _deliver(self, sub: Subscription, created: ObjectCreated) -> None:
        event = build_event(created, self.region, self.key_encoding, sub.function, sub.namespace,
                            vid=self.vid)
        try:
            sub.callback(event)
            self.delivered += 1
        except Exception:  # a subscriber's failure is its own; the trigger keeps going
            self.failed += 1
            log.exception("COS event subscriber %r failed on %s", sub.callback, created.key)
