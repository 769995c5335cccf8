"""`cosguard rescan` on the local cloud: objects backfilled (scanned once, verdicts applied by the real
callback function) are scanned again as new jobs of the same write; the local CI's signature set
changes between scan and rescan, so one of them turns infected."""
from __future__ import annotations

import json
import threading
import time

from cosguard.bulk.rescan import Rescan, RescanOptions
from cosguard.domain.ledger import digest, token_for
from cosguard.local.httpserver import ThreadedServer
from helpers import settle_ci


class Webhook:
    """A local receiver for notifications."""

    def __init__(self):
        from werkzeug.wrappers import Request, Response
        self.received = []

        def app(environ, start_response):
            self.received.append(json.loads(Request(environ).get_data()))
            return Response("ok")(environ, start_response)
        self.server = ThreadedServer(app).start()

    @property
    def url(self):
        return self.server.endpoint + "/hook"


def _scanned(stack, items):
    """The objects seeded, backfilled, every verdict applied: each has a clean record now."""
    stack.seed(items)
    _, report = stack.backfill(workers=4)
    assert report.counts == {"submitted": len(items)}
    settle_ci(stack.cloud.ci, 30)


def _record(stack, key):
    runtime = stack.runtime()
    head = stack.cos.head_object(Bucket=stack.intake, Key=key)
    from cosguard.infra.cloud import http_epoch
    token = token_for(None, head["ETag"], http_epoch(head["Last-Modified"]))
    ledger = runtime.scanner.ledger(stack.intake)
    return ledger._read(ledger._key("claims", digest(stack.intake, key, token)))


def _rescan(stack, before, **options):
    rescan = Rescan(stack.runtime(), RescanOptions(bucket=stack.intake, before=before, workers=4, **options))
    return rescan, rescan.run()


def test_clean_stays_clean_and_is_not_rescanned_before_the_next_cut_off(stack):
    items = [(f"r/{i}.txt", f"clean {i}\n".encode()) for i in range(3)]
    _scanned(stack, items)
    first = _record(stack, "r/0.txt")
    assert first["outcome"] == "clean" and first["verdict_at"] == first["closed_at"]
    started = time.time() + 1   # COS's seconds: every verdict so far is older than this

    _, report = _rescan(stack, started)

    assert report.counts == {"rescanned": 3} and report.mode == "rescan" and report.scans == 3
    settle_ci(stack.cloud.ci, 30)
    assert stack.jobs() == 6                                        # a new job per write
    record = _record(stack, "r/0.txt")
    assert (record["job_id"], record["closed_at"]) == (first["job_id"], first["closed_at"])   # the first verdict kept
    assert record["outcome"] == "clean" and record["verdict_job"] != first["job_id"]
    assert [r["outcome"] for r in record["rescans"]] == ["clean"] and record["verdict_at"] >= first["verdict_at"]
    assert stack.tags("r/0.txt")["cosguard-status"] == "clean"
    # verdicts given by the rescan are newer than a cut-off at the rescan's start: nothing is due
    _, again = _rescan(stack, min(_record(stack, key)["verdict_at"] for key, _ in items))
    assert again.counts == {"not_due": 3} and stack.jobs() == 6


def test_an_object_that_turns_infected_is_quarantined_and_notified_with_both_dates(stacks):
    hook = Webhook()
    try:
        stack = stacks(COSGUARD_NOTIFY_URL=hook.url)
        bad = b"a new strain, clean when it was uploaded\n"
        _scanned(stack, [("t/ok.txt", b"still fine\n"), ("t/bad.bin", bad)])
        assert stack.tags("t/bad.bin")["cosguard-status"] == "clean" and hook.received == []
        first = _record(stack, "t/bad.bin")
        stack.cloud.ci.engine.signatures.add_bytes(bad, "Rescan.Test.Strain")   # CI's signatures update

        _, report = _rescan(stack, time.time() + 1)

        assert report.counts == {"rescanned": 2}
        settle_ci(stack.cloud.ci, 30)
        assert "t/bad.bin" not in stack.keys(stack.intake)
        assert any(k.endswith("/t/bad.bin") for k in stack.keys(stack.jail, f"quarantine/{stack.intake}/"))
        assert stack.tags("t/ok.txt")["cosguard-status"] == "clean"
        [message] = hook.received
        assert message["kind"] == "found_on_rescan" and message["key"] == "t/bad.bin"
        assert message["viruses"] == ["Rescan.Test.Strain"]
        verdicts = message["verdicts"]
        assert verdicts["first_verdict_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(first["closed_at"]))
        assert verdicts["verdict_at"] >= verdicts["first_verdict_at"] and verdicts["rescan_of"] == first["job_id"]
        record = _record_gone(stack, first)
        assert record["outcome"] == "quarantined" and record["first_outcome"] == "clean"
        assert record["job_id"] == first["job_id"] and record["rescans"][0]["outcome"] == "quarantined"
    finally:
        hook.server.stop()


def _record_gone(stack, first):
    ledger = stack.runtime().scanner.ledger(stack.intake)
    return ledger._read(ledger._key("claims", digest(stack.intake, first["key"], first["token"])))


def test_an_object_overwritten_since_its_verdict_is_scanned_as_a_new_write(stack):
    _scanned(stack, [("o/doc.txt", b"version one\n")])
    stack.cos.put_object(Bucket=stack.intake, Key="o/doc.txt", Body=b"version two, never scanned\n")

    _, report = _rescan(stack, time.time() + 1)

    assert report.counts == {"submitted": 1}        # the upload path, not a rescan
    settle_ci(stack.cloud.ci, 30)
    record = _record(stack, "o/doc.txt")
    assert record["outcome"] == "clean" and "rescans" not in record and stack.jobs() == 2


def test_dry_run_counts_what_is_due_and_estimates_the_cost_without_a_scan(stack):
    _scanned(stack, [(f"d/{i}.txt", f"x{i}\n".encode()) for i in range(4)])
    stack.seed([("d/new.txt", b"never scanned\n")])
    submits = stack.submits()

    _, report = _rescan(stack, time.time() + 1, dry_run=True, price_per_1000=2.0)

    doc = report.as_dict()
    assert doc["counts"] == {"to_scan": 4, "no_verdict": 1} and doc["mode"] == "dry-run"
    assert doc["estimated_cost"]["scans"] == 4 and doc["estimated_cost"]["amount"] == 0.008
    assert stack.submits() == submits


def test_interrupted_then_resumed_rescans_each_write_once(stack, tmp_path):
    _scanned(stack, [(f"c/{i:03d}.txt", f"c{i}\n".encode()) for i in range(30)])
    stack.cloud.ci.faults.drop_callback_rate = 1.0   # the verdicts do not matter here
    checkpoint = str(tmp_path / "rescan.json")
    stop = threading.Event()
    before = time.time() + 1
    first = Rescan(stack.runtime(), RescanOptions(bucket=stack.intake, before=before, workers=2, page_size=10,
                                                  checkpoint=checkpoint), stop=stop,
                   on_page=lambda report, marker: stop.set()).run()
    assert first.interrupted and first.counts == {"rescanned": 10}
    saved = json.loads(open(checkpoint).read())
    assert saved["kind"] == "rescan" and saved["before"] == before

    second = Rescan(stack.runtime(), RescanOptions(bucket=stack.intake, before=1.0, page_size=10,
                                                   checkpoint=checkpoint, resume=True)).run()

    assert second.complete and second.counts == {"rescanned": 20}    # the first run's cut-off, kept
    assert stack.jobs() == 60


def test_cli_rescan_dry_run(stack, tmp_path):
    _scanned(stack, [("cli/a.txt", b"a\n")])
    env = stack.env_file(tmp_path)
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-m", "cosguard.cli", "rescan", "--env-file", env, "--bucket",
                           stack.intake, "--older-than", "0s", "--dry-run", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["counts"] == {"to_scan": 1}
    assert "rescan " in done.stderr
    bad = subprocess.run([sys.executable, "-m", "cosguard.cli", "rescan", "--env-file", env, "--bucket",
                          stack.intake, "--older-than", "soon"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "expected a duration" in bad.stderr


# -- scheduled rescans: the timer function (reconcile_pending) as SCF runs it ------------------------
def _timer(stack, **env):
    from backfill_support import _context
    from cosguard.local.loader import load_handler
    from helpers import use_clock
    handler = load_handler("reconcile_pending", dict(stack.env, **env))
    # COS dates are whole seconds: the timer runs as if 2 s later, so the verdicts just given are past
    use_clock(handler.__globals__["RUNTIME"], lambda: time.time() + 2)
    return lambda: handler({"Type": "Timer", "TriggerName": "cosguard-reconcile"}, _context())


def test_the_daily_budget_stops_scheduled_rescans_across_two_timer_runs(stack):
    items = [(f"s/{i}.txt", f"s{i}\n".encode()) for i in range(5)]
    _scanned(stack, items)
    timer = _timer(stack, COSGUARD_RESCAN_AFTER_DAYS="0", COSGUARD_RESCAN_DAILY_BUDGET="2")

    first = timer()["rescan"]

    assert first["counts"] == {"rescanned": 2} and first["stopped"] == "daily budget" and first["used_today"] == 2
    settle_ci(stack.cloud.ci, 30)
    rescanned = sorted(key for key, _ in items if _record(stack, key).get("rescans"))
    # oldest verdicts first (to the second, the index's resolution): none left behind is older
    assert len(rescanned) == 2
    left = [key for key, _ in items if key not in rescanned]
    assert max(int(_record(stack, k)["closed_at"]) for k in rescanned) <= min(
        int(_record(stack, k)["closed_at"]) for k in left)
    second = timer()["rescan"]   # another run the same day: the day's budget is spent
    assert second["counts"] == {} and second["stopped"] == "daily budget"
    assert stack.jobs() == 7
    ledger = stack.runtime().scanner.ledger(stack.intake)
    slots = stack.keys(ledger.bucket, f"{ledger.prefix}rescan-budget/")
    assert len(slots) == 2


def test_no_scheduled_rescans_in_quiet_hours_nor_when_off(stack):
    _scanned(stack, [("q/a.txt", b"a\n")])
    hour = time.gmtime().tm_hour
    quiet = _timer(stack, COSGUARD_RESCAN_AFTER_DAYS="0", COSGUARD_RESCAN_QUIET_HOURS=f"{hour}-{(hour + 1) % 24}")
    assert quiet()["rescan"] == {"counts": {}, "budget": 1000, "used_today": 0, "stopped": "quiet hours"}
    assert "rescan" not in _timer(stack)()          # off by default
    assert stack.jobs() == 1
    awake = _timer(stack, COSGUARD_RESCAN_AFTER_DAYS="0",
                   COSGUARD_RESCAN_QUIET_HOURS=f"{(hour + 1) % 24}-{(hour + 2) % 24}")
    assert awake()["rescan"]["counts"] == {"rescanned": 1}


def test_status_shows_the_rescan_backlog_and_what_rescans_found(stack, tmp_path):
    import subprocess
    import sys
    _scanned(stack, [("st/ok.txt", b"ok\n"), ("st/turns.bin", b"turns bad later\n")])
    stack.cloud.ci.engine.signatures.add_bytes(b"turns bad later\n", "Rescan.Test.Later")
    _rescan(stack, time.time() + 1)
    settle_ci(stack.cloud.ci, 30)
    env = stack.env_file(tmp_path)
    with open(env, "a", encoding="utf-8") as handle:
        handle.write("COSGUARD_RESCAN_AFTER_DAYS=0\n")
    done = subprocess.run([sys.executable, "-m", "cosguard.cli", "status", "--env-file", env, "--json"],
                          capture_output=True, text=True, timeout=120)
    rescans = json.loads(done.stdout)["rescans"]
    assert rescans["found"] == {"clean": 1, "quarantined": 1}
    assert rescans["after_days"] == 0 and rescans["backlog"] in (0, 1)   # the one left clean, once its second passes
    human = subprocess.run([sys.executable, "-m", "cosguard.cli", "status", "--env-file", env],
                           capture_output=True, text=True, timeout=120)
    assert "found by rescans in the last 7 days: 1 clean, 1 quarantined" in human.stdout


def test_max_scans_stops_the_run_and_the_checkpoint_resumes_it(stack, tmp_path):
    _scanned(stack, [(f"m/{i:02d}.txt", f"m{i}\n".encode()) for i in range(10)])
    stack.cloud.ci.faults.drop_callback_rate = 1.0   # the rescans stay in flight: a resume must not repeat them
    checkpoint = str(tmp_path / "rescan.json")
    before = time.time() + 1

    _, first = _rescan(stack, before, max_scans=4, checkpoint=checkpoint)

    assert first.at_limit and not first.complete and first.counts == {"rescanned": 4}
    assert stack.jobs() == 14
    second = Rescan(stack.runtime(), RescanOptions(bucket=stack.intake, before=before, checkpoint=checkpoint,
                                                   resume=True)).run()
    assert second.complete and second.counts == {"rescanned": 6, "duplicate": 4}
    assert stack.jobs() == 20


def test_fail_closed_a_promoted_copy_that_turns_infected_is_withdrawn_from_the_clean_destination(stacks):
    hook = Webhook()
    try:
        stack = stacks(COSGUARD_NOTIFY_URL=hook.url, COSGUARD_CLEAN_DESTINATION="/released/",
                       COSGUARD_INCLUDE_PREFIXES="incoming/")
        bad = b"promoted while clean\n"
        _scanned(stack, [("incoming/p.bin", bad), ("incoming/q.txt", b"stays clean\n")])
        assert sorted(stack.keys(stack.intake, "released/")) == ["released/incoming/p.bin", "released/incoming/q.txt"]
        assert stack.keys(stack.intake, "incoming/") == []
        stack.cloud.ci.engine.signatures.add_bytes(bad, "Rescan.Test.Promoted")

        _, report = _rescan(stack, time.time() + 1, prefix="released/")

        assert report.counts == {"rescanned": 2}
        settle_ci(stack.cloud.ci, 30)
        assert stack.keys(stack.intake, "released/") == ["released/incoming/q.txt"]     # withdrawn
        assert any(k.endswith("/released/incoming/p.bin") for k in stack.keys(stack.jail, "quarantine/"))
        [message] = hook.received
        assert message["kind"] == "found_on_rescan" and message["key"] == "released/incoming/p.bin"
        assert set(message["verdicts"]) == {"first_verdict_at", "previous_verdict_at", "verdict_at", "rescan_of"}
        assert stack.tags("released/incoming/q.txt")["cosguard-status"] == "clean"
    finally:
        hook.server.stop()


def test_fan_out_hands_the_cut_off_to_scan_on_upload_which_rescans(stack):
    from cosguard.bulk.invoke import LocalInvoker
    from cosguard.local.scf import LocalScf
    items = [(f"f/{i}.txt", f"f{i}\n".encode()) for i in range(6)]
    _scanned(stack, items)
    stack.cloud.ci.engine.signatures.add_bytes(b"f0\n", "Rescan.Test.FanOut")
    scf = LocalScf(stack.cloud, stack.env, buckets=[], retry_delays=(0.2, 0.2)).start()   # no COS trigger
    try:
        sent = []
        invoker = LocalInvoker(lambda event: (sent.append(event), scf.invoker.enqueue(event)))
        before = time.time() + 1

        _, report = _rescan(stack, before, invoker=invoker, batch_size=4)

        assert report.mode == "fan-out" and report.counts == {"sent": 6} and report.invocations == 2
        assert {json.dumps(e["cosguard_rescan"]) for e in sent} == {json.dumps({"before": before})}
        assert scf.wait_idle(60) and scf.invoker.failed == []
        assert sum(i.result["counts"].get("rescanned", 0) for i in scf.scan.invocations) == 6
        settle_ci(stack.cloud.ci, 30)
        assert stack.jobs() == 12
        assert "f/0.txt" not in stack.keys(stack.intake, "f/")      # found on rescan: quarantined
        assert all(_record(stack, k)["rescans"][0]["outcome"] == "clean" for k, _ in items[1:])
    finally:
        scf.stop()


def test_two_instances_never_take_more_than_the_days_budget_between_them(stack):
    from concurrent.futures import ThreadPoolExecutor

    from cosguard.bulk.rescan_schedule import DailyBudget
    ledgers = [stack.runtime().scanner.ledger(stack.intake) for _ in range(2)]
    budgets = [DailyBudget(ledger, "2026-12-07", 7) for ledger in ledgers]   # both counted 0 taken

    def take_all(budget):
        return sum(1 for _ in iter(budget.take, False))
    with ThreadPoolExecutor(2) as pool:
        taken = list(pool.map(take_all, budgets))

    assert sum(taken) == 7                       # forbid-overwrite: no slot taken twice, none past 7
    ledger = ledgers[0]
    assert len(stack.keys(ledger.bucket, f"{ledger.prefix}rescan-budget/2026-12-07/")) == 7
    assert DailyBudget(ledger, "2026-12-07", 7).take() is False   # a later run the same day
    assert DailyBudget(ledger, "2026-12-08", 7).take() is True    # the next UTC day


def test_versioned_bucket_rescans_the_current_version_and_scans_a_newer_one_as_new(stacks):
    stack = stacks(versioned=True)
    stack.upload([("v/a.txt", b"first version\n"), ("v/b.txt", b"b\n")])
    _, report = stack.backfill(workers=2)
    assert report.counts == {"submitted": 2} and report.versioned
    settle_ci(stack.cloud.ci, 30)
    stack.cloud.ci.engine.signatures.add_bytes(b"b\n", "Rescan.Test.Versioned")
    stack.cos.put_object(Bucket=stack.intake, Key="v/a.txt", Body=b"second version\n")

    _, again = _rescan(stack, time.time() + 1)

    assert again.counts == {"rescanned": 1, "submitted": 1}
    settle_ci(stack.cloud.ci, 30)
    assert "v/b.txt" not in stack.keys(stack.intake, "v/")          # infected on rescan: quarantined
    assert stack.tags("v/a.txt")["cosguard-status"] == "clean"      # the new version, scanned as new


def test_a_scheduled_slice_stops_before_the_invocations_deadline(stack):
    from cosguard.bulk.rescan_schedule import scheduled_rescans
    from cosguard.infra.config import Settings
    from cosguard.runtime import Runtime
    _scanned(stack, [(f"dl/{i}.txt", f"dl{i}\n".encode()) for i in range(3)])
    runtime = Runtime(Settings.from_env(dict(stack.env, COSGUARD_RESCAN_AFTER_DAYS="0"), require_callback_url=False))
    runtime.scanner.clock = lambda: time.time() + 2

    class Ending:   # two rescans fit before the margin is reached
        left = [100.0, 100.0, 1.0]

        def remaining(self):
            return self.left.pop(0) if self.left else 0.0

    report = scheduled_rescans(runtime.scanner, deadline=Ending(), margin=5.0)

    assert report.counts == {"rescanned": 2} and report.stopped == "deadline" and stack.jobs() == 5
