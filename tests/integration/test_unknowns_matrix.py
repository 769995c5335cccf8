"""Issue 22: every unknown of Tencent's is a switch in the local cloud, and cosguard's outcome holds in
each position: an EICAR upload is quarantined and a clean one is marked clean, through the real
functions (loaded from functions/ as SCF loads them) on the local cloud, CI calling the callback
function's URL. One test per switch x position (docs/tencent-facts.md lists the unknowns)."""
from __future__ import annotations

from typing import Any, Dict, Iterator, List, Tuple

import pytest

from cosguard.bulk.backfill import Backfill, Options
from cosguard.local.samples import clean_text, eicar
from deployed import DeployedStack, forget_developer_keys, stack_factory
from helpers import Context

forget_developer_keys()

# (switch, position, how the two files are uploaded); the first position of each is the default
MATRIX: List[Tuple[str, Any, str]] = [
    ("callback_format", "xml", "put"), ("callback_format", "json", "put"),
    ("callback_signed", False, "put"), ("callback_signed", True, "put"),
    ("callback_retries", 0, "put"), ("callback_retries", 2, "put"),
    ("event_key_encoding", "url", "put"), ("event_key_encoding", "literal", "put"),
    ("event_vid", "empty", "put"), ("event_vid", "set", "put"),
    ("delete_honours_if_match", False, "put"), ("delete_honours_if_match", True, "put"),
    ("multipart_last_modified", "initiation", "multipart"),
    ("multipart_last_modified", "completion", "multipart"),
    ("append_events", False, "append"), ("append_events", True, "append"),
    ("append_keeps_etag", True, "append"), ("append_keeps_etag", False, "append"),
]
CI_SWITCHES = {"callback_format", "callback_signed", "callback_retries"}
# keys a percent-encoding changes, and one that looks encoded already
INFECTED, CLEAN = "in box/eicar 100%.com", "in box/report%20q3.txt"


class Stack(DeployedStack):
    def body(self, key: str) -> Any:
        if not self.cos.object_exists(Bucket=self.intake, Key=key):
            return None
        return self.cos.get_object(Bucket=self.intake, Key=key)["Body"].get_raw_stream().read()

    def quarantined_bodies(self) -> List[bytes]:
        listed = self.cos.list_objects(Bucket=self.jail, Prefix="quarantine/").get("Contents", [])
        return [self.cos.get_object(Bucket=self.jail, Key=item["Key"])["Body"].get_raw_stream().read()
                for item in listed]


@pytest.fixture
def deploy() -> Iterator[Any]:
    yield from stack_factory(Stack)


def _upload(stack: Stack, how: str, key: str, data: bytes) -> None:
    if how == "put":
        stack.put(key, data)
    elif how == "append":
        stack.cos.append_object(Bucket=stack.intake, Key=key, Position=0, Data=data)
    else:   # one part (the last may be under 1 MB); the upload takes two minutes of COS's clock
        upload = stack.cos.create_multipart_upload(Bucket=stack.intake, Key=key)
        etag = stack.cos.upload_part(Bucket=stack.intake, Key=key, Body=data, PartNumber=1,
                                     UploadId=upload["UploadId"])["ETag"]
        stack.cloud.cos.clock_offset += 120
        stack.cos.complete_multipart_upload(Bucket=stack.intake, Key=key, UploadId=upload["UploadId"],
                                            MultipartUpload={"Part": [{"PartNumber": 1, "ETag": etag}]})


def _callbacks_fail_once(stack: Stack) -> None:
    """The callback function's first answer to each job is a 500: CI retries it, or it is lost."""
    handler, failed = stack._callback, set()

    def flaky(event: Dict[str, Any], context: Any) -> Any:
        body = event.get("body")
        if body not in failed:
            failed.add(body)
            return {"statusCode": 500, "body": "unavailable"}
        return handler(event, context)
    stack._callback = flaky


@pytest.mark.parametrize("switch,position,how", MATRIX,
                         ids=[f"{switch}={position}" for switch, position, _ in MATRIX])
def test_eicar_is_quarantined_and_clean_marked_clean_in_every_position(deploy, switch, position, how):
    stack = deploy(versioned=switch == "event_vid")
    setattr(stack.cloud.ci if switch in CI_SWITCHES else stack.cloud.cos, switch, position)
    assert stack.cloud.switches()[switch] == position
    if switch == "callback_retries":
        _callbacks_fail_once(stack)
    _upload(stack, how, INFECTED, eicar())
    _upload(stack, how, CLEAN, clean_text())
    event = stack.take_events()
    if how == "append" and not stack.cloud.cos.append_events:
        assert event["Records"] == []   # no trigger: a backfill finds the appended objects
        assert Backfill(stack.runtime_of(stack.scan_handler), Options(stack.intake)).run().counts == {
            "submitted": 2}
    else:
        assert stack.scan_handler(event, Context())["counts"] == {"submitted": 2}
    stack.settle()
    delivered = [d for d in stack.cloud.ci.deliveries if d.ok]
    if switch == "callback_retries" and position == 0:
        assert delivered == []   # CI gave up after one attempt: reconcile settles both
        assert stack.sweep()["applied"] == {"quarantined": 1, "clean": 1}
    else:
        assert len(delivered) == 2, stack.cloud.ci.deliveries.snapshot()
    assert stack.body(INFECTED) is None
    assert stack.quarantined_bodies() == [eicar()]
    assert stack.body(CLEAN) == clean_text()
    assert stack.tags(CLEAN)["cosguard-status"] == "clean"
