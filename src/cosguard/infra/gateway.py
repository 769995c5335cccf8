"""What cosguard's domain asks of COS and CI: the seam between the rules and the cloud.

`CloudGateway` (cloud.py) implements it over cos-python-sdk-v5; `MemoryGateway` (memory.py) in
memory, so the ledger, the verdict service and the sweep can be tested without a network or a
wall clock. Domain code annotates against `Gateway`, never a concrete class.

Every method raises cosguard's own errors only (errors.py): NotFoundError for a missing key, job or
version; PreconditionFailed when a write's condition does not hold (forbid-overwrite, a copy's
If-Match); CloudTransientError when a retry may heal; CloudPermanentError otherwise. Retries stop
before the running invocation's deadline (retry.current_deadline), which the gateway, shared by
every invocation of an instance, does not hold.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Iterator, Mapping, Optional, Protocol, Tuple

if TYPE_CHECKING:
    from .ci_jobs import CiJob
    from .clock import Stamp
    from .cloud import ObjectInfo


class Gateway(Protocol):
    """The COS and CI calls cosguard's domain, bulk work and CLI make."""

    # -- objects ---------------------------------------------------------------------------
    def head(self, bucket: str, key: str, version_id: Optional[str] = None) -> "ObjectInfo":
        """One version (the current one without `version_id`); NotFoundError when absent."""

    def get_tags(self, bucket: str, key: str, version_id: Optional[str] = None) -> Dict[str, str]:
        """The object's tags."""

    def put_tags(self, bucket: str, key: str, tags: Mapping[str, str], version_id: Optional[str] = None) -> None:
        """Replace the object's tags (COS allows 10: more is a CloudPermanentError)."""

    def copy(self, source: "ObjectInfo", bucket: str, key: str,
             metadata: Optional[Mapping[str, str]] = None) -> "ObjectInfo":
        """Server-side copy of exactly `source` (If-Match its ETag: PreconditionFailed once it
        changed); `metadata` replaces the copy's. Returns the copy as HEAD would describe it."""

    def stream_copy(self, source: "ObjectInfo", bucket: str, key: str,
                    metadata: Optional[Mapping[str, str]] = None) -> "ObjectInfo":
        """The copy COS refuses to make (an appendable source): read, then written again."""

    def delete(self, bucket: str, key: str, version_id: Optional[str] = None, if_match: str = "") -> None:
        """Delete the key (a delete marker on a versioned bucket) or one version; `if_match` may
        be ignored, as COS ignores it (docs/cos-parity.md): callers re-check first."""

    def list(self, bucket: str, prefix: str = "", marker: str = "",
             page_size: int = 1000) -> Iterator[Mapping[str, Any]]:
        """Every object under `prefix` after `marker`, in key order, as ListObjects items
        (`Key`, `Size`, `ETag`, `LastModified`, `StorageClass`)."""

    def list_versions_page(self, bucket: str, prefix: str, key_marker: str, version_marker: str,
                           page_size: int = 1000) -> Dict[str, Any]:
        """One page of ListObjectVersions, shaped as the SDK returns it."""

    def versioning_status(self, bucket: str) -> str:
        """`enabled`, `suspended`, or "" for a bucket that never had versioning."""

    def upload(self, bucket: str, key: str, body: bytes) -> None:
        """A plain upload (the verify command's test files)."""

    def size_pool(self, threads: int) -> None:
        """Make room for `threads` concurrent calls."""

    # -- small JSON documents (the ledger) ---------------------------------------------------
    def put_json(self, bucket: str, key: str, document: Mapping[str, Any], *, if_absent: bool = False) -> None:
        """Write a JSON document; with `if_absent`, PreconditionFailed when the key exists."""

    def get_json(self, bucket: str, key: str, max_bytes: int = 1024 * 1024) -> Dict[str, Any]:
        """Read a JSON document; CloudPermanentError code `NotJSON` for anything else."""

    def read_json(self, bucket: str, key: str, max_bytes: int = 1024 * 1024) -> Tuple[Any, "Stamp"]:
        """`get_json` with the answer's Stamp: COS's clock (Date), the document's Last-Modified and
        ETag; the NotJSON error carries it as `.stamp`."""

    def put_inventory(self, bucket: str, inventory_id: str, configuration: Dict[str, Any]) -> None:
        """Create or replace one bucket inventory configuration (the deploy's, opt-in)."""

    def open_stream(self, bucket: str, key: str) -> Any:
        """A readable binary stream of an object's bytes (an inventory report's file), read as it
        is consumed: never held whole in memory."""

    # -- CI virus detection ------------------------------------------------------------------
    def submit_virus_job(self, bucket: str, key: str, callback: Optional[str],
                         version_id: Optional[str] = None, pinned: bool = False) -> str:
        """Submit one object (`pinned`: exactly `version_id`); the job id."""

    def query_virus_job(self, bucket: str, job_id: str) -> "CiJob":
        """The job as CI reports it now; NotFoundError when CI knows no such job."""


__all__ = ["Gateway"]
