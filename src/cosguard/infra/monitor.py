"""Each invocation's figures as Cloud Monitor custom metrics (COSGUARD_MONITOR_ENABLED, off by default).

One `PutMonitorData` request at the end of an invocation (doc 248/35974: `monitor.tencentcloudapi.com`,
Version `2018-07-24`, `Metrics` a list of `{MetricName, Value}`, at most 30 pairs a request, an
`AnnounceInstance` naming the reporter; CAM action `monitor:PutMonitorData`), signed with
TencentCloud API 3.0's TC3-HMAC-SHA256 (the "Signature v3" page of every API 3.0 product, e.g.
doc 1021/34193). Plain `requests`: no SDK is loaded into the functions for one POST.

Best effort: a failure is one `monitor_failed` warning and never touches scanning; each attempt is
bounded by the invocation's deadline (retry.py), and a transient failure (connection, 5xx,
`InternalError`, `RequestLimitExceeded`) is retried with backoff only while time remains.
Doc 248/35974 itself says the API "will be disused soon" and that its console features were
deactivated: docs/metrics.md says what that means and what replaces it.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import Any, Dict, List, Mapping, Optional, Tuple
from urllib.parse import urlsplit

import requests

from .config import Settings
from .logs import event, get_logger
from .retry import Backoff, current_deadline

log = get_logger("cosguard.infra.monitor")

SERVICE, ACTION, VERSION = "monitor", "PutMonitorData", "2018-07-24"
ALGORITHM = "TC3-HMAC-SHA256"
CONTENT_TYPE = "application/json; charset=utf-8"
ATTEMPTS = 3
MAX_PAIRS = 30   # doc 248/35974: at most 30 metric/value pairs a request
# What an alarm needs, from the `metrics` line (metrics.py); each a custom metric `cosguard_<field>`.
SENT = ("submitted", "clean", "quarantined", "deleted", "infected", "viruses_found", "unscannable", "error",
        "stale", "gone", "retried", "overdue", "verdicts_settled", "verdict_latency_avg_ms",
        "verdict_latency_max_ms", "pending_jobs", "oldest_pending_seconds", "failed", "duration_ms")
TRANSIENT_CODES = ("InternalError", "RequestLimitExceeded")


def metric_data(fields: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """`Metrics`: the alarm-worthy fields present on this line, as integers."""
    return [{"MetricName": f"cosguard_{name}", "Value": int(fields[name])}
            for name in SENT if name in fields][:MAX_PAIRS]


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def tc3_headers(secret_id: str, secret_key: str, host: str, payload: bytes, timestamp: int,
                region: str = "", token: Optional[str] = None) -> Dict[str, str]:
    """The headers of a signed API 3.0 POST: canonical request (method, `/`, empty query, the
    `content-type` and `host` headers, the payload's SHA-256), string to sign over the credential
    scope `<UTC date>/monitor/tc3_request`, key derived by HMAC-SHA256 chained over
    `TC3<SecretKey>`, the date, the service and `tc3_request`."""
    date = time.strftime("%Y-%m-%d", time.gmtime(timestamp))
    canonical = "\n".join(["POST", "/", "", f"content-type:{CONTENT_TYPE}\nhost:{host.lower()}\n", "content-type;host",
                           hashlib.sha256(payload).hexdigest()])
    scope = f"{date}/{SERVICE}/tc3_request"
    to_sign = "\n".join([ALGORITHM, str(timestamp), scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest()])
    key = _hmac(_hmac(_hmac(("TC3" + secret_key).encode("utf-8"), date), SERVICE), "tc3_request")
    signature = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    headers = {"Authorization": f"{ALGORITHM} Credential={secret_id}/{scope}, SignedHeaders=content-type;host, "
                                f"Signature={signature}",
               "Content-Type": CONTENT_TYPE, "Host": host, "X-TC-Action": ACTION, "X-TC-Version": VERSION,
               "X-TC-Timestamp": str(timestamp)}
    if region:
        headers["X-TC-Region"] = region
    if token:
        headers["X-TC-Token"] = token
    return headers


class MonitorReporter:
    def __init__(self, settings: Settings, session: Optional[requests.Session] = None,
                 backoff: Optional[Backoff] = None, clock=time.time):
        self.endpoint = settings.monitor_endpoint
        self.host = urlsplit(self.endpoint).netloc
        self.session = session or requests.Session()
        self.backoff = backoff or Backoff(base=0.2, cap=1.0)
        self.timeout = settings.request_timeout   # COSGUARD_REQUEST_TIMEOUT, as for COS and CI
        self.clock = clock

    def send(self, fields: Mapping[str, Any], credentials: Settings) -> bool:
        """PutMonitorData with this invocation's figures; True once accepted. Never raises."""
        body = {"Metrics": metric_data(fields), "AnnounceInstance": str(fields.get("function") or "cosguard")}
        payload = json.dumps(body, sort_keys=True).encode("utf-8")
        deadline = current_deadline()
        reason, attempt = "", 0
        while True:
            timeout = min(self.timeout, deadline.remaining() - deadline.margin)
            if timeout <= 0:
                reason = reason or "no time left in the invocation"
                break
            transient, reason = self._once(payload, credentials, timeout)
            if not reason:
                return True
            attempt += 1
            pause = self.backoff.delay(attempt)
            if not transient or attempt >= ATTEMPTS or not deadline.allows(pause + timeout):
                break
            self.backoff.sleep(pause)
        event(log, "monitor_failed", logging.WARNING, reason=reason, attempts=attempt,
              function=fields.get("function", ""))
        return False

    def _once(self, payload: bytes, credentials: Settings, timeout: float) -> Tuple[bool, str]:
        """(transient, reason): reason "" when Cloud Monitor accepted the data."""
        headers = tc3_headers(credentials.secret_id, credentials.secret_key, self.host, payload,
                              int(self.clock()), credentials.region, credentials.session_token)
        try:
            answer = self.session.post(self.endpoint + "/", data=payload, headers=headers, timeout=timeout)
        except requests.RequestException as exc:
            return True, type(exc).__name__
        if answer.status_code >= 500:
            return True, f"HTTP {answer.status_code}"
        try:
            doc = answer.json()
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or not isinstance(doc.get("Response"), dict):
            return False, f"HTTP {answer.status_code}: not an API 3.0 answer"
        error = doc["Response"].get("Error")
        if answer.status_code != 200 or error:
            code = str((error.get("Code") if isinstance(error, dict) else "") or f"HTTP {answer.status_code}")
            return code.split(".")[0] in TRANSIENT_CODES, code
        return False, ""
