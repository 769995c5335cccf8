"""Issue 23: the operator report is a page a person opens in a browser, and keys, virus names and
reasons in it are uploader (or CI) text. None of it may become markup: no element, attribute,
script or link an uploader wrote; each shows as the text it is. The page also forbids every script
and fetch by its Content-Security-Policy (tests/browser/test_browser_report.py renders it in Chromium)."""
from __future__ import annotations

from html.parser import HTMLParser

from cosguard.local.samples import eicar

HOSTILE = [
    "<script>alert(1)</script>.com",
    "\"><img src=x onerror=alert(document.domain)>.com",
    "'><svg onload=alert(1)><a href=\"http://phish.example/\">x</a>.com",
    "</title></style><script>fetch('http://evil.example/')</script>.com",
    "bidi\u202emoc.exe",
]
STUCK = "<iframe src=\"http://evil.example/\"></iframe>stuck.txt"
OURS = {"html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "p", "main", "nav", "a",
        "section", "div", "b", "table", "thead", "tbody", "tr", "th", "td", "code", "svg", "rect", "line",
        "text", "circle", "polyline"}


class Page(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.attributes, self.text, self.links = set(), set(), [], []
        self.stack = []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)
        self.links += [value for name, value in attrs if name in ("href", "src", "xlink:href")]

    def handle_data(self, data):
        self.text.append(data)


def test_uploader_text_shows_as_text_and_nothing_of_it_is_markup(stack, capsys, tmp_path):
    s = stack()
    s.cloud.ci.faults.stuck_jobs = {STUCK}
    for key in HOSTILE:
        s.put(key, eicar())
    s.put(STUCK, b"never finishes")
    s.scan()
    s.settle()
    page = tmp_path / "report.html"
    code, doc, err = s.cli(capsys, tmp_path, "report", "--html", str(page))
    assert code == 0, err
    # the JSON keeps the exact keys (JSON escapes them)
    assert sorted(o["key"] for v in doc["viruses"] for o in v["objects"]) == sorted(HOSTILE)
    assert [p["key"] for p in doc["pending"]] == [STUCK]
    html = page.read_text(encoding="utf-8")
    parsed = Page()
    parsed.feed(html)
    assert parsed.tags <= OURS, parsed.tags - OURS                       # no script, img, iframe, svg onload
    assert not [a for a in parsed.attributes if a.startswith("on")]     # no event handler at all
    assert all(link.startswith("#") for link in parsed.links), parsed.links   # nothing points out of the page
    shown = "".join(parsed.text)
    for key in HOSTILE[:4] + [STUCK]:
        assert key in shown, key                                         # each key shown, as its text
    assert "bidi\\u202emoc.exe" in shown and "\u202e" not in html      # a bidi override written out
    assert "Content-Security-Policy" in html and "default-src 'none'" in html


def test_keys_found_on_rescan_show_as_text(stack, capsys, tmp_path):
    """The Rescans section lists what a rescan found infected: uploader keys, escaped like the rest."""
    import time

    from cosguard.bulk.rescan import Rescan, RescanOptions
    s = stack()
    bodies = {key: f"clean at upload {i}\n".encode() for i, key in enumerate(HOSTILE)}
    for key, body in bodies.items():
        s.put(key, body)
    s.scan()
    s.settle()
    for key, body in bodies.items():   # CI's signatures update: each of them is known now
        s.cloud.ci.engine.signatures.add_bytes(body, "<b>Strain</b>\"onmouseover=alert(3)")
    assert Rescan(s.runtime, RescanOptions(bucket=s.intake, before=time.time() + 1)).run().counts == {
        "rescanned": len(HOSTILE)}
    s.settle()
    page = tmp_path / "report.html"
    code, doc, err = s.cli(capsys, tmp_path, "report", "--html", str(page))
    assert code == 0, err
    assert doc["viruses"] == [] and doc["rescans"]["found_total"] == len(HOSTILE)
    assert sorted(f["key"] for f in doc["rescans"]["found"]) == sorted(HOSTILE)
    html = page.read_text(encoding="utf-8")
    section = html.split('data-section="rescans"', 1)[1].split("</section>", 1)[0]
    parsed = Page()
    parsed.feed(html)
    assert parsed.tags <= OURS, parsed.tags - OURS
    assert not [a for a in parsed.attributes if a.startswith("on")]
    assert all(link.startswith("#") for link in parsed.links), parsed.links
    shown = Page()
    shown.feed(section)
    text = "".join(shown.text)
    for key in HOSTILE[:4]:
        assert key in text, key                                          # each key shown in the section, as text
    assert "<b>Strain</b>\"onmouseover=alert(3)" in text and "<b>Strain" not in section
    assert "bidi\\u202emoc.exe" in text and "\u202e" not in html
