"""An HTTP endpoint that does what an SCF function URL does: request → event dict → handler →
returned dict → HTTP answer (reference §3.6)."""
from __future__ import annotations

import base64
import json
import uuid
from typing import Any, Callable, Dict

from werkzeug.wrappers import Request, Response

from .httpserver import ThreadedServer

Handler = Callable[[Dict[str, Any], Dict[str, Any]], Any]


def request_to_event(request: Request, max_body: int = 6 * 1024 * 1024) -> Dict[str, Any]:
    """The function-URL event: lower-cased headers, `queryString`, body as text (base64 if binary);
    at most 6 MB of the body, SCF's limit for a synchronous request (doc 583/11637)."""
    raw = request.get_data(cache=False)[: max_body + 1]
    try:
        body, encoded = raw.decode("utf-8"), False
    except UnicodeDecodeError:
        body, encoded = base64.b64encode(raw).decode("ascii"), True
    event: Dict[str, Any] = {
        "body": body,
        "headers": {k.lower(): v for k, v in request.headers.items()},
        "httpMethod": request.method,
        "path": request.path,
        "queryString": {k: v for k, v in request.args.items()},
        "requestContext": {"sourceIp": request.remote_addr or "", "requestId": str(uuid.uuid4())},
    }
    if encoded:
        event["isBase64Encoded"] = True
    return event


def answer_to_response(answer: Any) -> Response:
    """SCF's integrated response: a dict with statusCode/headers/body; anything else is JSON."""
    if isinstance(answer, dict) and "statusCode" in answer:
        body = answer.get("body", "")
        if answer.get("isBase64Encoded"):
            body = base64.b64decode(body)
        headers = {k: (", ".join(v) if isinstance(v, list) else str(v))
                   for k, v in (answer.get("headers") or {}).items()}
        return Response(body, status=int(answer["statusCode"]), headers=headers)
    return Response(json.dumps(answer, default=str), status=200, mimetype="application/json")


class FunctionUrlServer:
    """Serves `handler(event, context)` over HTTP on loopback, one request one invocation."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0,
                 context_factory: Callable[[], Dict[str, Any]] = lambda: {}):
        self.handler = handler
        self.context_factory = context_factory
        self.requests = 0
        self._server = ThreadedServer(self._app, host, port)

    def _app(self, environ, start_response):
        request = Request(environ)
        self.requests += 1
        try:
            answer = self.handler(request_to_event(request), self.context_factory())
            response = answer_to_response(answer)
        except Exception:  # noqa: BLE001 - SCF answers an unhandled error with a 502, no trace
            response = Response(json.dumps({"errorCode": -1, "errorMessage": "function error"}),
                                status=502, mimetype="application/json")
        return response(environ, start_response)

    @property
    def url(self) -> str:
        return self._server.endpoint + "/"

    def start(self) -> "FunctionUrlServer":
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()
