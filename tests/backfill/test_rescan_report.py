"""Issue 24 in `cosguard report` and the daily digest, over HTTP against the local cloud: a rescan's
verdict is counted as a rescan, never as a new upload's verdict nor as an upload latency; what a
rescan found infected is listed with both verdict dates; the scheduled rescans' backlog is counted."""
from __future__ import annotations

import json
import time

from cosguard.bulk.digest import build
from cosguard.bulk.figures import collect_figures
from cosguard.bulk.rescan import Rescan, RescanOptions
from cosguard.bulk.sweep import SweepReport
from cosguard.cli import main
from cosguard.infra.notify import render_digest
from cosguard.ui.report_html import render
from helpers import settle_ci

BAD = b"clean when it was uploaded, a known strain by the rescan\n"
ITEMS = [("s/ok-0.txt", b"fine 0\n"), ("s/ok-1.txt", b"fine 1\n"), ("s/turns.bin", BAD)]


def _scanned_then_rescanned(stack):
    stack.seed(ITEMS)
    _, report = stack.backfill(workers=4)
    assert report.counts == {"submitted": 3}
    settle_ci(stack.cloud.ci, 30)
    stack.cloud.ci.engine.signatures.add_bytes(BAD, "Rescan.Report.Strain")   # CI's signatures update
    rescan = Rescan(stack.runtime(), RescanOptions(bucket=stack.intake, before=time.time() + 1, workers=4))
    assert rescan.run().counts == {"rescanned": 3}
    settle_ci(stack.cloud.ci, 30)


def _figures(stack, **kwargs):
    rt = stack.runtime()
    return collect_figures(rt.settings, rt.gateway, rt.sweeper.ledgers(), rt.scanner.sealer, **kwargs)


def test_report_counts_rescans_apart_and_lists_what_they_found(stacks, tmp_path, capsys):
    stack = stacks(COSGUARD_RESCAN_AFTER_DAYS="1")
    _scanned_then_rescanned(stack)

    assert main(["report", "--env-file", stack.env_file(tmp_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)

    # the uploads' verdicts: three first scans, all clean; the rescans' apart
    assert doc["totals"] == {"clean": 3, "infected": 0, "unscannable": 0, "error": 0, "other": 0}
    assert doc["viruses"] == [] and doc["infections_total"] == 0
    assert doc["upload_latency"]["count"] == 3 and doc["submit_latency"]["count"] == 3   # first scans only
    rescans = doc["rescans"]
    assert rescans["totals"] == {"clean": 2, "infected": 1, "unscannable": 0, "error": 0, "other": 0}
    assert {(r["bucket"], r["verdict"]): r["count"] for r in rescans["verdicts"]} == {
        (stack.intake, "clean"): 2, (stack.intake, "infected"): 1}
    assert rescans["after_days"] == 1 and rescans["backlog"] == 0   # every verdict is younger than a day
    [found] = rescans["found"]
    assert (found["bucket"], found["key"], found["viruses"]) == (stack.intake, "s/turns.bin", ["Rescan.Report.Strain"])
    assert found["outcome"] == "quarantined" and found["now_at"].startswith(f"{stack.jail}/")
    first = found["first_verdict"]
    assert first and first <= found["previous_verdict"] <= found["when"]
    assert rescans["found_total"] == 1
    assert doc["cost"]["ci_scans"] == 6   # CI scanned six times: the rescans cost too

    # the summary says it too, with both dates
    assert main(["report", "--env-file", stack.env_file(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"{stack.intake}/s/turns.bin: {first} -> {found['when']}" in out

    # a day later every clean verdict kept in place is due: the backlog is one LIST of the rescan index
    later = _figures(stack, now=time.time() + 86400 + 60, since=7 * 86400)
    assert later.rescans.backlog == 2 and later.rescans.found_total == 1

    # the page: a Rescans section whose chart draws the rescans' counts, none in the uploads' chart
    page = render(_figures(stack))
    section = page.split('data-section="rescans"', 1)[1].split("</section>", 1)[0]
    assert 'data-figure="rescans-found" data-value="1"' in section and "s/turns.bin" in section
    assert 'data-figure="rescans-backlog" data-value="0"' in section
    assert 'data-figure="verdict-infected" data-value="0"' in page


def test_the_daily_digest_names_what_a_rescan_found(stack):
    _scanned_then_rescanned(stack)
    rt = stack.runtime()
    figures = _figures(stack, since=86400)
    doc = build(rt.settings, SweepReport(), time.time(), figures)

    assert doc["figures"]["verdicts"] == 3 and doc["figures"]["infected"] == 0
    assert doc["figures"]["rescans"] == 3 and doc["figures"]["found on rescan"] == 1
    assert "due for rescan" not in doc["figures"]   # scheduled rescans off
    [item] = [a for a in doc["attention"] if a["what"] == "found on rescan"]
    assert item["key"] == "s/turns.bin" and "Rescan.Report.Strain" in item["detail"]
    assert f"infected on {figures.rescans.found[0].when}" in item["detail"]
    text = render_digest("wecom", doc)["markdown"]["content"]
    assert "> found on rescan: 1" in text and "found on rescan: `s/turns.bin`" in text
