"""Fault knobs and request counters, one set per LocalCi instance (never class attributes).

Throttling answers 503 `SlowDown`, as COS does ("Please reduce your request rate"): CI shares
COS's error model, and a 5xx is what cos-python-sdk-v5 retries, as it would against the cloud.
Injected server errors answer 500 `InternalError`.
"""
from __future__ import annotations

import random
import threading
from collections import Counter
from typing import AbstractSet, Dict, Optional, Set, Union

_RATES = ("error_rate", "throttle_rate", "drop_callback_rate", "duplicate_callback_rate")


class Faults:
    """Knobs tests and benchmarks turn while the server runs.

    latency_ms               added to every API request before it is answered
    error_rate               share of API requests answered 500 InternalError
    throttle_rate            share of API requests answered 503 SlowDown
    drop_callback_rate       share of callbacks never sent (logged as dropped)
    duplicate_callback_rate  share of callbacks sent twice
    callback_delay           seconds before a callback's first attempt
    stuck_jobs               True (every job), or a set of object keys, Urls or job ids whose jobs
                             stay Auditing forever
    unbound_buckets          buckets treated as not bound to CI: both APIs answer them
                             400 BucketNotBound (CI's real code is unpublished; a permanent 4xx),
                             and `GET /` answers them `{"CIStatus": "off"}` (doc 460/97481)
    url_query_dropped        a Url input is fetched without its query string (a pre-signed URL's
                             signature and `versionId`). Undocumented (doc 436/50132: "full URL"),
                             so on by default, the answer worse for a scanner; False fetches the
                             Url as given. Stuck jobs are let go with `CiBackend.release`.
    answer_overrides         {object key, Url or job id: {field: value}}: while set, an ended job's
                             query answers and callbacks carry `value` for `field` (any State,
                             Suggestion, Object, Code...), None leaving the node out. Doc 460/63965
                             documents State Submitted/Auditing/Success/Failed and Suggestion
                             normal/block; this lets a test make CI answer outside that.
    """

    def __init__(self, rng: Optional[random.Random] = None) -> None:
        self._lock = threading.Lock()
        self._rng = rng or random.Random()
        self.clear()

    def clear(self) -> None:
        """Back to a healthy service."""
        self.latency_ms: float = 0
        self.error_rate: float = 0.0
        self.throttle_rate: float = 0.0
        self.drop_callback_rate: float = 0.0
        self.duplicate_callback_rate: float = 0.0
        self.callback_delay: float = 0.0
        self.stuck_jobs: Union[bool, AbstractSet[str]] = False
        self.unbound_buckets: Set[str] = set()
        self.url_query_dropped: bool = True
        self.answer_overrides: Dict[str, Dict[str, Optional[str]]] = {}

    def configure(self, **knobs: object) -> "Faults":
        """Set several knobs at once; unknown names raise instead of being silently ignored."""
        for name, value in knobs.items():
            if name.startswith("_") or not hasattr(self, name) or callable(getattr(self, name)):
                raise AttributeError(f"no fault knob named {name!r}")
            setattr(self, name, value)
        return self

    def __setattr__(self, name: str, value: object) -> None:
        if name in _RATES and not (isinstance(value, (int, float)) and 0 <= value <= 1):
            raise ValueError(f"{name} must be a number between 0 and 1, not {value!r}")
        if name in ("latency_ms", "callback_delay") and not (
                isinstance(value, (int, float)) and value >= 0):
            raise ValueError(f"{name} must be a non-negative number, not {value!r}")
        super().__setattr__(name, value)

    def roll(self, rate: float) -> bool:
        """True with probability `rate` (drawn from this instance's RNG)."""
        if rate <= 0:
            return False
        if rate >= 1:
            return True
        with self._lock:
            return self._rng.random() < rate

    def is_stuck(self, *names: Optional[str]) -> bool:
        stuck = self.stuck_jobs
        if isinstance(stuck, bool):
            return stuck
        return any(name is not None and name in stuck for name in names)

    def overrides_for(self, *names: Optional[str]) -> Dict[str, Optional[str]]:
        """The answer overrides set for the first of `names` that has any (a copy)."""
        for name in names:
            if name is not None and name in self.answer_overrides:
                return dict(self.answer_overrides[name])
        return {}


class Counters:
    """Per-API request counts (`counters["SubmitVirusJob"]`), and per status code."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter = Counter()
        self._statuses: Counter = Counter()

    def record(self, api: str, status: Optional[int] = None) -> None:
        with self._lock:
            if status is None:
                self._requests[api] += 1
            else:
                self._statuses[(api, status)] += 1

    def __getitem__(self, api: str) -> int:
        with self._lock:
            return self._requests[api]

    def statuses(self, api: str) -> Dict[int, int]:
        """How the API's requests were answered: {HTTP status: count}."""
        with self._lock:
            return {status: n for (name, status), n in self._statuses.items() if name == api}

    def snapshot(self) -> Dict[str, int]:
        with self._lock:
            return dict(self._requests)

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._statuses.clear()
