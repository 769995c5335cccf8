"""The local cloud's HTTP servers keep connections alive (HTTP/1.1), frame every answer, and end
persistent connections when stopped; COSGUARD_LOCAL_KEEPALIVE=0 restores one connection per answer."""
from __future__ import annotations

import http.client

import pytest
import requests
from qcloud_cos import CosS3Client

from cosguard.local.cos import LocalCos
from cosguard.local.httpserver import ThreadedServer


def echo(environ, start_response):
    body = environ["wsgi.input"].read()
    answer = f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']} {len(body)}".encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [answer]


def ignores_body(environ, start_response):
    start_response("403 Forbidden", [("Content-Type", "text/plain")])
    return [b"denied"]


@pytest.fixture
def server():
    started = []

    def start(app, **kwargs):
        started.append(ThreadedServer(app, **kwargs).start())
        return started[-1]
    yield start
    for s in started:
        s.stop()


def test_one_connection_carries_many_requests_with_bodies(server):
    s = server(echo)
    conn = http.client.HTTPConnection(s.host, s.port, timeout=5)
    first_socket = None
    for i, body in enumerate([b"", b"abc", b"x" * 70000, b""]):
        conn.request("PUT" if body else "GET", f"/k{i}", body=body or None)
        answer = conn.getresponse()
        assert answer.status == 200 and answer.getheader("Connection") != "close"
        assert answer.read() == f"{'PUT' if body else 'GET'} /k{i} {len(body)}".encode()
        first_socket = first_socket or conn.sock
        assert conn.sock is first_socket  # not reopened
    conn.close()


def test_an_unread_or_chunked_body_does_not_leak_into_the_next_request(server):
    s = server(ignores_body)
    conn = http.client.HTTPConnection(s.host, s.port, timeout=5)
    conn.request("PUT", "/a", body=b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
    assert conn.getresponse().read() == b"denied"
    conn.request("PUT", "/b", body=iter([b"chunk one", b"chunk two"]), encode_chunked=True,
                 headers={"Transfer-Encoding": "chunked"})
    assert conn.getresponse().read() == b"denied"
    conn.request("GET", "/c")
    third = conn.getresponse()
    assert third.status == 403 and third.read() == b"denied"
    conn.close()


def test_head_answers_keep_the_app_length_and_send_no_body(server):
    def sized(environ, start_response):
        start_response("200 OK", [("Content-Length", "12345")])
        return [b""]
    s = server(sized)
    conn = http.client.HTTPConnection(s.host, s.port, timeout=5)
    conn.request("HEAD", "/big")
    answer = conn.getresponse()
    assert answer.getheader("Content-Length") == "12345" and answer.read() == b""
    conn.request("HEAD", "/big")
    assert conn.getresponse().status == 200
    conn.close()


def test_stop_ends_persistent_connections(server):
    s = server(echo)
    conn = http.client.HTTPConnection(s.host, s.port, timeout=5)
    conn.request("GET", "/")
    assert conn.getresponse().read() == b"GET / 0"
    s.stop()
    assert conn.sock.recv(1) == b""  # the server closed it: nothing answers after stop()
    conn.close()


def test_keep_alive_off_closes_after_each_answer(server, monkeypatch):
    monkeypatch.setenv("COSGUARD_LOCAL_KEEPALIVE", "0")
    s = server(ignores_body)
    conn = http.client.HTTPConnection(s.host, s.port, timeout=5)
    conn.request("GET", "/")
    answer = conn.getresponse()
    assert answer.getheader("Connection") == "close"
    answer.read()
    conn.close()


def test_sdk_requests_to_local_cos_reuse_one_connection():
    bucket = "keepalive-1250000000"
    with LocalCos() as cos:
        cos.create_bucket(bucket)
        session = requests.Session()
        client = CosS3Client(cos.client_config(), retry=0, session=session)
        for i in range(5):
            client.put_object(Bucket=bucket, Key=f"k{i}", Body=b"data")
            client.head_object(Bucket=bucket, Key=f"k{i}")
            client.get_object(Bucket=bucket, Key=f"k{i}")["Body"].get_raw_stream().read()
        pools = list(session.get_adapter("http://").poolmanager.pools._container.values())
        assert sum(p.num_connections for p in pools) == 1
        assert cos.counters["PutObject"] == 5 and cos.counters["GetObject"] == 5


def test_answers_are_not_held_back_by_nagle(server):
    """An answer's head and body are two writes; on a persistent connection with Nagle's algorithm
    the body waited for the client's delayed ACK (40 ms on every GET). The server's side of each
    connection has TCP_NODELAY."""
    import socket

    s = server(echo)
    conn = http.client.HTTPConnection(s.host, s.port, timeout=5)
    conn.request("GET", "/k")
    assert conn.getresponse().read() == b"GET /k 0"
    accepted = list(s._server._open)
    assert len(accepted) == 1
    assert accepted[0].getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    conn.close()


def test_expect_100_continue_is_answered_once(server):
    """A client that waits for `100 Continue` gets it once, then the answer, on the same connection."""
    import socket

    s = server(echo)
    with socket.create_connection((s.host, s.port), timeout=5) as conn:
        conn.sendall(b"PUT /k HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        interim = conn.recv(64)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        conn.sendall(b"abc")
        received = b""
        while not received.endswith(b"PUT /k 3"):
            chunk = conn.recv(4096)
            assert chunk, received
            received += chunk
    assert received.startswith(b"HTTP/1.1 200 ") and b"100 Continue" not in received
