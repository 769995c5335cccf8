"""A WSGI app served on a background thread, on loopback, port 0 picking a free port.

Connections persist (HTTP/1.1 keep-alive), as COS's and CI's do: werkzeug's development server
closes every connection after one answer, so each SDK request paid a TCP handshake and a new
server thread. `keep_alive=False` (or COSGUARD_LOCAL_KEEPALIVE=0) restores that behaviour, for
benchmarks that compare the two.
"""
from __future__ import annotations

import http.client
import io
import logging
import os
import re
import socket
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Set, Tuple
from urllib.parse import quote, urlsplit

from werkzeug.serving import BaseWSGIServer, DechunkedInput, WSGIRequestHandler, make_server

IDLE_SECONDS = 30.0   # an idle persistent connection is closed after this (its thread ends)
POLL_SECONDS = 0.01   # how soon serve_forever sees stop(): a test suite starts and stops thousands of servers
_NO_BODY = {204, 304}
_ONE_WRITE = 256 * 1024   # answers up to this size go out in a single write
_HEADER = re.compile(r"[\041-\071\073-\176]*:")   # the email parser's header-line test
_MAX_LINE, _MAX_HEADERS = 65536, 100                 # http.client's limits


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

    def date_time_string(self, timestamp: Optional[float] = None) -> str:
        """The `Date` of an answer, from the server's clock (ThreadedServer's `clock`)."""
        if timestamp is None:
            timestamp = getattr(self.server, "clock", time.time)()
        return super().date_time_string(timestamp)

    def send_response(self, code: int, message: Optional[str] = None) -> None:
        """http.server's, minus `Server: Werkzeug/...`: each app names itself (`tencent-cos`)."""
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    def log(self, type: str, message: str, *args) -> None:  # noqa: A002
        if type == "error":
            logging.getLogger("cosguard_local.http").warning(message, *args)


class _KeepAliveHandler(_QuietHandler):
    """One WSGI request per `run_wsgi`, the connection kept for the next one.

    werkzeug closes every connection because http.server cannot tell where an unread request body
    ends; here the body is read in full before the app runs (so the next request line is never
    mistaken for it) and the answer is buffered, so it always goes out with its Content-Length.
    """

    protocol_version = "HTTP/1.1"
    timeout = IDLE_SECONDS
    server: _Server   # the only server it is made for

    def setup(self) -> None:
        super().setup()
        try:   # answers are written whole; never hold a segment back waiting for an ACK
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_error(self, format: str, *args) -> None:  # noqa: A002
        if not format.startswith("Request timed out"):  # an idle connection reaching IDLE_SECONDS
            super().log_error(format, *args)

    def parse_request(self) -> bool:
        """http.server's, minus its email-parser pass over the header block (~150 µs a request,
        a fifth of the local COS's own CPU per request). A request line of any other shape than
        `METHOD /path HTTP/1.x` goes to http.server's own parser, which answers its errors."""
        line = self.raw_requestline.decode("iso-8859-1").rstrip("\r\n")
        words = line.split()
        if len(words) != 3 or words[2] not in ("HTTP/1.1", "HTTP/1.0") or words[1].startswith("//"):
            return super().parse_request()
        self.requestline = line
        self.command, self.path, self.request_version = words
        self.close_connection = words[2] != "HTTP/1.1"
        try:
            self.headers = self._parse_headers()
        except http.client.LineTooLong as err:
            self.send_error(431, "Line too long", str(err))
            return False
        except http.client.HTTPException as err:
            self.send_error(431, "Too many headers", str(err))
            return False
        connection = self.headers.get("Connection", "").lower()
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive":
            self.close_connection = False
        if (self.headers.get("Expect", "").lower() == "100-continue" and words[2] == "HTTP/1.1"
                and not self.handle_expect_100()):
            return False
        return True

    def _parse_headers(self) -> http.client.HTTPMessage:
        """The header block as `http.client.parse_headers` returns it (same limits, folding and
        stop at a line that is not a header), read line by line."""
        fields: List[List[str]] = []
        ended = False   # a line that is no header: the email parser takes the rest as body
        count = 0
        while True:
            raw = self.rfile.readline(_MAX_LINE + 1)
            if len(raw) > _MAX_LINE:
                raise http.client.LineTooLong("header line")
            if raw in (b"\r\n", b"\n", b""):
                break
            count += 1
            if count > _MAX_HEADERS:
                raise http.client.HTTPException(f"got more than {_MAX_HEADERS} headers")
            text = raw.decode("iso-8859-1")
            if ended:
                continue
            if text[0] in " \t" and fields:
                fields[-1].append(text)
            elif _HEADER.match(text):
                fields.append([text])
            else:
                ended = True
        message = http.client.HTTPMessage()
        for lines in fields:
            name, _, value = lines[0].partition(":")
            message.set_raw(name, (value.lstrip(" \t") + "".join(lines[1:])).rstrip("\r\n"))
        return message

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return DechunkedInput(self.rfile).read()  # type: ignore[arg-type]  # rfile: a BufferedReader, IO[bytes]
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def run_wsgi(self) -> None:
        # No `100 Continue` here (werkzeug's run_wsgi writes one): parse_request has already sent it
        # through handle_expect_100, and a second one reached the client as a stray interim answer.
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        environ = self.make_environ()
        environ["wsgi.input"] = io.BytesIO(body)
        answer: List[Tuple[str, List[Tuple[str, str]]]] = []

        def start_response(status, headers, exc_info=None):
            answer[:] = [(status, list(headers))]
            return lambda data: chunks.append(data)

        chunks: List[bytes] = []
        try:
            iterable = self.server.app(environ, start_response)
            try:
                chunks.extend(iterable)
            finally:
                if hasattr(iterable, "close"):
                    iterable.close()
        except Exception:  # noqa: BLE001 - answer 500 and log, as werkzeug does
            logging.getLogger("cosguard_local.http").exception("error on %s %s", self.command, self.path)
            answer[:] = [("500 INTERNAL SERVER ERROR", [("Content-Type", "text/plain")])]
            chunks = [b"Internal Server Error"]
            self.close_connection = True
        self._send(answer[0] if answer else ("500 INTERNAL SERVER ERROR", []), b"".join(chunks))

    def _send(self, answer: Tuple[str, List[Tuple[str, str]]], payload: bytes) -> None:
        """Status line, headers and (up to _ONE_WRITE bytes of) body in one write: one segment
        for a small answer instead of a header write, a body write and a flush each."""
        status, headers = answer
        code_text, _, message = status.partition(" ")
        code = int(code_text)
        bodiless = self.command == "HEAD" or code in _NO_BODY or 100 <= code < 200
        self.log_request(code)
        lines = [f"{self.protocol_version} {code} {message}\r\n",
                 f"Date: {self.date_time_string()}\r\n"]
        has_length = False
        for name, value in headers:
            lower = name.lower()
            if lower in ("connection", "transfer-encoding"):
                continue
            if lower == "content-length":
                has_length = True
                if not bodiless and value.strip() != str(len(payload)):
                    value = str(len(payload))   # the framing must match what is sent
            lines.append(f"{name}: {value}\r\n")
        if not has_length and not bodiless:
            lines.append(f"Content-Length: {len(payload)}\r\n")
        if self.close_connection:
            lines.append("Connection: close\r\n")
        lines.append("\r\n")
        head = "".join(lines).encode("latin-1", "strict")
        body = payload if not bodiless else b""
        if len(body) <= _ONE_WRITE:
            self.wfile.write(head + body)
        else:
            self.wfile.write(head)
            self.wfile.write(body)
        self.wfile.flush()


class _Server(BaseWSGIServer):
    """werkzeug's threaded server that also knows its open connections, to close them on stop."""

    multithread = True
    daemon_threads = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._open: Set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request, client_address) -> None:  # ThreadingMixIn's, one thread a connection
        threading.Thread(target=self.process_request_thread, args=(request, client_address),
                         daemon=True).start()

    def process_request_thread(self, request, client_address) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # noqa: BLE001
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._open_lock:
            (self._open.add if open_ else self._open.discard)(connection)

    def close_connections(self) -> None:
        """Persistent connections outlive `shutdown()`: end them, so a stopped server answers nothing."""
        with self._open_lock:
            connections, self._open = list(self._open), set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def switched_on(variable: str) -> bool:
    """An emulator knob read from the environment: on unless set to 0, false, no or off."""
    return os.environ.get(variable, "1").strip().lower() not in ("0", "false", "no", "off")


class ThreadedServer:
    """Serves `app` on `host:port` from a daemon thread until `stop()`; `clock` (default
    time.time) is the server's clock, which every answer's `Date` header reads."""

    def __init__(self, app: Callable, host: str = "127.0.0.1", port: int = 0,
                 keep_alive: Optional[bool] = None, clock: Optional[Callable[[], float]] = None):
        self.keep_alive = switched_on("COSGUARD_LOCAL_KEEPALIVE") if keep_alive is None else keep_alive
        if self.keep_alive:
            self._server: BaseWSGIServer = _Server(host, port, app, handler=_KeepAliveHandler)
        else:
            self._server = make_server(host, port, app, threaded=True, request_handler=_QuietHandler)
        self._server.daemon_threads = True  # type: ignore[attr-defined]  # both are ThreadingMixIn servers
        self._server.clock = clock or time.time  # type: ignore[attr-defined]
        self._thread: Optional[threading.Thread] = None

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])  # (an AF_INET address: its host is a str)

    @property
    def port(self) -> int:
        return self._server.server_port

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "ThreadedServer":
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"http:{self.port}",
                                        kwargs={"poll_interval": POLL_SECONDS}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if isinstance(self._server, _Server):
            self._server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
