"""COS PostObject: a browser's form upload, signed by a policy instead of an Authorization header.

Checked as COS documents it (https://cloud.tencent.com/document/product/436/14690): the form's
`q-signature` = HMAC-SHA1(HMAC-SHA1(SecretKey, q-key-time), SHA1(policy JSON)), the key time and
the policy's `expiration` current, and the policy's bucket / key / content-length conditions met.
The object is written to moto's backend in-process.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from datetime import datetime, timezone
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from werkzeug.formparser import parse_form_data

from ..auth import Credentials
from .naming import moto_storage_class
from .wire import CosError, content_length

MAX_POST_BYTES = 512 * 1024 * 1024


def _hmac_sha1(key: str, msg: str) -> str:
    return hmac.new(key.encode("utf-8"), msg.encode("utf-8"), hashlib.sha1).hexdigest()


def policy_signature(secret_key: str, key_time: str, policy_json: str) -> str:
    """The `q-signature` a PostObject form carries for `policy_json` (the decoded policy)."""
    string_to_sign = hashlib.sha1(policy_json.encode("utf-8")).hexdigest()
    return _hmac_sha1(_hmac_sha1(secret_key, key_time), string_to_sign)


def _expired(expiration: str, now: float) -> bool:
    text = expiration.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise CosError(400, "InvalidPolicyDocument", "The policy expiration is malformed") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp() < now


def _check_conditions(policy: Dict[str, Any], fields: Mapping[str, str], bucket: str, size: int) -> None:
    for condition in policy.get("conditions", []):
        if isinstance(condition, dict):
            for name, expected in condition.items():
                actual = bucket if name.lower() == "bucket" else fields.get(name.lower(), "")
                if str(actual) != str(expected):
                    raise CosError(403, "AccessDenied", f"Policy condition failed: {name}")
        elif isinstance(condition, list) and len(condition) == 3:
            op, name, expected = condition
            if str(op).lower() == "content-length-range":
                if not int(name) <= size <= int(expected):
                    raise CosError(400, "EntityTooLarge" if size > int(expected) else "EntityTooSmall",
                                   "The uploaded size is outside the policy's content-length-range")
                continue
            field = str(name).lstrip("$").lower()
            actual = bucket if field == "bucket" else fields.get(field, "")
            ok = actual == expected if str(op).lower() == "eq" else actual.startswith(str(expected))
            if not ok:
                raise CosError(403, "AccessDenied", f"Policy condition failed: {op} {name}")


def verify_post(credentials: Credentials, fields: Mapping[str, str], bucket: str, size: int,
                now: Optional[float] = None) -> None:
    """Raise CosError unless the form is signed by `credentials` and its policy allows it."""
    now = time.time() if now is None else now
    required = ("policy", "q-sign-algorithm", "q-ak", "q-key-time", "q-signature")
    missing = [name for name in required if not fields.get(name)]
    if missing:
        raise CosError(403, "AccessDenied", "PostObject form lacks " + ", ".join(missing))
    if fields["q-sign-algorithm"] != "sha1":
        raise CosError(403, "AccessDenied", "q-sign-algorithm must be sha1")
    if fields["q-ak"] != credentials.secret_id:
        raise CosError(403, "InvalidAccessKeyId", "The access key Id format you provided is invalid")
    try:
        start, end = (int(x) for x in fields["q-key-time"].split(";"))
        policy_json = base64.b64decode(fields["policy"], validate=True).decode("utf-8")
        policy = json.loads(policy_json)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise CosError(400, "InvalidPolicyDocument", "The policy or q-key-time is malformed") from None
    if not start <= now <= end or _expired(str(policy.get("expiration", "")), now):
        raise CosError(403, "AccessDenied", "Request has expired")
    expected = policy_signature(credentials.secret_key, fields["q-key-time"], policy_json)
    if not hmac.compare_digest(expected, fields["q-signature"]):
        raise CosError(403, "SignatureDoesNotMatch",
                       "The calculated signature does not match the signature you provided")
    if credentials.token is not None:
        token = fields.get("x-cos-security-token", "")
        if not token or not hmac.compare_digest(token, credentials.token):
            raise CosError(403, "InvalidAccessKeyId", "The security token is missing or invalid")
    _check_conditions(policy, fields, bucket, size)


def read_form(environ: Dict[str, Any]) -> Tuple[Dict[str, str], bytes, str]:
    """(lower-cased fields, file bytes, file name) of a multipart/form-data PostObject body."""
    length = content_length(environ)
    if length > MAX_POST_BYTES:
        raise CosError(400, "EntityTooLarge", "PostObject bodies are limited locally to 512 MB")
    _, form, files = parse_form_data(environ, max_form_memory_size=MAX_POST_BYTES)
    fields = {name.lower(): value for name, value in form.items()}
    upload = files.get("file")
    if upload is None:
        raise CosError(400, "InvalidArgument", "PostObject form has no file field")
    return fields, upload.read(), upload.filename or ""


def store_post(backend: Any, moto_bucket: str, fields: Mapping[str, str], data: bytes,
               tags: Sequence[Tuple[str, str]] = ()) -> Any:
    """Write the form's object to moto, with its Content-Type, x-cos-meta-*, storage class and
    tags (its `x-cos-tagging` field, already checked)."""
    cos_class = fields.get("x-cos-storage-class")
    storage = None
    if cos_class:
        storage = moto_storage_class(cos_class)
        if storage is None:
            raise CosError(400, "InvalidStorageClass",
                           f"The storage class you specified is not valid: {cos_class}")
    if tags:   # moto's own tag checks, before anything is written (they raise otherwise)
        problem = backend.tagger.validate_tags(backend.tagger.convert_dict_to_tags_input(dict(tags)))
        if problem or any(name.startswith("aws") for name, _ in tags):
            raise CosError(400, "InvalidTag", problem or "The tag key cannot start with aws")
    new_key = backend.put_object(moto_bucket, fields["key"], data, storage=storage,
                                 request_method="POST")
    metadata = {"x-amz-meta-" + name[len("x-cos-meta-"):]: value
                for name, value in fields.items() if name.startswith("x-cos-meta-")}
    for header in ("content-type", "cache-control", "content-disposition", "content-encoding",
                   "expires"):
        if fields.get(header):
            metadata[header] = fields[header]
    new_key.set_metadata(metadata)
    if tags:
        backend.put_object_tagging(new_key, dict(tags))
    return new_key
