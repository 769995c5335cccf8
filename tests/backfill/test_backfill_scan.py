"""Backfill scanning through Scanner.scan_object on the local cloud: counts, one job per object
version, the ledger's claims read once instead of one request per object, the rate cap."""
from __future__ import annotations

import collections
import json
import time

from backfill_support import mixed
from cosguard.infra.retry import TokenBucket


def _counter_delta(after, before):
    return {k: after.get(k, 0) - before.get(k, 0) for k in set(after) | set(before)
            if after.get(k, 0) != before.get(k, 0) and k not in ("bytes_read", "injected")}


def test_2000_objects_each_get_one_job_infected_ones_found(stack, tmp_path):
    stack.cloud.ci.faults.drop_callback_rate = 1.0  # verdicts are read from CI below; keeps the run short
    items = mixed(2000, infected_every=100)
    stack.seed(items + [("data/folder/", b""), ("data/empty.txt", b"")])
    heads_before = stack.heads()

    done = stack.cli(tmp_path, "--workers", "16", "--page-size", "500", "--json")

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["counts"] == {"submitted": 2000, "skipped": 2}
    assert report["skip_reasons"] == {"folder marker": 1, "empty object": 1}
    assert (report["listed"], report["pages"], report["complete"]) == (2002, 5, True)
    assert report["scan_bytes"] == sum(len(body) for _, body in items)
    assert "2,000 submitted" in done.stderr                # the summary line, always on stderr
    assert stack.heads() - heads_before == 2000            # skipped objects cost no request at all
    jobs = list(stack.cloud.ci.backend.jobs.values())
    assert sorted(j.object_key for j in jobs) == sorted(k for k, _ in items)  # one job per object
    assert stack.cloud.ci.wait_idle(60)
    verdicts = stack.cloud.ci.backend.jobs.values()
    infected = sorted(j.object_key for j in verdicts if j.suggestion == "block")
    assert infected == sorted(k for k, _ in items if k.endswith(".com")) and len(infected) == 20


def test_second_run_submits_nothing_and_sends_no_per_object_request(stack):
    items = mixed(60, infected_every=20)
    stack.seed(items)
    _, first = stack.backfill(workers=4, page_size=40)
    assert first.counts == {"submitted": 60}
    assert stack.cloud.ci.wait_idle(30)
    assert sorted(k.split("/", 3)[3] for k in stack.keys(stack.jail, f"quarantine/{stack.intake}/")) == sorted(
        k for k, _ in items if k.endswith(".com"))
    assert stack.tags("data/00000.txt")["cosguard-status"] == "clean"
    cos_before, ci_before = stack.cloud.cos.counters.snapshot(), stack.cloud.ci.counters.snapshot()

    _, second = stack.backfill(workers=4, page_size=40)

    assert second.counts == {"already_scanned": 57}       # the 3 infected ones were moved away
    assert stack.jobs() == 60
    assert stack.cloud.ci.counters.snapshot() == ci_before
    cos_delta = _counter_delta(stack.cloud.cos.counters.snapshot(), cos_before)
    # Only listings: intake (2 pages), claims/, jobs/ and retry/ in the state bucket, and the versioning check.
    assert set(cos_delta) == {"GetBucket", "GetBucketVersioning"}, cos_delta
    assert cos_delta["GetBucket"] <= 7


def test_a_new_version_of_a_scanned_object_is_scanned_again(stack):
    stack.cloud.ci.faults.drop_callback_rate = 1.0  # the callback's own HEADs would blur the count
    stack.seed(mixed(20))
    stack.backfill()
    stack.cos.put_object(Bucket=stack.intake, Key="data/00003.txt", Body=b"changed since the last scan")
    heads = stack.heads()
    _, report = stack.backfill()
    assert report.counts == {"already_scanned": 19, "submitted": 1}
    assert stack.heads() - heads == 1 and stack.jobs() == 21


def test_failed_submissions_are_retried_by_the_next_run(stacks):
    stack = stacks(COSGUARD_MAX_ATTEMPTS="1")
    stack.seed(mixed(10))
    stack.cloud.ci.faults.error_rate = 1.0
    _, failed = stack.backfill()
    assert failed.counts == {"error": 10} and len(failed.errors) == 10
    assert stack.tags("data/00001.txt")["cosguard-status"] == "error"
    stack.cloud.ci.faults.error_rate = 0.0
    _, retried = stack.backfill()
    assert retried.counts == {"submitted": 10}
    assert stack.jobs() == 10


def test_versioned_bucket_lists_versions_and_skips_scanned_versions_without_head(stacks):
    stack = stacks(versioned=True)
    stack.cloud.ci.faults.drop_callback_rate = 1.0  # the callback's own HEADs would blur the count
    stack.upload(mixed(30))
    for i in range(5):  # new latest versions of five keys
        stack.cos.put_object(Bucket=stack.intake, Key=f"data/{i:05d}.txt", Body=f"v2 {i}".encode())
    runtime = stack.runtime()
    for i in range(3, 8):  # the upload trigger already handled these latest versions
        key = f"data/{i:05d}.txt"
        vid = stack.cos.head_object(Bucket=stack.intake, Key=key)["x-cos-version-id"]
        assert runtime.scanner.scan_object(stack.intake, [key], vid).outcome.value == "submitted"
    heads, cos_before = stack.heads(), stack.cloud.cos.counters.snapshot()

    _, report = stack.backfill(runtime, page_size=8)

    assert report.versioned
    assert report.counts == {"already_scanned": 5, "submitted": 25}
    assert report.listed == 30                       # latest versions only, noncurrent ones ignored
    assert stack.heads() - heads == 25               # one HEAD per submitted object, none per skipped
    listings = _counter_delta(stack.cloud.cos.counters.snapshot(), cos_before)
    assert listings["GetBucketObjectVersions"] == 5  # 35 versions, 8 a page
    keys = collections.Counter(j.object_key for j in stack.cloud.ci.backend.jobs.values())
    assert len(keys) == 30 and set(keys.values()) == {1}


def _busiest_second(times):
    return max(sum(1 for t in times if start <= t < start + 1.0) for start in times)


def test_rps_caps_the_submission_rate(stack):
    stack.cloud.ci.faults.drop_callback_rate = 1.0
    stack.seed(mixed(31))
    runtime = stack.runtime()
    started = []
    scan_object = runtime.scanner.scan_object
    runtime.scanner.scan_object = lambda *a, **k: (started.append(time.monotonic()), scan_object(*a, **k))[1]

    _, report = stack.backfill(runtime, workers=8, rps=15)

    assert report.counts == {"submitted": 31}
    assert max(started) - min(started) >= 30 / 15 - 0.05          # 31 scans at 15/s: 2 s at least
    assert _busiest_second(started) <= 16                          # 15 a second (+1: the burst)
    assert report.seconds < 30 / 15 + 15.0     # and the cap does not stall (a bound for a loaded machine)
    # Seen from CI, each submission comes after its HEAD and claim, so it jitters a little.
    created = sorted(j.creation_time.timestamp() for j in stack.cloud.ci.backend.jobs.values())
    assert created[-1] - created[0] >= 30 / 15 - 0.3
    assert _busiest_second(created) <= 18


def test_token_bucket_waits_the_debt_off():
    now = [100.0]
    bucket = TokenBucket(rate=4, burst=2, clock=lambda: now[0])
    assert [bucket.reserve() for _ in range(2)] == [0.0, 0.0]   # the burst is free
    assert bucket.reserve() == 0.25 and bucket.reserve() == 0.5  # then 4 a second, queued in order
    now[0] += 10.0
    assert bucket.reserve(3) == 0.25                             # refilled only up to the burst


def test_suspended_versioning_matches_null_versions_by_etag(stack):
    stack.cloud.ci.faults.drop_callback_rate = 1.0
    runtime = stack.runtime()
    put = lambda key: stack.cos.put_object(Bucket=stack.intake, Key=key, Body=key.encode())  # noqa: E731
    put("before.txt")                                       # written unversioned: version "null"
    assert runtime.scanner.scan_object(stack.intake, ["before.txt"]).outcome.value == "submitted"
    stack.cos.put_bucket_versioning(Bucket=stack.intake, Status="Enabled")
    put("during.txt")                                       # a real version id
    vid = stack.cos.head_object(Bucket=stack.intake, Key="during.txt")["x-cos-version-id"]
    assert runtime.scanner.scan_object(stack.intake, ["during.txt"], vid).outcome.value == "submitted"
    stack.cos.put_bucket_versioning(Bucket=stack.intake, Status="Suspended")
    put("after.txt")                                        # "null" again
    heads = stack.heads()
    _, report = stack.backfill(runtime)
    assert report.versioned and report.counts == {"already_scanned": 2, "submitted": 1}
    assert stack.heads() - heads == 1 and stack.jobs() == 3


def test_a_handled_upload_with_a_retry_entry_takes_the_scan_path_again(stack):
    """The claims are held compactly (bulk/claimset.py); a retry/ entry still overrides one."""
    stack.cloud.ci.faults.drop_callback_rate = 1.0
    stack.seed(mixed(10))
    _, first = stack.backfill()
    assert first.counts == {"submitted": 10}
    rt = stack.runtime()
    info = rt.gateway.head(stack.intake, "data/00004.txt")
    from cosguard.domain.ledger import version_token
    rt.scanner.ledger(stack.intake).record_retry(stack.intake, "data/00004.txt", version_token(info),
                                                 "submission failed", retryable=True)
    _, second = stack.backfill()
    assert second.counts == {"already_scanned": 9, "duplicate": 1}
    assert second.as_dict()["ledger_claims"] == 10
