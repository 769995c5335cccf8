"""The gateway's session reads the environment (proxies, NO_PROXY, CA bundle) once per host, and
answers exactly what requests itself would."""
from __future__ import annotations

import requests
import requests.sessions

from cosguard.infra.sdk_session import session as _session

URLS = ["http://intake-1250000000.cos.ap-guangzhou.myqcloud.com/a.txt",
        "https://intake-1250000000.cos.ap-guangzhou.myqcloud.com/b.txt?tagging",
        "https://intake-1250000000.ci.ap-guangzhou.myqcloud.com/virus/detect",
        "http://127.0.0.1:8080/x"]


def _settings(session, url, proxies=None):
    """As Session.request asks: a fresh dict each time (requests fills it in place)."""
    return session.merge_environment_settings(url, dict(proxies or {}), None, None, None)


def test_same_answers_as_requests_under_proxy_variables(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("HTTPS_PROXY", "http://secure-proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,ci.ap-guangzhou.myqcloud.com")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    ours, plain = _session(4), requests.Session()
    for url in URLS:
        for proxies in (None, {"http": "http://explicit.example:1"}, {"no_proxy": "myqcloud.com"}):
            for _ in range(2):   # the second answer comes from the cache
                assert _settings(ours, url, proxies) == _settings(plain, url, proxies), (url, proxies)
    assert _settings(ours, URLS[0])["proxies"]["http"] == "http://proxy.example:3128"
    assert "http" not in _settings(ours, URLS[3])["proxies"]          # NO_PROXY still bypasses
    assert _settings(ours, URLS[1])["verify"] == "/etc/ssl/certs/ca-certificates.crt"


def test_environment_is_read_once_per_host(monkeypatch):
    calls = []
    real = requests.sessions.get_environ_proxies
    monkeypatch.setattr(requests.sessions, "get_environ_proxies",
                        lambda url, no_proxy=None: (calls.append(url), real(url, no_proxy))[1])
    session = _session(4)
    for _ in range(50):
        _settings(session, URLS[0])
        _settings(session, URLS[1])
    assert len(calls) == 2


def test_a_caller_changing_its_answer_does_not_change_the_next(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    session = _session(4)
    first = _settings(session, URLS[0])
    first["proxies"]["http"] = "http://tampered.example:1"
    assert _settings(session, URLS[0])["proxies"]["http"] == "http://proxy.example:3128"


def test_an_answer_without_a_charset_is_read_as_utf8_without_detection(monkeypatch):
    """The SDK reads every error body with `response.text`: no charset detection on each."""
    import requests.models

    from cosguard.local.cos import LocalCos

    detections = []
    monkeypatch.setattr(requests.models.Response, "apparent_encoding",
                        property(lambda self: detections.append(1) or "ascii"))
    with LocalCos() as cos:
        session = _session(4)
        answer = session.get(f"{cos.endpoint}/missing-key", headers={"Host": "nobucket-1250000000.cos.ap-guangzhou.myqcloud.com"})
        assert answer.status_code >= 400 and "<Error>" in answer.text
        assert answer.encoding == "utf-8" and detections == []
        assert requests.get(answer.url, headers={"Host": "nobucket-1250000000.cos.ap-guangzhou.myqcloud.com"}).text
        assert detections == [1]   # a plain session still detects: the test can tell them apart
