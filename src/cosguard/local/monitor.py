"""A local Cloud Monitor: answers `PutMonitorData` (doc 248/35974) as API 3.0 does, after checking
the request's TC3-HMAC-SHA256 signature (the API's "Signature v3" page, e.g. doc 1021/34193) with
its own implementation, and records the metrics it accepted. Tests point COSGUARD_MONITOR_ENDPOINT
here; nothing is ever sent to Tencent.

API 3.0 answers errors with HTTP 200 and `{"Response": {"Error": {"Code", "Message"}, "RequestId"}}`.
`faults` (a list of error codes, or HTTP statuses as ints) answers the next requests so, in order.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from typing import Any, Callable, Dict, List, Mapping, Optional, Union

from werkzeug.wrappers import Request, Response

from .httpserver import ThreadedServer

AUTH_RE = re.compile(r"^TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[a-z]+)"
                     r"/tc3_request, SignedHeaders=(?P<signed>[a-z;-]+), Signature=(?P<sig>[0-9a-f]{64})$")
MAX_SKEW = 300   # seconds: API 3.0 refuses an older (or later) X-TC-Timestamp as SignatureExpire


def _sign(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


class MonitorEmulator:
    def __init__(self, keys: Mapping[str, str], clock: Callable[[], float] = time.time):
        self.keys = dict(keys)              # SecretId -> SecretKey
        self.clock = clock
        self.received: List[Dict[str, Any]] = []   # accepted requests: {"instance", "metrics", "token"}
        self.refused: List[str] = []               # error codes answered
        self.faults: List[Union[str, int]] = []
        self._lock = threading.Lock()
        self.server = ThreadedServer(self._app)

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    def start(self) -> "MonitorEmulator":
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def metrics(self) -> List[Dict[str, int]]:
        """Each accepted request's metrics, {name: value}."""
        with self._lock:
            return [dict(r["metrics"]) for r in self.received]

    def _answer(self, error: Optional[str] = None, message: str = "", status: int = 200) -> Response:
        body: Dict[str, Any] = {"RequestId": str(uuid.uuid4())}
        if error:
            body["Error"] = {"Code": error, "Message": message}
            with self._lock:
                self.refused.append(error)
        return Response(json.dumps({"Response": body}), status=status, content_type="application/json")

    def _app(self, environ: Dict[str, Any], start_response: Callable) -> Any:
        request = Request(environ)
        with self._lock:
            fault = self.faults.pop(0) if self.faults else None
        if isinstance(fault, int):
            return Response("fault", status=fault)(environ, start_response)
        answer = self._answer(fault, "injected fault") if fault else self._handle(request)
        return answer(environ, start_response)

    def _handle(self, request: Request) -> Response:
        payload = request.get_data()
        problem = self._check_signature(request, payload)
        if problem:
            return self._answer(*problem)
        if request.headers.get("X-TC-Action") != "PutMonitorData" or request.headers.get("X-TC-Version") != "2018-07-24":
            return self._answer("InvalidAction", "only PutMonitorData 2018-07-24 is emulated")
        try:
            body = json.loads(payload)
            metrics = {m["MetricName"]: m["Value"] for m in body["Metrics"]}
            valid = (0 < len(body["Metrics"]) <= 30 and len(metrics) == len(body["Metrics"])
                     and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in metrics.values()))
        except (ValueError, KeyError, TypeError):
            valid = False
        if not valid:
            return self._answer("InvalidParameter", "Metrics: 1 to 30 distinct {MetricName, Value (integer)}")
        with self._lock:
            self.received.append({"instance": body.get("AnnounceInstance"), "metrics": metrics,
                                  "token": request.headers.get("X-TC-Token")})
        return self._answer()

    def _check_signature(self, request: Request, payload: bytes) -> Optional[tuple]:
        match = AUTH_RE.match(request.headers.get("Authorization", ""))
        if not match:
            return "AuthFailure.InvalidAuthorization", "not a TC3-HMAC-SHA256 Authorization"
        secret_key = self.keys.get(match["id"])
        if secret_key is None:
            return "AuthFailure.SecretIdNotFound", "unknown SecretId"
        try:
            timestamp = int(request.headers.get("X-TC-Timestamp", ""))
        except ValueError:
            return "AuthFailure.InvalidAuthorization", "no X-TC-Timestamp"
        if abs(self.clock() - timestamp) > MAX_SKEW:
            return "AuthFailure.SignatureExpire", "X-TC-Timestamp too far from now"
        if match["date"] != time.strftime("%Y-%m-%d", time.gmtime(timestamp)) or match["service"] != "monitor":
            return "AuthFailure.SignatureFailure", "credential scope"
        signed = match["signed"].split(";")
        if "host" not in signed or "content-type" not in signed:
            return "AuthFailure.SignatureFailure", "content-type and host must be signed"
        headers = "".join(f"{name}:{request.headers.get(name, '').strip().lower()}\n" for name in signed)
        canonical = "\n".join([request.method, request.path, request.query_string.decode("latin-1"), headers,
                               match["signed"], hashlib.sha256(payload).hexdigest()])
        scope = f"{match['date']}/monitor/tc3_request"
        to_sign = "\n".join(["TC3-HMAC-SHA256", str(timestamp), scope,
                             hashlib.sha256(canonical.encode("utf-8")).hexdigest()])
        key = _sign(_sign(_sign(("TC3" + secret_key).encode("utf-8"), match["date"]), "monitor"), "tc3_request")
        expected = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, match["sig"]):
            return "AuthFailure.SignatureFailure", "signature does not match"
        return None
