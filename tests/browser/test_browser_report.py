"""`cosguard report --html` in a real headless Chromium, checked as a person would: every section
is there, the numbers the charts draw are the ledger's (each SVG mark carries its count), the page
logs nothing to the console and asks the network for nothing (every request Chromium would make
goes to a recording proxy, loopback included), and uploader text in it is text. A screenshot is
saved as a test artefact: $COSGUARD_ARTEFACTS or artefacts/ (git-ignored), its path printed.

Needs Debian's chromium (`.ci/setup-browser`); skipped without it on a developer's machine, a
failure when CI is set.
"""
from __future__ import annotations

import json
import os
import shutil
import socketserver
import subprocess
import tempfile
import threading
from html.parser import HTMLParser
from pathlib import Path
from typing import Dict, List

import pytest
from qcloud_cos import CosConfig, CosS3Client

from cosguard.cli import main as cli
from cosguard.local.deployment import LocalDeployment
from cosguard.local.samples import clean_text, eicar

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ROOT = Path(__file__).resolve().parents[2]
INTAKE, JAIL = "reportintake-1250000000", "reportjail-1250000000"
HOSTILE = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>.com"
BROWSER_SERVICES = ("clients2.google.com", "update.googleapis.com", "accounts.google.com",
                    "edgedl.me.gvt1.com", "redirector.gvt1.com", "safebrowsing.googleapis.com")
SECTIONS = ["verdicts", "latency", "viruses", "pending", "human", "quarantine", "restores", "rescans", "cost"]
QUIET = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-domain-reliability",
         "--no-pings", "--hide-scrollbars", "--disable-features=Translate,OptimizationHints,MediaRouter",
         "--enable-logging=stderr", "--v=0"]


def _require_browser() -> None:
    if CHROMIUM:
        return
    reason = "browser test needs chromium (apt-get install chromium); .ci/setup-browser installs it"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason)
    pytest.skip(reason)


class Proxy(socketserver.ThreadingTCPServer):
    """Chromium's only way out: records each request line (or CONNECT) and refuses it."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        self.seen: List[str] = []

        class Handler(socketserver.StreamRequestHandler):
            def handle(handler):
                line = handler.rfile.readline(8192).decode("latin-1").strip()
                if line:
                    self.seen.append(line)
                handler.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()

    @property
    def flags(self) -> List[str]:
        return [f"--proxy-server=http://127.0.0.1:{self.server_address[1]}", "--proxy-bypass-list=<-loopback>"]


class Marks(HTMLParser):
    """What the rendered DOM holds: sections, each chart's marks, figures, and the page's text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.sections: List[str] = []
        self.charts: Dict[str, List[Dict[str, str]]] = {}
        self.figures: Dict[str, str] = {}
        self.tags = set()
        self.text: List[str] = []
        self._chart = ""

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        self.tags.add(tag)
        if "data-section" in attrs:
            self.sections.append(attrs["data-section"])
        if tag == "svg" and "data-chart" in attrs:
            self._chart = attrs["data-chart"]
            self.charts[self._chart] = []
        elif "data-count" in attrs and self._chart:
            self.charts[self._chart].append(attrs)
        if "data-figure" in attrs:
            self.figures[attrs["data-figure"]] = attrs["data-value"]

    def handle_endtag(self, tag):
        if tag == "svg":
            self._chart = ""

    def handle_data(self, data):
        self.text.append(data)


def _chromium(proxy: Proxy, profile: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *QUIET, *proxy.flags, f"--user-data-dir={profile}", *argv],
                          capture_output=True, text=True, timeout=120)


def _artefacts() -> Path:
    where = Path(os.environ.get("COSGUARD_ARTEFACTS") or ROOT / "artefacts")
    where.mkdir(parents=True, exist_ok=True)
    return where


def test_the_report_in_chromium_shows_the_ledgers_numbers_and_fetches_nothing(tmp_path, capsys):
    _require_browser()
    with LocalDeployment([INTAKE], quarantine_bucket=JAIL, scan_delay=0.05, retry_delays=(0.2, 0.2)) as deployment:
        cos = deployment.cloud.cos
        client = CosS3Client(CosConfig(Region=cos.region, SecretId=cos.credentials.secret_id,
                                       SecretKey=cos.credentials.secret_key, Token=cos.credentials.token,
                                       Scheme="http", IP="127.0.0.1", Port=cos.port))
        keys = [f"docs/clean-{i}.txt" for i in range(6)] + [f"bad/eicar-{i}.com" for i in range(3)] + [HOSTILE]
        for key in keys:
            client.put_object(Bucket=INTAKE, Key=key, Body=eicar() if key.endswith(".com") else clean_text())
        assert deployment.wait_idle(60)
        env = tmp_path / "cosguard.env"
        deployment.write_env_file(str(env))
        page = tmp_path / "report.html"
        capsys.readouterr()
        code = cli(["report", "--env-file", str(env), "--html", str(page), "--json"])
        ledger = json.loads(capsys.readouterr().out)
    assert code == 0 and ledger["totals"]["clean"] == 6 and ledger["totals"]["infected"] == 4, ledger["totals"]

    proxy, profile = Proxy(), tempfile.mkdtemp(prefix="cosguard-chromium-")
    try:
        dumped = _chromium(proxy, profile, "--dump-dom", page.as_uri())
        shot = _artefacts() / "report.png"
        _chromium(proxy, profile, "--window-size=1280,3400", f"--screenshot={shot}", page.as_uri())
    finally:
        proxy.shutdown()
        proxy.server_close()
        shutil.rmtree(profile, ignore_errors=True)
    print(f"screenshot of the report: {shot}")
    assert shot.is_file() and shot.stat().st_size > 10_000
    # Chromium's own services (clock, component updates, accounts) call out whatever it shows; the page
    # names none of their hosts, so it caused none of those requests: every other one would be its
    page_requests = [line for line in proxy.seen if not any(host in line for host in BROWSER_SERVICES)]
    assert page_requests == [], "\n".join(page_requests)                   # no network request by the page
    assert not [host for host in BROWSER_SERVICES if host in page.read_text(encoding="utf-8")]
    console = [line for line in dumped.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console                                             # no console message, no CSP report

    dom = Marks()
    dom.feed(dumped.stdout)
    assert dom.sections == SECTIONS
    drawn: Dict[str, int] = {}
    for mark in dom.charts["verdicts all buckets"]:
        drawn[mark["data-series"]] = drawn.get(mark["data-series"], 0) + int(mark["data-count"])
    assert drawn == {v: n for v, n in ledger["totals"].items() if n}
    assert {m["data-label"]: int(m["data-count"]) for m in dom.charts["top viruses"]} == {
        v["name"]: v["count"] for v in ledger["viruses"]}
    assert sum(int(m["data-count"]) for m in dom.charts["latency histogram"]) == ledger["upload_latency"]["count"]
    assert {k: dom.figures[f"verdict-{k}"] for k in ledger["totals"]} == {k: str(n) for k, n in ledger["totals"].items()}
    assert dom.figures["upload-p95"] == f"{ledger['upload_latency']['p95']} s"
    assert dom.figures["quarantine-objects"] == str(len(ledger["quarantine"])) == "4"
    # the hostile key is on the page as text; the DOM holds no element it names
    assert HOSTILE in "".join(dom.text) and not {"script", "img"} & dom.tags
