"""Probe mode: what the functions do for `cosguard probe`'s scratch objects, and for nothing else.

Off by default. `cosguard probe` switches it on by writing a marker in the state bucket,
`<state prefix>probe/marker.json`, sealed (seal.py) for that location under the deployment's key:
it names the run, the intake buckets, the scratch prefix (always `...cosguard-probe/<run>/`) and an
expiry. A marker an uploader wrote (no seal, a seal for another location or key) is ignored and
reported like any forged ledger document, and even a genuine one applies only to keys under its
prefix, in its buckets, until it expires.

For a probe object the functions record, sealed, under `<state prefix>probe/<run>/`:
- `events/`: the COS trigger event's record, as COS sent it (request Authorization masked);
- `callbacks/`: CI's callback request (method, headers, query, body), with the URL's token, the
  probe's seal, Authorization/Cookie headers and every registered secret masked (logs.scrub).
Scanning goes on as for any upload. The callback URL of a probe object carries `probe_run`,
`probe_fail`, `probe_name` and `probe_seal` (a MAC of bucket, ref, run, fail and name): the callback recognises a probe
job by that seal without reading anything, so an ordinary callback costs no extra request. Where
the marker asks for it (`fail_once`), the first callback of an object is answered 503 (recorded
first), so the probe sees whether CI sends it again; the verdict then comes from CI's retry or
the sweep. Nothing here ever raises into the function: probe mode failing never fails a scan.
"""
from __future__ import annotations

import base64
import json
import logging
import re
import time
import uuid
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import urlencode, urlsplit, urlunsplit

from ..errors import CloudError, NotFoundError
from ..infra.logs import event, get_logger, scrub
from .seal import Sealer

log = get_logger("cosguard.domain.probe_mode")

PROBE_SEGMENT = "cosguard-probe/"      # every scratch prefix holds it: other keys never read the marker
MARKER_NAME = "probe/marker.json"
ANSWERS_NAME = "probe/answers.json"   # the last run's answers, sealed (bulk/probe.py)
UNLEARNED_SECONDS = 600.0             # an instance asks again this long after finding no answers
RUN_RE = re.compile(r"^[a-z0-9][a-z0-9-]{5,47}$")
MASKED = "***"
MASKED_HEADERS = ("authorization", "cookie", "proxy-authorization", "x-cos-security-token")
MASKED_QUERY = ("token", "probe_seal", "sign", "signature", "q-signature")
MAX_RECORDED_BODY = 64 * 1024


def marker_key(state_prefix: str) -> str:
    return state_prefix + MARKER_NAME


def records_prefix(state_prefix: str, run: str, kind: str = "") -> str:
    return f"{state_prefix}probe/{run}/" + (f"{kind}/" if kind else "")


def valid_marker(body: Mapping[str, Any], now: float) -> bool:
    """A marker's own shape: a run id, a scratch prefix ending in `cosguard-probe/<run>/`, buckets,
    and an expiry still ahead."""
    run, prefix = body.get("run"), body.get("prefix")
    return (isinstance(run, str) and bool(RUN_RE.match(run)) and isinstance(prefix, str)
            and prefix.endswith(f"{PROBE_SEGMENT}{run}/") and isinstance(body.get("buckets"), list)
            and isinstance(body.get("expires"), (int, float)) and body["expires"] > now)


def mask_headers(headers: Mapping[str, Any]) -> Dict[str, str]:
    return {str(k): (MASKED if str(k).lower() in MASKED_HEADERS else scrub(str(v))) for k, v in headers.items()}


def mask_query(query: Mapping[str, Any]) -> Dict[str, str]:
    return {str(k): (MASKED if str(k).lower() in MASKED_QUERY else scrub(str(v))) for k, v in query.items()}


class ProbeMode:
    """Reads the marker (only for keys holding PROBE_SEGMENT) and writes the probe's records."""

    def __init__(self, settings: Any, gateway: Any, sealer: Sealer, clock=time.time):
        self.settings = settings
        self.gateway = gateway
        self.sealer = sealer
        self.clock = clock
        self._learned: Dict[str, Tuple[float, Optional[str]]] = {}

    # -- what the last probe learned -------------------------------------------------------------
    def learned_key_encoding(self, bucket: str, keys: Sequence[str]) -> Optional[str]:
        """`literal` or `percent-encoded`: how the last `cosguard probe` saw COS spell
        `cosObject.key` (its sealed answers), else None. Read once per instance (again after
        UNLEARNED_SECONDS while there are none, or once a probe was seen running), and only for
        events whose key has two spellings; never for the probe's own objects, which it observes
        unadapted."""
        if any(PROBE_SEGMENT in key for key in keys):
            return None
        state = self.settings.state_bucket_for(bucket)
        now = self.clock()
        known = self._learned.get(state)
        if known is not None and (known[1] is not None or now - known[0] < UNLEARNED_SECONDS):
            return known[1]
        answer: Optional[str] = None
        key = self.settings.state_prefix + ANSWERS_NAME
        try:
            body = self.sealer.open(state, key, self.gateway.get_json(state, key, max_bytes=256 * 1024))
            rows = body.get("rows") if isinstance(body, dict) else None
            for row in rows if isinstance(rows, list) else []:
                if isinstance(row, dict) and row.get("id") == "event.key_encoding" and \
                        row.get("observed") in ("literal", "percent-encoded"):
                    answer = str(row["observed"])
        except NotFoundError:
            pass
        except CloudError as exc:
            event(log, "probe_record_failed", logging.WARNING, bucket=bucket, kind="answers",
                  error=type(exc).__name__)
        self._learned[state] = (now, answer)
        return answer

    # -- the marker ------------------------------------------------------------------------------
    def marker(self, bucket: str) -> Optional[Dict[str, Any]]:
        """The genuine, unexpired marker naming `bucket`, else None (a forged one is reported).
        Read anew each time: only keys holding PROBE_SEGMENT ask, and a marker the probe removed
        or replaced must stop counting at once."""
        state = self.settings.state_bucket_for(bucket)
        key = marker_key(self.settings.state_prefix)
        try:
            body = self.sealer.open(state, key, self.gateway.get_json(state, key, max_bytes=16 * 1024))
        except NotFoundError:
            return None
        except CloudError as exc:
            self.sealer.reject(state, key, "probe marker", problem=str(exc))
            return None
        if body is None or not valid_marker(body, self.clock()) or bucket not in body["buckets"]:
            return None
        return body

    def active_for(self, bucket: str, keys: Sequence[str]) -> Optional[Dict[str, Any]]:
        """The marker when one of `keys` (an object's key candidates) is under its scratch prefix."""
        if not any(PROBE_SEGMENT in key for key in keys):
            return None   # every ordinary upload stops here, without a request
        found = self.marker(bucket)
        if found is None or not any(key.startswith(found["prefix"]) for key in keys):
            return None
        self._learned.clear()   # a probe is running: its answers are read anew after it
        return found

    # -- records ---------------------------------------------------------------------------------
    def _record(self, bucket: str, run: str, kind: str, name: str, document: Mapping[str, Any]) -> None:
        state = self.settings.state_bucket_for(bucket)
        key = records_prefix(self.settings.state_prefix, run, kind) + name + ".json"
        self.gateway.put_json(state, key, self.sealer.seal(state, key, dict(document, recorded_at=self.clock())))
        event(log, "probe_recorded", logging.INFO, bucket=bucket, run=run, kind=kind, key=key)

    def record_event_records(self, records: Sequence[Tuple[str, Sequence[str], Mapping[str, Any]]]) -> None:
        """(bucket, key candidates, raw masked record) of one trigger event: those under an active
        probe prefix are recorded. Never raises."""
        for bucket, keys, raw in records:
            try:
                found = self.active_for(bucket, keys)
                if found is not None:
                    text = scrub(json.dumps(raw, ensure_ascii=False, sort_keys=True, default=str))
                    self._record(bucket, found["run"], "events", uuid.uuid4().hex, {"record": json.loads(text)})
            except Exception as exc:  # noqa: BLE001 - probe mode never fails a scan
                event(log, "probe_record_failed", logging.WARNING, bucket=bucket, kind="events",
                      error=type(exc).__name__)

    # -- callbacks -------------------------------------------------------------------------------
    def callback_url(self, url: str, bucket: str, key: str, ref: str) -> str:
        """`url` marked as a probe job's when `key` is under an active probe prefix."""
        try:
            found = self.active_for(bucket, [key])
        except Exception:  # noqa: BLE001
            return url
        if found is None:
            return url
        name = key[len(found["prefix"]):]
        fail = "1" if name in (found.get("fail_once") or []) else "0"
        params = {"probe_run": found["run"], "probe_fail": fail, "probe_name": name,
                  "probe_seal": self.sealer.mac("probe", bucket, ref, found["run"], fail, name)}
        parts = urlsplit(url)
        query = "&".join(q for q in (parts.query, urlencode(params)) if q)
        return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))

    def on_callback(self, raw_event: Any, headers: Mapping[str, str], query: Mapping[str, str],
                    bucket: str, ref: str) -> bool:
        """Record an authenticated callback of a probe job; True when it is to be answered with an
        error (the first callback of a `fail_once` object). Never raises."""
        run, fail, name = query.get("probe_run", ""), query.get("probe_fail", ""), query.get("probe_name", "")
        if not query.get("probe_seal") or not self.sealer.matches(query.get("probe_seal"), "probe", bucket,
                                                                   ref, run, fail, name):
            return False
        try:
            found = self.marker(bucket)
            if found is None or found["run"] != run:
                return False
            state = self.settings.state_bucket_for(bucket)
            earlier = records_prefix(self.settings.state_prefix, run, "callbacks") + ref + "-"
            first = next(iter(self.gateway.list(state, earlier, page_size=1)), None) is None
            answer_error = fail == "1" and first
            self._record(bucket, run, "callbacks", f"{ref}-{int(self.clock() * 1000):015d}-{uuid.uuid4().hex[:8]}",
                         {"ref": ref, "name": name, "answered_error": answer_error, "request": _raw_request(raw_event, headers, query)})
            return answer_error
        except Exception as exc:  # noqa: BLE001 - probe mode never fails a verdict
            event(log, "probe_record_failed", logging.WARNING, bucket=bucket, kind="callbacks",
                  error=type(exc).__name__)
            return False


def _raw_request(raw_event: Any, headers: Mapping[str, str], query: Mapping[str, str]) -> Dict[str, Any]:
    """The callback request as received, secrets masked; the body as text (base64 if not UTF-8)."""
    data = raw_event if isinstance(raw_event, Mapping) else {}
    body = data.get("body")
    raw = b""
    if isinstance(body, str):
        raw = base64.b64decode(body) if data.get("isBase64Encoded") is True else body.encode("utf-8")
    raw = raw[:MAX_RECORDED_BODY]
    try:
        text, encoding = scrub(raw.decode("utf-8")), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(raw).decode("ascii"), "base64"
    return {"method": str(data.get("httpMethod") or ""), "path": scrub(str(data.get("path") or "")),
            "headers": mask_headers(headers), "query": mask_query(query), "body": text, "body_encoding": encoding,
            "body_bytes": len(raw)}


__all__: List[str] = ["MARKER_NAME", "PROBE_SEGMENT", "ProbeMode", "marker_key", "records_prefix",
                      "valid_marker", "mask_headers", "mask_query"]
