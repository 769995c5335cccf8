"""Callback delivery: POST a finished job to its Callback, retry with backoff, log every attempt.

A non-2xx answer or a connection error is retried up to `RetryPolicy.max_attempts` attempts in
all, waiting `backoff * factor**(attempt-1)` seconds (capped) between them. Whether CI retries a
virus callback at all is undocumented (docs/tencent-facts.md): `LocalCi(callback_retries=0)`, the
default, makes one attempt only. `signed` (off by default, also undocumented) adds an
`Authorization` header signed as COS signs a request (doc 436/7778) with the account's key. Faults apply here:
a dropped callback is logged and never sent, a duplicated one is sent twice (each copy with its
own retries), and `callback_delay` postpones the first attempt.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple
from urllib.parse import parse_qsl, unquote, urlsplit

import requests

from ..auth import Credentials, sign
from .faults import Faults
from .models import Job
from .scheduler import Scheduler
from .wire import render_callback

CALLBACK_FORMATS = ("xml", "json")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    backoff: float = 0.5
    factor: float = 2.0
    max_backoff: float = 30.0
    timeout: float = 5.0  # per attempt

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        return min(self.backoff * self.factor ** (attempt - 1), self.max_backoff)


@dataclass(frozen=True)
class Delivery:
    """One line of the delivery log.

    `status` is the receiver's HTTP status, `error` a connection error's text; both are None for
    a callback dropped by the `drop_callback_rate` fault (`fault="dropped"`). `duplicate` marks
    the second copy sent by `duplicate_callback_rate`.
    """

    job_id: str
    url: str
    attempt: int
    status: Optional[int]
    error: Optional[str]
    body_format: str
    time: float
    fault: Optional[str] = None
    duplicate: bool = False

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class DeliveryLog(Sequence[Delivery]):
    """Thread-safe, append-only list of deliveries that tests can wait on."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._records: List[Delivery] = []

    def append(self, record: Delivery) -> None:
        with self._cond:
            self._records.append(record)
            self._cond.notify_all()

    def __getitem__(self, index):
        with self._cond:
            return self._records[index]

    def __len__(self) -> int:
        with self._cond:
            return len(self._records)

    def __iter__(self) -> Iterator[Delivery]:
        return iter(self.snapshot())

    def snapshot(self) -> List[Delivery]:
        with self._cond:
            return list(self._records)

    def for_job(self, job_id: str) -> List[Delivery]:
        return [record for record in self.snapshot() if record.job_id == job_id]

    def wait_for(self, predicate: Callable[[List[Delivery]], bool], timeout: float = 10.0) -> bool:
        """Wait until `predicate(records)` holds; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(list(self._records)), timeout)

    def clear(self) -> None:
        with self._cond:
            self._records.clear()


class CallbackDispatcher:
    """Turns finished jobs into callback POSTs on its own scheduler (it never blocks scans)."""

    def __init__(self, faults: Faults, log: DeliveryLog, *, body_format: str = "xml",
                 retry: Optional[RetryPolicy] = None, scheduler: Optional[Scheduler] = None,
                 signer: Optional[Credentials] = None, signed: bool = False) -> None:
        self.faults = faults
        self.log = log
        self.body_format = body_format
        self.retry = retry or RetryPolicy()
        self.signer = signer
        self.signed = signed
        self._owns_scheduler = scheduler is None
        self._scheduler = scheduler or Scheduler(workers=4, name="ci-callback")
        self._idle = threading.Condition()
        self._pending = 0

    def __setattr__(self, name: str, value: object) -> None:
        if name == "body_format" and value not in CALLBACK_FORMATS:
            raise ValueError(f"callback_format must be one of {CALLBACK_FORMATS}, not {value!r}")
        super().__setattr__(name, value)

    def headers_for(self, url: str, content_type: str) -> Dict[str, str]:
        """The callback's headers; with `signed`, an `Authorization` as COS's request signature
        (doc 436/7778: q-sign-algorithm=sha1, the host and content-type headers signed)."""
        headers = {"Content-Type": content_type, "User-Agent": "cosguard-local-ci"}
        if not (self.signed and self.signer is not None):
            return headers
        parts = urlsplit(url)
        now = int(time.time())
        key_time = f"{now - 60};{now + 3600}"
        signed_headers = {"host": parts.netloc, "content-type": content_type}
        params = {k.lower(): v for k, v in parse_qsl(parts.query, keep_blank_values=True)}
        signature = sign(self.signer.secret_key, "POST", unquote(parts.path or "/"), params,
                         signed_headers, key_time)
        headers["Authorization"] = (
            f"q-sign-algorithm=sha1&q-ak={self.signer.secret_id}&q-sign-time={key_time}"
            f"&q-key-time={key_time}&q-header-list={';'.join(sorted(signed_headers))}"
            f"&q-url-param-list={';'.join(sorted(params))}&q-signature={signature}")
        return headers

    def notify(self, job: Job) -> None:
        """Schedule the callback for a finished job (the backend's notifier)."""
        url = job.callback
        if not url:
            return
        if self.faults.roll(self.faults.drop_callback_rate):
            self.log.append(Delivery(job.job_id, url, 0, None, None, self.body_format, time.time(),
                                     fault="dropped"))
            return
        body, content_type = render_callback(job, self.body_format)
        copies = 2 if self.faults.roll(self.faults.duplicate_callback_rate) else 1
        for copy in range(copies):
            with self._idle:
                self._pending += 1
            self._scheduler.call_later(self.faults.callback_delay, self._attempt, job.job_id, url,
                                       (body, content_type), 1, copy > 0)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no delivery is queued or being retried; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def shutdown(self) -> None:
        if self._owns_scheduler:
            self._scheduler.shutdown()
        with self._idle:
            self._pending = 0
            self._idle.notify_all()

    def _attempt(self, job_id: str, url: str, payload: Tuple[bytes, str], attempt: int,
                 duplicate: bool) -> None:
        body, content_type = payload
        status: Optional[int] = None
        error: Optional[str] = None
        try:
            answer = requests.post(url, data=body, timeout=self.retry.timeout,
                                   headers=self.headers_for(url, content_type))
            status = answer.status_code
            answer.close()
        except Exception as exc:  # connection refused, timeout, bad URL: all retried alike
            error = f"{type(exc).__name__}: {exc}"
        record = Delivery(job_id, url, attempt, status, error, self.body_format, time.time(),
                          duplicate=duplicate)
        self.log.append(record)
        if not record.ok and attempt < self.retry.max_attempts:
            self._scheduler.call_later(self.retry.delay(attempt), self._attempt, job_id, url,
                                       payload, attempt + 1, duplicate)
            return
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()
