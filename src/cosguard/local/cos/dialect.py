"""WSGI middleware that makes moto's S3 app speak COS, as cos-python-sdk-v5 sends it.

In: the bucket from the virtual Host, COS's signature checked, `x-cos-*` headers and COS's
copy-source form turned into S3's, the request re-addressed path-style to this instance's moto
bucket and account. Out: `x-amz-*` headers as `x-cos-*`, COS storage-class and bucket names,
COS's error body, an `x-cos-request-id` on every answer; object creations published as events.
The request's parsing and its headers as moto wants them: request.py.
"""
from __future__ import annotations

import datetime
import http
import logging
import threading
import time
from typing import Any, Callable, Dict, Iterable, List, Tuple
from urllib.parse import quote
from xml.sax.saxutils import escape

from werkzeug.wsgi import ClosingIterator

from ..auth import SignatureError, verify
from . import tagging
from .answers import CRC_HEADER, CosAnswers
from .events import ObjectCreated
from .fastpath import FastPath
from .fastpath import _read_body as read_body
from .multipart import date_completed, note_initiation
from .operations import CREATION_EVENTS, INVENTORY_OPS, classify
from .postobject import read_form, store_post, verify_post
from .request import CosRequest, moto_query, parse_request, translate_headers
from .wire import (
    CosError,
    content_length,
    error_body,
    new_request_id,
    new_trace_id,
    parse_error,
    translate_response_headers,
    translate_xml_body,
)

log = logging.getLogger("cosguard_local.cos")

# Codes for moto's answers that carry no error body.
# COS's PUT/Copy/Complete (and Initiate, as an early check) honour x-cos-forbid-overwrite on a
# bucket that never had versioning (docs 436/7742, 436/7746; docs/cos-parity.md).
_FORBID_OVERWRITE_OPS = frozenset({"PutObject", "CopyObject", "CompleteMultipartUpload",
                                   "InitiateMultipartUpload"})
_STATUS_ERRORS = {400: ("InvalidArgument", "Invalid argument."), 403: ("AccessDenied", "Access Denied."),
                  404: ("NoSuchKey", "The specified key does not exist."),
                  405: ("MethodNotAllowed", "The specified method is not allowed."),
                  412: ("PreconditionFailed", "At least one of the preconditions does not hold.")}
_DRAIN_LIMIT = 64 * 1024 * 1024
_MOTO_DEFAULT_CONTENT_TYPE = "binary/octet-stream"


class CosDialect:
    """The WSGI app a LocalCos serves: `cos` supplies state (names, faults, counters, events)."""

    def __init__(self, moto_app: Callable, cos: Any, fast_path: bool = True):
        self._moto = moto_app
        self._cos = cos
        self._fast = FastPath(cos.moto_backend, cos.names.to_moto) if fast_path else None
        self._claims = threading.Lock()   # serialises forbid-overwrite check-then-write
        self._answers = CosAnswers(cos)   # where COS answers differently from moto's S3

    def __call__(self, environ: Dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        request_id = new_request_id()
        req = parse_request(environ)
        op = classify(req.method, req.bucket, req.key, req.query, req.headers)
        cos = self._cos
        cos.counters.count(op)
        cos.faults.run_hooks(op, req.bucket or "", req.key or "")
        if cos.faults.latency_ms > 0:
            time.sleep(cos.faults.latency_ms / 1000.0)
        form_post = (op == "PostObject" and not req.key and req.headers.get(
            "content-type", "").lower().startswith("multipart/form-data"))
        try:
            if op != "OptionsObject":   # a CORS preflight is unsigned: browsers cannot sign it
                self._admit(req, op, signed_by_header=not form_post)
            if op == "OptionsObject":
                status, headers, body = self._answers.preflight(req)
            elif form_post:
                status, headers, body = self._post_object(environ, req, request_id)
            elif op == "GetObjectTagging":
                status, headers, body = tagging.get_object_tagging(cos, req)
            elif op in INVENTORY_OPS:
                status, headers, body = cos.inventories.answer(op, req.bucket, req.query, read_body(environ, req))
            else:
                status, headers, body = self._forward(environ, req, op, request_id)
        except CosError as err:
            self._drain(environ, req)
            status, headers = err.status, {"Content-Type": "application/xml"}
            body = error_body(err.code, err.message, req.resource, request_id, new_trace_id())
        except Exception:   # moto raised instead of answering: a 500, as COS would give
            log.exception("local COS failed on %s %s", req.method, req.raw_path)
            self._drain(environ, req)
            status, headers = 500, {"Content-Type": "application/xml"}
            body = error_body("InternalError", "We encountered an internal error. Please try again.",
                              req.resource, request_id, new_trace_id())
        if op != "OptionsObject":
            headers.update(self._answers.cors_headers(req))
        headers["x-cos-request-id"] = request_id
        headers["Server"] = "tencent-cos"
        if req.method == "HEAD":
            headers.setdefault("Content-Length", "0")
            body = b""
        else:
            headers["Content-Length"] = str(len(body))
        try:
            phrase = http.HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        start_response(f"{status} {phrase}", list(headers.items()))
        if req.after_response:   # run by the server once the answer is written
            return ClosingIterator([body], req.after_response)
        return [body]

    def _admit(self, req: CosRequest, op: str, signed_by_header: bool = True) -> None:
        """Signature, deny rules and injected faults, in the order COS would apply them.

        A PostObject form is signed inside the form; `_post_object` checks that instead.
        """
        cos = self._cos
        if signed_by_header:
            try:
                verify(cos.credentials, req.method, req.raw_path, req.query, req.headers,
                       other_paths=req.signed_paths[1:])
            except SignatureError as err:
                raise CosError(err.status, err.code, err.message) from None
        if req.region is not None and req.region != cos.region:
            raise CosError(404, "NoSuchBucket", f"The specified bucket does not exist in {req.region}.")
        if req.bucket and cos.faults.is_denied(req.bucket, op, req.key or ""):
            raise CosError(403, "AccessDenied", "Access Denied.")
        fault = cos.faults.draw()
        if fault is not None:
            cos.counters.add_injected()
            raise CosError(*fault)

    def _forward(self, environ: Dict[str, Any], req: CosRequest, op: str, request_id: str
                 ) -> Tuple[int, Dict[str, str], bytes]:
        cos = self._cos
        pending = self._answers.before(environ, req, op)
        if pending.answer is not None:
            if op == "AppendObject" and cos.append_events:   # off by default: not in doc 583/9707
                self._publish(req, op, request_id, pending.answer[1])
            return pending.answer
        headers = translate_headers(req, cos)
        if op == "DeleteObject" and not cos.delete_honours_if_match:
            for name in [n for n in headers if n.startswith("if-")]:
                del headers[name]   # COS's DELETE Object documents no conditional header
        claim = (op in _FORBID_OVERWRITE_OPS
                 and req.headers.get("x-cos-forbid-overwrite", "").lower() == "true"
                 and not cos.versioning_ever_enabled(req.bucket))
        if claim:
            with self._claims:
                if cos.store.find(req.bucket, req.key) is not None:
                    raise CosError(409, "FileAlreadyExists", "The object you put already exists.")
                status, moto_headers, body = self._call(environ, req, op, headers)
        else:
            status, moto_headers, body = self._call(environ, req, op, headers)

        out = translate_response_headers(moto_headers, cos.names)
        if status >= 400:
            parsed = parse_error(body) or _STATUS_ERRORS.get(status, ("InternalError", ""))
            if req.method == "HEAD":
                return status, out, b""
            out = {"Content-Type": "application/xml"}
            return status, out, error_body(parsed[0], parsed[1], req.resource, request_id,
                                           new_trace_id())
        body = self._answers.after(req, op, pending, out, body)
        if not body and op not in ("GetObject", "HeadObject"):
            for name in [n for n in out if n.lower() == "content-type"]:
                del out[name]   # Flask's text/html default on empty answers; COS sends none
        if op == "GetObject":
            cos.counters.add_bytes_read(len(body))
            return status, out, body
        if op == "HeadObject":
            original = dict((k.lower(), v) for k, v in moto_headers)
            size = cos.store.size_of(req.bucket, req.key, int(original.get("content-length", 0)))
            out["Content-Length"] = str(size)
            return status, out, b""
        if body:
            body = translate_xml_body(
                body, cos.names, location=self._location(req) if op == "CompleteMultipartUpload" else None,
                url_encoded_keys=req.query.get("encoding-type") == "url",
                size_of=(lambda key: cos.simulated_size(req.bucket, key))
                if op in ("GetBucket", "GetBucketObjectVersions") else None)
        if op == "InitiateMultipartUpload" and status == 200:
            note_initiation(cos, body)
        if op in CREATION_EVENTS and status == 200 and (op != "CopyObject" or b"<ETag>" in body):
            self._publish(req, op, request_id, out)
        return status, out, body

    def _post_object(self, environ: Dict[str, Any], req: CosRequest, request_id: str
                     ) -> Tuple[int, Dict[str, str], bytes]:
        """A form upload: verify its policy signature, store it, answer as COS does, fire `Post`."""
        cos = self._cos
        req.body_read = True
        fields, data, filename = read_form(environ)
        if "key" not in fields:
            raise CosError(400, "InvalidArgument", "PostObject form has no key field")
        fields["key"] = fields["key"].replace("${filename}", filename)
        verify_post(cos.credentials, fields, req.bucket, len(data))
        cos.limits.check_form(fields)
        req.key = fields["key"]
        tags = tagging.check_form(fields)
        if not cos.bucket_exists(req.bucket):
            raise CosError(404, "NoSuchBucket", "The specified bucket does not exist.")
        new_key = store_post(cos.moto_backend(), cos.names.to_moto(req.bucket), fields, data, tags)
        headers = {"ETag": new_key.etag, "Location": "http://" + self._location(req),
                   CRC_HEADER: str(self._answers.crcs.of(new_key))}
        if new_key.version_id not in (None, "null"):
            headers["x-cos-version-id"] = str(new_key.version_id)
        requested = fields.get("success_action_status", "")
        status = int(requested) if requested in ("200", "201", "204") else 204
        body = b""
        if status == 201:
            body = ("<PostResponse><Location>http://%s</Location><Bucket>%s</Bucket><Key>%s</Key>"
                    "<ETag>%s</ETag></PostResponse>" % (
                        escape(self._location(req)), escape(req.bucket), escape(req.key),
                        escape(new_key.etag))).encode("utf-8")
            headers["Content-Type"] = "application/xml"
        self._publish(req, "PostObject", request_id, headers)
        return status, headers, body

    def _location(self, req: CosRequest) -> str:
        return f"{req.bucket}.cos.{self._cos.region}.myqcloud.com/{quote(req.key, safe='/-_.~')}"

    def _call(self, environ: Dict[str, Any], req: CosRequest, op: str, headers: Dict[str, str]
              ) -> Tuple[int, List[Tuple[str, str]], bytes]:
        """moto's answer: from the backend directly when the fast path takes it, else from its app."""
        if self._fast is not None:
            answer = self._fast.answer(environ, req, op, headers, moto_query(req.query_string))
            if answer is not None:
                return answer
        return self._call_moto(environ, req, headers)

    def _call_moto(self, environ: Dict[str, Any], req: CosRequest, headers: Dict[str, str]
                   ) -> Tuple[int, List[Tuple[str, str]], bytes]:
        env = {k: v for k, v in environ.items()
               if not k.startswith("HTTP_") and k not in ("CONTENT_TYPE", "CONTENT_LENGTH")}
        for name, value in headers.items():
            key = name.upper().replace("-", "_")
            env[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key] = value
        path = "/"
        if req.bucket:
            path += self._cos.names.to_moto(req.bucket)
            if req.key:
                path += "/" + req.key
        env["PATH_INFO"] = path.encode("utf-8").decode("latin-1")
        query = moto_query(req.query_string)
        env["QUERY_STRING"] = query
        raw = quote(path, safe="/-_.~")
        env["RAW_URI"] = env["REQUEST_URI"] = raw + (f"?{query}" if query else "")
        captured: Dict[str, Any] = {}

        def capture(status: str, response_headers: List[Tuple[str, str]], exc_info: Any = None):
            captured["status"], captured["headers"] = status, response_headers
            return lambda data: None

        req.body_read = True
        result = self._moto(env, capture)
        try:
            body = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        return int(captured["status"].split(" ", 1)[0]), captured["headers"], body

    def _publish(self, req: CosRequest, op: str, request_id: str, headers: Dict[str, str]) -> None:
        cos = self._cos
        version = headers.get("x-cos-version-id")
        obj = cos.store.find(req.bucket, req.key, version)
        if obj is None:
            return
        if cos.clock_offset:   # written at COS's clock, which clock_offset moves (server.py)
            obj.last_modified = datetime.datetime.fromtimestamp(cos.clock(), datetime.timezone.utc).replace(tzinfo=None)
        if op == "CompleteMultipartUpload":
            date_completed(cos, req.query.get("uploadId", ""), obj)
        meta = obj.metadata
        content_type = meta.get("content-type", "")
        user_meta = {"x-cos-meta-" + k[len("x-amz-meta-"):]: v for k, v in meta.items()
                     if k.lower().startswith("x-amz-meta-")}
        vid = str(obj.version_id) if obj.version_id not in (None, "null") else None
        sent = threading.Event()
        req.after_response.append(sent.set)
        cos.events.publish(ObjectCreated(
            bucket=req.bucket, key=req.key, size=cos.store.size_of(req.bucket, req.key, obj.size),
            event_name=f"cos:ObjectCreated:{CREATION_EVENTS[op]}", request_id=request_id,
            version_id=vid,
            content_type="" if content_type == _MOTO_DEFAULT_CONTENT_TYPE else content_type,
            user_meta=user_meta, authorization=req.headers.get("authorization", ""),
            source_ip=req.source_ip, time=int(cos.clock())), sent)

    @staticmethod
    def _drain(environ: Dict[str, Any], req: CosRequest) -> None:
        """Read an unread request body, so the client is not cut off mid-upload by our answer."""
        if req.body_read:
            return
        length = content_length(environ)
        if length <= 0 or length > _DRAIN_LIMIT:
            return
        stream = environ.get("wsgi.input")
        if stream is None:
            return
        try:
            while length > 0:
                chunk = stream.read(min(length, 1 << 20))
                if not chunk:
                    break
                length -= len(chunk)
        except Exception:   # the client went away; nothing left to protect
            pass
