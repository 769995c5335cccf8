"""Typed, read-only wrappers over the raw event dicts SCF hands to the functions.

All normalisation of COS trigger records and HTTP (function URL / API gateway) requests lives here,
so the rest of cosguard never indexes a raw event.
"""
from __future__ import annotations

import base64
import binascii
from typing import Any, Iterator, List, Mapping, Optional, Tuple
from urllib.parse import parse_qsl, unquote

from ..domain.uploads import Upload
from ..errors import CallbackRejected, EventParseError

# The COS trigger's event type: every upload (PUT, POST, COPY, multipart, append), doc 583/9707.
# The template (sls-scan_on_upload), the deploy, `cosguard verify` and backfill's events use it.
UPLOAD_EVENT = "cos:ObjectCreated:*"
SENSITIVE_HEADERS = frozenset({"authorization", "x-cos-security-token", "x-ci-security-token", "cookie"})


class DictWrapper(Mapping):
    """A read-only view of a dict, keeping the raw event at hand."""

    def __init__(self, data: Mapping[str, Any]):
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self):
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    @property
    def raw_event(self) -> Mapping[str, Any]:
        return self._data


def _require(mapping: Any, key: str, where: str) -> Any:
    if not isinstance(mapping, Mapping) or key not in mapping:
        raise EventParseError(f"{where} has no {key!r}")
    return mapping[key]


class CosRecord(DictWrapper):
    """One record of a COS trigger event: `Records[i]`."""

    def __init__(self, data: Mapping[str, Any], index: int):
        super().__init__(data)
        self.index = index
        where = f"Records[{index}]"
        cos = _require(data, "cos", where)
        self._object = _require(cos, "cosObject", where + ".cos")
        self._bucket = _require(cos, "cosBucket", where + ".cos")
        for key in ("name", "appid"):
            value = _require(self._bucket, key, where + ".cos.cosBucket")
            if not isinstance(value, (str, int)) or not str(value):
                raise EventParseError(f"{where}.cos.cosBucket.{key} is empty")
        key = _require(self._object, "key", where + ".cos.cosObject")
        if not isinstance(key, str) or not key:
            raise EventParseError(f"{where}.cos.cosObject.key is empty")
        event = data.get("event")
        self._event: Mapping[str, Any] = event if isinstance(event, Mapping) else {}

    @property
    def bucket(self) -> str:
        """`<name>-<appid>`: the event carries them apart."""
        return f"{self._bucket['name']}-{self._bucket['appid']}"

    @property
    def raw_key(self) -> str:
        """The key with the `/<appid>/<name>/` prefix removed, still as COS sent it."""
        key = self._object["key"]
        prefix = f"/{self._bucket['appid']}/{self._bucket['name']}/"
        if key.startswith(prefix):
            return key[len(prefix):]
        return key[1:] if key.startswith("/") else key

    @property
    def key_candidates(self) -> List[str]:
        """The keys this record may name, most literal first.

        Whether COS percent-encodes `cosObject.key` is unknown (docs/tencent-facts.md), so the key as
        sent comes first and its percent-decoding second; HEAD tells which object exists.
        """
        raw = self.raw_key
        candidates = [raw]
        decoded = unquote(raw)
        if decoded != raw:
            candidates.append(decoded)
        return candidates

    @property
    def size(self) -> Optional[int]:
        """Object size; samples carry it as int or string, and HEAD is authoritative anyway."""
        value = self._object.get("size")
        try:
            return int(value) if value is not None and value != "" else None
        except (TypeError, ValueError):
            raise EventParseError(f"Records[{self.index}].cos.cosObject.size is not a number: {value!r}")

    @property
    def version_id(self) -> Optional[str]:
        """`vid`: empty on unversioned buckets; "null" is the unversioned placeholder."""
        vid = self._object.get("vid") or None
        return None if vid in (None, "null") else str(vid)

    @property
    def event_time(self) -> Optional[int]:
        """`event.eventTime` (epoch seconds, COS's clock): when the write was made; None if absent."""
        value = self._event.get("eventTime")
        try:
            return int(value) if value is not None and value != "" else None
        except (TypeError, ValueError):
            return None

    @property
    def event_name(self) -> str:
        return str(self._event.get("eventName", ""))

    @property
    def listed(self) -> Optional[str]:
        """A backfill's record (bulk/invoke.py) names the write's identity as its listing showed it,
        so the worker asks the ledger about that write before any HEAD; COS's events carry none."""
        extra = self._data.get("cosguard")
        value = extra.get("listed") if isinstance(extra, Mapping) else None
        return value if isinstance(value, str) and value else None

    def upload(self) -> Upload:
        """The plain reference the scanner takes."""
        return Upload(self.bucket, tuple(self.key_candidates), self.version_id, self.size, self.event_time,
                      self.listed)

    @property
    def request_id(self) -> str:
        meta = self._object.get("meta") if isinstance(self._object.get("meta"), Mapping) else {}
        return str(meta.get("x-cos-request-id", ""))


class CosUploadEvent(DictWrapper):
    """A COS trigger event: `{"Records": [...]}` with every record, not just the first."""

    def __init__(self, data: Any):
        if not isinstance(data, Mapping):
            raise EventParseError("event is not a JSON object")
        records = data.get("Records")
        if not isinstance(records, list) or not records:
            raise EventParseError("event has no Records: not a COS trigger event")
        super().__init__(data)
        self._records: List[CosRecord] = []
        self.invalid_records: List[Tuple[int, str]] = []  # one bad record must not sink the others
        for index, record in enumerate(records):
            try:
                if not isinstance(record, Mapping):
                    raise EventParseError(f"Records[{index}] is not an object")
                parsed = CosRecord(record, index)
                parsed.size  # noqa: B018 - validates early
                self._records.append(parsed)
            except EventParseError as exc:
                self.invalid_records.append((index, str(exc)))
        if not self._records and self.invalid_records:
            raise EventParseError("no usable record: " + "; ".join(p for _, p in self.invalid_records))

    @property
    def records(self) -> Iterator[CosRecord]:
        return iter(self._records)

    def __len__(self) -> int:  # number of records, not of top-level keys
        return len(self._records)

    def uploads(self) -> List[Upload]:
        """Every readable record, as the scanner takes it (`invalid_records`: the others)."""
        return [record.upload() for record in self._records]


class HttpRequest(DictWrapper):
    """A function-URL or API-gateway event (reference §3.5, §3.6): both carry the same fields."""

    def __init__(self, data: Any):
        if not isinstance(data, Mapping):
            raise CallbackRejected(400, "not an HTTP event")
        super().__init__(data)

    @property
    def method(self) -> str:
        return str(self._data.get("httpMethod") or "").upper()

    @property
    def headers(self) -> Mapping[str, str]:
        """Lower-cased header names: function URLs send them lower-cased, API gateway does not."""
        headers = self._data.get("headers") or {}
        return {str(k).lower(): (v if isinstance(v, str) else str(v)) for k, v in headers.items()}

    @property
    def query(self) -> Mapping[str, str]:
        """`queryString` (function URL) or `queryStringParameters` (API gateway)."""
        for name in ("queryString", "queryStringParameters"):
            value = self._data.get(name)
            if isinstance(value, Mapping) and value:
                return {str(k): (v[-1] if isinstance(v, list) and v else str(v)) for k, v in value.items()}
            if isinstance(value, str) and value:
                return dict(parse_qsl(value))
        return {}

    def body(self, limit: int) -> bytes:
        """The body as bytes, base64-decoded when `isBase64Encoded`; 413 past `limit` bytes."""
        body = self._data.get("body")
        if body is None:
            return b""
        if not isinstance(body, str):
            raise CallbackRejected(400, "body is not a string")
        if len(body) > limit * 4 // 3 + 4:
            raise CallbackRejected(413, f"body larger than {limit} bytes")
        if self._data.get("isBase64Encoded") is True:
            try:
                raw = base64.b64decode(body, validate=True)
            except (binascii.Error, ValueError):
                raise CallbackRejected(400, "body is not valid base64") from None
        else:
            raw = body.encode("utf-8")
        if len(raw) > limit:
            raise CallbackRejected(413, f"body larger than {limit} bytes")
        return raw

    def masked(self) -> Mapping[str, Any]:
        """The event safe to log: sensitive headers and the query token masked, body left out."""
        headers = {k: ("***" if k in SENSITIVE_HEADERS else v) for k, v in self.headers.items()}
        query = {k: ("***" if k == "token" else v) for k, v in self.query.items()}
        return {"httpMethod": self.method, "path": self._data.get("path"), "headers": headers,
                "query": query}


def mask_cos_event(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """A copy of a COS event with every record's request Authorization header masked, for logs."""
    import copy

    masked = copy.deepcopy(dict(event))
    for record in masked.get("Records") or []:
        try:
            headers = record["event"]["requestParameters"]["requestHeaders"]
        except (KeyError, TypeError):
            continue
        if isinstance(headers, dict):
            for name in list(headers):
                if name.lower() in SENSITIVE_HEADERS:
                    headers[name] = "***"
    return masked
