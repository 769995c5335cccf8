"""A WSGI app served on a background thread, on loopback, port 0 picking a free port."""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Dict, Optional
from urllib.parse import quote, urlsplit

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server


def raw_request_path(environ: Dict[str, Any]) -> str:
    """The percent-encoded path of the request line, as the client signed it. For an absolute-form
    request line (`PUT http://host/path?q HTTP/1.1`, sent through an HTTP proxy) just `/path`;
    werkzeug has already copied `host` into the Host header."""
    raw_uri = environ.get("RAW_URI") or environ.get("REQUEST_URI") or quote(
        environ.get("PATH_INFO", "/").encode("latin-1").decode("utf-8", "replace"))
    return urlsplit(raw_uri).path or "/"


class _QuietHandler(WSGIRequestHandler):
    """Werkzeug logs every request to stderr; the local cloud keeps its own counters instead."""

    def log_request(self, *args, **kwargs) -> None:  # noqa: D401
        pass

    def send_response(self, code: int, message: Optional[str] = None) -> None:
        """http.server's, minus `Server: Werkzeug/...`: each app names itself (`tencent-cos`)."""
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    def log(self, type: str, message: str, *args) -> None:  # noqa: A002
        if type == "error":
            logging.getLogger("cosguard_local.http").warning(message, *args)


class ThreadedServer:
    """Serves `app` on `host:port` from a daemon thread until `stop()`."""

    def __init__(self, app: Callable, host: str = "127.0.0.1", port: int = 0):
        self._server: BaseWSGIServer = make_server(
            host, port, app, threaded=True, request_handler=_QuietHandler)
        self._server.daemon_threads = True
        self._thread: Optional[threading.Thread] = None

    @property
    def host(self) -> str:
        return self._server.server_address[0]

    @property
    def port(self) -> int:
        return self._server.server_port

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "ThreadedServer":
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"http:{self.port}",
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
