"""`--dry-run`: what a backfill would do, from listings alone: no CI call, no HEAD, no ledger write."""
from __future__ import annotations

import json

from backfill_support import mixed
from cosguard.bulk.backfill import DEFAULT_PRICE_PER_1000


def test_dry_run_counts_bytes_and_cost_without_touching_ci_or_objects(stacks, tmp_path):
    stack = stacks(COSGUARD_EXCLUDE_SUFFIXES=".tmp")
    stack.cloud.ci.faults.drop_callback_rate = 1.0  # no callback traffic while requests are counted
    items = mixed(400, infected_every=40)
    stack.seed(items + [("data/folder/", b""), ("data/empty.txt", b""), ("data/upload.tmp", b"partial")])
    stack.cos.put_object(Bucket=stack.intake, Key="data/cold.bin", Body=b"cold", StorageClass="ARCHIVE")
    stack.cos.put_object(Bucket=stack.intake, Key="data/huge.iso", Body=b"pretend this is 2 GB")
    stack.cloud.cos.simulate_size(stack.intake, "data/huge.iso", 2 * 1024 ** 3)
    runtime = stack.runtime()
    for key, _ in items[:25]:  # already scanned by the upload trigger
        assert runtime.scanner.scan_object(stack.intake, [key]).outcome.value == "submitted"
    assert stack.cloud.ci.wait_idle(10)
    cos_before, ci_before = stack.cloud.cos.counters.snapshot(), stack.cloud.ci.counters.snapshot()
    jobs_before = stack.jobs()

    done = stack.cli(tmp_path, "--dry-run", "--json", "--price-per-1000", "2.0", "--page-size", "100")

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["mode"] == "dry-run"
    assert report["counts"] == {"to_scan": 375, "already_scanned": 25, "unscannable": 2, "skipped": 3}
    assert report["skip_reasons"] == {"folder marker": 1, "empty object": 1, "excluded suffix": 1}
    assert report["scan_bytes"] == sum(len(body) for _, body in items[25:])
    assert report["estimated_cost"] == {"scans": 375, "price_per_1000": 2.0, "amount": 0.75, "currency": "CNY",
                                        "assumed_price": True}
    assert report["listed"] == 405 and report["pages"] == 5
    assert stack.cloud.ci.counters.snapshot() == ci_before and stack.jobs() == jobs_before  # no CI call
    after = stack.cloud.cos.counters.snapshot()
    delta = {k: after.get(k, 0) - cos_before.get(k, 0) for k in after if after.get(k, 0) != cos_before.get(k, 0)}
    assert set(delta) == {"GetBucket", "GetBucketVersioning"}, delta      # listings only
    assert delta["GetBucket"] == 5 + 3                                    # 5 pages, claims/, jobs/ and retry/


def test_dry_run_human_output_says_the_price_is_an_assumption(stack, tmp_path):
    stack.seed(mixed(12))
    done = stack.cli(tmp_path, "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "would scan 12 objects" in done.stdout
    assert f"assumed {DEFAULT_PRICE_PER_1000} per 1,000 scans" in done.stdout
    assert "dry-run complete: 12 listed, 12 to scan" in done.stderr
    assert stack.submits() == 0
