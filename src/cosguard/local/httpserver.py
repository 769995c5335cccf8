"""A WSGI app served on a background thread, on loopback, port 0 picking a free port."""
from __future__ import annotations

import logging
import threading
from typing import Callable, Optional

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server


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
