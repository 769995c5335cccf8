"""A deployment on the local cloud for the identity attacks: both functions and the sweep loaded from
functions/ as SCF loads them, CI calling the callback function's URL, and a notification sink."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import pytest

from deployed import DeployedStack, forget_developer_keys, stack_factory
from helpers import Context

forget_developer_keys()


class Stack(DeployedStack):
    """`put` uploads through the SDK; `scan` runs the trigger on the events COS emitted; `settle`
    waits for CI and its callbacks; `sweep` runs reconcile_pending once."""

    def __init__(self, versioned: bool = False, **env: str):
        super().__init__(versioned=versioned, notify=True, **{"COSGUARD_MAX_ATTEMPTS": "2", **env})

    def runtime(self, handler) -> Any:
        return self.runtime_of(handler)

    def scan(self, event: Optional[Dict[str, Any]] = None, context: Optional[Context] = None) -> Dict[str, Any]:
        return self.scan_handler(event if event is not None else self.take_events(), context or Context())

    def body(self, key: str, bucket: Optional[str] = None) -> Optional[bytes]:
        if not self.cos.object_exists(Bucket=bucket or self.intake, Key=key):
            return None
        return self.cos.get_object(Bucket=bucket or self.intake, Key=key)["Body"].get_raw_stream().read()

    def last_modified(self, key: str) -> Any:
        """The emulator's timestamp of the current write of `key` (what HEAD's Last-Modified shows)."""
        return self.cloud.cos.store.find(self.intake, key).last_modified

    def written_within(self, key: str, when: Any) -> None:
        """Give the current write of `key` the timestamp `when`: what COS's one-second resolution
        gives two writes within one second, forced here without waiting for the clock."""
        self.cloud.cos.store.find(self.intake, key).last_modified = when

    def quarantined(self) -> List[str]:
        response = self.cos.list_objects(Bucket=self.jail, Prefix="quarantine/")
        return [item["Key"] for item in response.get("Contents", [])]

    def quarantined_bodies(self) -> List[bytes]:
        return [self.cos.get_object(Bucket=self.jail, Key=key)["Body"].get_raw_stream().read()
                for key in self.quarantined()]

    # -- versioned intake buckets ---------------------------------------------------------------
    def versions(self, key: str) -> List[Dict]:
        """Every version of `key` in the intake bucket, newest first (delete markers left out)."""
        answer = self.cos.list_objects_versions(Bucket=self.intake, Prefix=key)
        versions = answer.get("Version") or []
        versions = versions if isinstance(versions, list) else [versions]
        return [v for v in versions if v["Key"] == key]

    def version_body(self, key: str, version_id: str) -> Optional[bytes]:
        """The bytes of one version; None when that version is gone."""
        if not any(v["VersionId"] == version_id for v in self.versions(key)):
            return None
        answer = self.cos.get_object(Bucket=self.intake, Key=key, VersionId=version_id)
        return answer["Body"].get_raw_stream().read()

    def version_tags(self, key: str, version_id: str) -> Dict[str, str]:
        answer = self.cos.get_object_tagging(Bucket=self.intake, Key=key, VersionId=version_id)
        tags = (answer.get("TagSet") or {}).get("Tag") or []
        return {t["Key"]: t["Value"] for t in (tags if isinstance(tags, list) else [tags])}


@pytest.fixture
def deploy():
    yield from stack_factory(Stack)


@pytest.fixture
def stack(deploy) -> Stack:
    return deploy()
