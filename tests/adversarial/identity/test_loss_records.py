"""Issue 23: a possible overwrite-race loss (unversioned bucket, COS's DELETE without If-Match:
test_overwrite_race.py stages it) is recorded in the ledger, once however often it is found, so
`cosguard report` (JSON, HTML, summary) and `cosguard status` list it with the command that
resolves it, `cosguard ledger ack ID`, which clears it. A record an uploader plants under `losses/`
is a forged document, never a loss; a hostile key is text on the page, never markup."""
from __future__ import annotations

import copy
import json
import logging
from html.parser import HTMLParser
from typing import Any, Dict, List, Tuple

from cosguard.cli import main as cli
from cosguard.local.samples import clean_text, eicar

HOSTILE = "\"><img src=x onerror=alert(1)><script>alert(2)</script>lost.exe"


class Page(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.attributes, self.text = set(), set(), []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)

    def handle_data(self, data):
        self.text.append(data)


def _lose_a_write(stack, key: str, scan_the_write: bool = False) -> Dict[str, Any]:
    """An infected upload whose callback CI drops; the sweep applies its verdict, and the uploader's
    clean write lands between cosguard's re-check HEAD and its DELETE, which COS does not make
    conditional: the clean write is deleted too (`scan_the_write`: its event is handled while the
    key still holds it). Returns the clean write's upload events."""
    stack.cloud.cos.delete_honours_if_match = False   # COS's documented DELETE (doc 436/7743)
    stack.cloud.ci.faults.drop_callback_rate = 1.0
    stack.put(key, eicar())
    stack.scan()
    stack.settle()
    stack.take_events()
    gateway = stack.runtime(stack.sweep_handler).gateway
    head, calls = gateway.head, []

    def head_then_overwrite(bucket, key_, version_id=None):
        info = head(bucket, key_, version_id)
        calls.append(key_)
        if key_ == key and len(calls) == 2:
            stack.put(key, clean_text())
            if scan_the_write:
                stack.scan()
        return info
    gateway.head = head_then_overwrite
    assert stack.sweep()["applied"] == {"quarantined": 1}
    gateway.head = head
    assert stack.body(key) is None
    return stack.take_events()


def _ledger(stack):
    return stack.runtime(stack.sweep_handler).sweeper.ledgers()[0]


def _records(stack) -> List[str]:
    """The keys under the ledger's losses/, listed over HTTP."""
    ledger = _ledger(stack)
    listed = stack.cos.list_objects(Bucket=ledger.bucket, Prefix=ledger.losses_prefix())
    return [item["Key"] for item in listed.get("Contents", [])]


def _cli(capsys, stack, tmp_path, *argv: str) -> Tuple[int, str]:
    """(exit code, stdout); stderr is kept in `_cli.err`."""
    env = tmp_path / "cosguard.env"
    env.write_text("".join(f"{k}={v}\n" for k, v in stack.env.items()))
    capsys.readouterr()
    code = cli([*argv, "--env-file", str(env)])
    out, _cli.err = capsys.readouterr()
    return code, out


def _report(capsys, stack, tmp_path, *argv: str) -> Tuple[int, Dict[str, Any]]:
    code, out = _cli(capsys, stack, tmp_path, "report", "--json", *argv)
    return code, json.loads(out)


def _losses(doc: Dict[str, Any]) -> List[Dict[str, Any]]:
    return [h for h in doc["needs_human"] if h["kind"] == "possible write loss"]


def test_a_loss_found_twice_is_one_record_listed_with_its_command_until_acknowledged(stack, capsys, tmp_path):
    events = _lose_a_write(stack, "tight.exe")
    stack.scan(copy.deepcopy(events))
    stack.scan(events)                       # COS delivers the lost write's event again
    assert len(_records(stack)) == 1
    assert len([n for n in stack.sink.received if n.get("kind") == "possible_loss"]) == 1   # told once

    code, doc = _report(capsys, stack, tmp_path)
    assert code == 1 and doc["losses_total"] == 1
    [loss] = _losses(doc)
    assert loss["bucket"] == stack.intake and loss["key"] == "tight.exe" and len(loss["id"]) == 40
    assert loss["command"] == f"cosguard ledger ack {loss['id']} --bucket {stack.intake}"
    [told] = [n for n in stack.sink.received if n.get("kind") == "possible_loss"]
    assert told["detail"].endswith(f"; once dealt with: {loss['command']}")   # the notification says how to clear it
    assert "re-upload" in loss["reason"] and loss["when"].endswith("Z")
    assert not [h for h in doc["needs_human"] if h["kind"] == "forged document"]

    page = tmp_path / "report.html"
    _cli(capsys, stack, tmp_path, "report", "--html", str(page))
    html = page.read_text(encoding="utf-8")
    assert loss["command"] in html and "the ledger keeps no" not in html
    code, out = _cli(capsys, stack, tmp_path, "report")
    assert code == 1 and loss["id"] in out and "possible write loss" in out     # the summary names it

    code, out = _cli(capsys, stack, tmp_path, "status", "--json")
    status = json.loads(out)
    assert code == 1 and status["counts"]["possible write losses"] == 1
    assert [(p["key"], p["command"]) for p in status["possible_losses"]] == [("tight.exe", loss["command"])]
    code, out = _cli(capsys, stack, tmp_path, "status")
    assert code == 1 and loss["command"] in out and "tight.exe" in out      # whole, in the text too

    code, out = _cli(capsys, stack, tmp_path, *loss["command"].split()[1:], "--json")
    assert code == 0 and json.loads(out)["state"] == "acknowledged" and json.loads(out)["key"] == "tight.exe"
    assert _records(stack) == []
    code, doc = _report(capsys, stack, tmp_path)
    assert code == 0 and doc["losses_total"] == 0 and _losses(doc) == []
    code, out = _cli(capsys, stack, tmp_path, "status", "--json")
    assert code == 0 and json.loads(out)["possible_losses"] == []
    code, _ = _cli(capsys, stack, tmp_path, *loss["command"].split()[1:])
    assert code == 1 and "no possible write loss" in _cli.err   # already acknowledged


def test_a_loss_found_by_the_lost_writes_own_verdict_is_recorded_once(stack, capsys, tmp_path):
    """The lost write was submitted inside the window; its verdict finds it gone (verdict.py)."""
    _lose_a_write(stack, "late.exe", scan_the_write=True)
    stack.settle()
    assert stack.sweep()["applied"] == {"gone": 1}
    [record] = _records(stack)
    code, doc = _report(capsys, stack, tmp_path)
    [loss] = _losses(doc)
    assert loss["key"] == "late.exe" and record.endswith(f"/{stack.intake}/{loss['id']}.json")


def test_a_hostile_key_shows_as_text(stack, capsys, tmp_path):
    stack.scan(_lose_a_write(stack, HOSTILE))
    code, doc = _report(capsys, stack, tmp_path)
    [loss] = _losses(doc)
    assert loss["key"] == HOSTILE
    page = tmp_path / "report.html"
    _cli(capsys, stack, tmp_path, "report", "--html", str(page))
    html = page.read_text(encoding="utf-8")
    parsed = Page()
    parsed.feed(html)
    assert not {"img", "script"} & parsed.tags
    assert not [a for a in parsed.attributes if a.startswith("on")]
    assert HOSTILE in "".join(parsed.text) and HOSTILE not in html    # shown as its text, escaped
    assert loss["command"] in html


def test_a_planted_loss_record_is_a_forged_document_never_a_loss(stack, capsys, tmp_path):
    """Where uploaders can write the state prefix: a record they write, or a genuine one they copy
    under another name, fails its seal; the report shows it as forged (with the command that deletes
    it), never as a loss, and `ledger ack` deletes it."""
    stack.scan(_lose_a_write(stack, "real.exe"))
    [genuine] = _records(stack)
    ledger = _ledger(stack)
    base = f"{ledger.losses_prefix()}{stack.intake}/"
    body = stack.cos.get_object(Bucket=ledger.bucket, Key=genuine)["Body"].get_raw_stream().read()
    planted = {base + "a" * 40 + ".json": json.dumps({"bucket": stack.intake, "key": "invented.exe", "id": "a" * 40,
                                                      "detail": "re-upload invented.exe", "recorded_at": 1}),
               base + "b" * 40 + ".json": body.decode("utf-8")}        # a genuine record under another name
    for key, text in planted.items():
        stack.cos.put_object(Bucket=ledger.bucket, Key=key, Body=text.encode("utf-8"))
    code, doc = _report(capsys, stack, tmp_path)
    assert code == 1 and doc["losses_total"] == 3
    assert [loss["key"] for loss in _losses(doc)] == ["real.exe"]
    forged = {h["key"]: h["command"] for h in doc["needs_human"] if h["kind"] == "forged document"}
    assert set(forged) == set(planted)
    assert forged[base + "a" * 40 + ".json"].endswith(f"cosguard ledger ack {'a' * 40} --bucket {stack.intake}")
    code, out = _cli(capsys, stack, tmp_path, "ledger", "ack", "a" * 40, "--json")
    assert code == 0 and json.loads(out)["state"].startswith("unreadable"), (out, _cli.err)
    code, out = _cli(capsys, stack, tmp_path, "ledger", "ack", "../../closed/x", "--json")
    assert code == 2 and json.loads(out)["acknowledged"] is False


def test_a_record_planted_at_the_losses_own_name_is_replaced_when_it_is_found_again(stack, capsys, tmp_path):
    events = _lose_a_write(stack, "again.exe")
    stack.scan(copy.deepcopy(events))
    [genuine] = _records(stack)
    ledger = _ledger(stack)
    stack.cos.put_object(Bucket=ledger.bucket, Key=genuine,
                         Body=json.dumps({"bucket": stack.intake, "key": "again.exe", "detail": "nothing lost"}))
    stack.scan(events)   # redelivered: the forged record is replaced by a sealed one
    code, doc = _report(capsys, stack, tmp_path)
    [loss] = _losses(doc)
    assert loss["key"] == "again.exe" and "re-upload" in loss["reason"]
    assert not [h for h in doc["needs_human"] if h["kind"] == "forged document"]


def test_the_report_lists_the_records_and_reads_only_the_newest_detail_ones(stack, capsys, tmp_path):
    for key in ("one.exe", "two.exe", "three.exe"):
        stack.scan(_lose_a_write(stack, key))
    assert len(_records(stack)) == 3
    counters = stack.cloud.cos.counters

    def gets(*argv: str) -> Tuple[Dict[str, Any], int]:
        before = counters.snapshot().get("GetObject", 0)
        _, doc = _report(capsys, stack, tmp_path, *argv)
        return doc, counters.snapshot().get("GetObject", 0) - before
    doc, made = gets("--detail", "1")
    # one loss record, and the newest infection's closed record: nothing per record beyond --detail
    assert doc["losses_total"] == 3 and len(_losses(doc)) == 1 and made == 2
    doc, made = gets("--detail", "3")
    assert {loss["key"] for loss in _losses(doc)} == {"one.exe", "two.exe", "three.exe"} and made == 6


def test_a_loss_the_ledger_refuses_to_record_is_still_logged_and_notified(stack):
    events = _lose_a_write(stack, "unrecorded.exe")
    stack.cloud.cos.faults.deny(stack.jail, ["PutObject"])   # the state bucket refuses writes
    seen: List[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(getattr(record, "event", ""))   # type: ignore[method-assign]
    logger = logging.getLogger("cosguard.domain.removals")
    logger.addHandler(handler)
    try:
        stack.scan(events)
    finally:
        logger.removeHandler(handler)
    assert _records(stack) == []
    lost = [n for n in stack.sink.received if n.get("kind") == "possible_loss"]
    assert len(lost) == 1 and lost[0]["key"] == "unrecorded.exe"
    assert seen == ["possible_loss_not_recorded", "possible_write_loss"]
