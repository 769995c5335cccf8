"""`cosguard demo`: the whole flow on the local cloud, with a table of what happened to each upload.

Uploads a small set (clean text, a clean PDF, EICAR, EICAR in a zip in a tar.gz, an object over CI's
size limit, a key with spaces and Chinese characters, and an object overwritten while its scan runs),
waits for the verdicts, and checks each against what cosguard must do with it.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Dict, List, Optional

from ..ui import table
from ..ui.progress import Progress
from . import samples
from .deployment import LocalDeployment

INTAKE = "intake-1250000000"
PREFIX = "uploads/"


@dataclass
class Item:
    key: str
    body: Callable[[], bytes]
    expect_verdict: str           # what the table must say
    expect_jobs: int = 1          # CI jobs this upload leads to (0: never submitted)
    simulated_size: Optional[int] = None
    overwrite_with: Optional[Callable[[], bytes]] = None
    uploaded_at: float = 0.0
    result: Dict[str, Any] = field(default_factory=dict)


def demo_items() -> List[Item]:
    return [
        Item(PREFIX + "notes.txt", samples.clean_text, "clean"),
        Item(PREFIX + "report.pdf", samples.clean_document, "clean"),
        Item(PREFIX + "eicar.com", samples.eicar, "infected"),
        Item(PREFIX + "bundle.tar.gz", samples.eicar_zip_in_tar_gz, "infected"),
        Item(PREFIX + "disk-image.iso", lambda: b"pretend to be 2 GB", "unscannable", expect_jobs=0,
             simulated_size=2 * 1024 ** 3),
        Item(PREFIX + "季度 报告 final.txt", samples.clean_text, "clean"),
        Item(PREFIX + "swap.docx", samples.eicar, "stale → clean", expect_jobs=2,
             overwrite_with=samples.clean_document),
    ]


class Demo:
    def __init__(self, deployment: LocalDeployment, progress: Progress):
        self.deployment = deployment
        self.cos = deployment.cloud.client("cos")
        self.state_bucket = deployment.quarantine_bucket
        self.progress = progress

    def _tags(self, key: str) -> Dict[str, str]:
        try:
            tagset = self.cos.get_object_tagging(Bucket=INTAKE, Key=key).get("TagSet", {}).get("Tag", [])
        except Exception:  # noqa: BLE001 - the object may be gone (quarantined)
            return {}
        return {t["Key"]: t["Value"] for t in tagset}

    def _closed(self) -> Dict[str, List[dict]]:
        by_key: Dict[str, List[dict]] = {}
        listing = self.cos.list_objects(Bucket=self.state_bucket, Prefix=".cosguard/closed/", MaxKeys=1000)
        for entry in listing.get("Contents", []):
            doc = json.loads(self.cos.get_object(Bucket=self.state_bucket, Key=entry["Key"])["Body"]
                             .get_raw_stream().read())
            by_key.setdefault(doc["key"], []).append(doc)
        for docs in by_key.values():
            docs.sort(key=lambda d: d["submitted_at"])
        return by_key

    def upload(self, item: Item) -> None:
        if item.simulated_size:
            self.deployment.cloud.cos.simulate_size(INTAKE, item.key, item.simulated_size)
        item.uploaded_at = time.time()
        self.cos.put_object(Bucket=INTAKE, Key=item.key, Body=item.body())
        if item.overwrite_with:  # overwrite once its first scan is under way
            deadline = time.monotonic() + 10
            while self._tags(item.key).get("cosguard-status") != "pending" and time.monotonic() < deadline:
                time.sleep(0.02)
            self.cos.put_object(Bucket=INTAKE, Key=item.key, Body=item.overwrite_with())

    def observe(self, item: Item, closed: Dict[str, List[dict]]) -> bool:
        """Fill `item.result` once its final state is visible; True when it is."""
        docs = closed.get(item.key, [])
        if item.expect_jobs == 0:
            tags = self._tags(item.key)
            if not tags.get("cosguard-status") or tags["cosguard-status"] == "pending":
                return False
            item.result = {"verdict": tags["cosguard-status"], "viruses": [], "action": "tagged",
                           "location": f"{INTAKE}/{item.key}"}
        else:
            if len(docs) < item.expect_jobs:
                return False
            outcomes = [d["outcome"] for d in docs]
            last = docs[-1]
            verdict = {"quarantined": "infected", "deleted": "infected", "infected": "infected",
                       "clean": "clean", "promoted": "clean"}.get(last["outcome"], last["outcome"])
            if len(docs) > 1:
                verdict = " → ".join(["stale" if o == "stale" else o for o in outcomes[:-1]] + [verdict])
            findings = (last.get("manifest") or {}).get("findings") or []
            item.result = {"verdict": verdict,
                           "viruses": [f"{f['virus']} ({f['file']})" if f.get("file") else f["virus"]
                                       for f in findings],
                           "action": {"quarantined": "moved to quarantine", "clean": "tagged clean",
                                      "deleted": "deleted", "error": "tagged error"}.get(last["outcome"],
                                                                                         last["outcome"]),
                           "location": self._location(item, last)}
        item.result["latency_ms"] = int((time.time() - item.uploaded_at) * 1000)
        item.result["ok"] = item.result["verdict"] == item.expect_verdict and self._placed_right(item)
        return True

    def _location(self, item: Item, last: dict) -> str:
        copy = (last.get("manifest") or {}).get("quarantined") or {}
        if last["outcome"] == "quarantined" and copy.get("key"):
            return f"{copy['bucket']}/{copy['key']}"
        return f"{INTAKE}/{item.key}"

    def _placed_right(self, item: Item) -> bool:
        """Infected objects must be gone from intake and in quarantine; everything else must stay."""
        in_intake = self.cos.object_exists(Bucket=INTAKE, Key=item.key)
        if item.result["verdict"] == "infected":
            bucket, _, key = item.result["location"].partition("/")
            return not in_intake and bucket == self.deployment.quarantine_bucket and \
                self.cos.object_exists(Bucket=bucket, Key=key)
        return in_intake

    def run(self, items: List[Item], timeout: float) -> bool:
        for item in items:
            self.upload(item)
            self.progress.message(f"  uploaded {item.key}")
        pending = list(items)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            closed = self._closed()
            pending = [item for item in pending if not self.observe(item, closed)]
            done = len(items) - len(pending)
            self.progress.update(f"  verdicts: {done}/{len(items)}", done, len(items))
            if pending:
                time.sleep(0.1)
        self.progress.close()
        for item in pending:
            item.result = {"verdict": "timed out", "viruses": [], "action": "", "location": "",
                           "latency_ms": None, "ok": False}
        return all(item.result.get("ok") for item in items)


HEADERS = ["key", "verdict", "virus names", "action", "now at", "latency", "check"]
LEGEND = "\n".join([
    "legend:",
    "  verdict        CI's verdict on the object, as its cosguard-status tag says",
    "  stale → clean  overwritten while its first scan ran: that verdict was not applied to the new",
    "                 object (stale), which got its own scan (clean)",
    "  action, now at what cosguard did, and where the object is now",
    "  latency        upload to verdict",
    "  check          ok when the outcome is the one cosguard must produce, else UNEXPECTED",
])


def render_table(items: List[Item]) -> str:
    rows = [[i.key, str(i.result["verdict"]), ", ".join(i.result["viruses"]), str(i.result["action"]),
             str(i.result["location"]),
             f"{i.result['latency_ms']} ms" if i.result.get("latency_ms") is not None else None,
             "ok" if i.result["ok"] else "UNEXPECTED"] for i in items]
    return table.render_table(HEADERS, rows)


def run_demo(as_json: bool = False, timeout: float = 60.0, out: IO[str] = sys.stdout,
             progress: IO[str] = sys.stderr, keep_logs: bool = False,
             report: Optional[Callable[[Dict[str, str]], str]] = None) -> int:
    """`report`: given the functions' environment once the verdicts are in, writes the operator
    report (cli/report.py: the local cloud imports nothing above it) and returns its path."""
    log = tempfile.NamedTemporaryFile("w", prefix="cosguard-demo-", suffix=".log", delete=False, encoding="utf-8")
    try:
        bar = Progress(progress)
        bar.message("cosguard demo: starting local COS, CI and the functions ...")
        with LocalDeployment([INTAKE], scan_delay=0.3, log_stream=log) as deployment:
            items = demo_items()
            ok = Demo(deployment, bar).run(items, timeout)
            page = report(deployment.env) if report is not None else None
    finally:
        log.close()
        if not keep_logs:
            os.remove(log.name)
    if as_json:
        document = {"ok": ok, "function_logs": log.name if keep_logs else None, "report": page,
                    "uploads": [{"key": i.key, "expected": i.expect_verdict, **i.result} for i in items]}
        out.write(json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
    else:
        out.write(render_table(items) + "\n\n" + LEGEND + "\n\n")
        if page:
            out.write(f"report (open it in a browser): {page}\n")
        out.write("every outcome as expected" if ok else "UNEXPECTED outcomes above")
        out.write(f"; function logs kept in {log.name}\n" if keep_logs else
                  ("\n" if ok else "; rerun with --keep-logs to keep the functions' logs\n"))
    return 0 if ok else 1
