"""Where a job's bytes come from: an object in the bucket (through the ObjectStore seam) or a Url.

Each refusal is a job outcome, not an HTTP error: the job ends `Failed` with the Code/Message
below (CI publishes no job-level codes; the two resource ones are CI's documented common codes).

    ResourceNotFound        the object (or bucket) does not exist
    InvalidObjectState      ARCHIVE / DEEP_ARCHIVE object: restore it first (COS's code for this)
    FileSizeLimitExceeded   object or download of 1 GB or more (CI scans files < 1 GB)
    ResourceDownloadFailed  the Url could not be fetched (status, timeout, connection)
"""
from __future__ import annotations

import contextlib
import re
import tempfile
import time
from dataclasses import dataclass
from typing import BinaryIO, Callable, Dict, Iterator, Optional
from urllib.parse import urlsplit, urlunsplit

import requests

from ..store import ObjectMissing, ObjectStore

MAX_FILE_SIZE = 1 << 30
# GLACIER is S3's name for ARCHIVE, in case a store reports the S3 spelling.
UNSCANNABLE_STORAGE_CLASSES = frozenset({"ARCHIVE", "DEEP_ARCHIVE", "GLACIER"})
_COS_HOST = re.compile(r"^[a-z0-9][a-z0-9-]*\.cos\.[a-z0-9-]+\.myqcloud\.com$")


class JobFailure(Exception):
    """Ends a job `Failed` with this Code and Message."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


@contextlib.contextmanager
def open_object(store: ObjectStore, bucket: str, key: str,
                max_size: int = MAX_FILE_SIZE) -> Iterator[BinaryIO]:
    """The object's bytes, after the checks CI makes before scanning."""
    try:
        obj = store.get(bucket, key)
    except ObjectMissing:
        raise JobFailure("ResourceNotFound", f"The object {key} does not exist in {bucket}") from None
    storage_class = (obj.storage_class or "STANDARD").upper()
    if storage_class in UNSCANNABLE_STORAGE_CLASSES:
        raise JobFailure("InvalidObjectState",
                         f"Objects in the {storage_class} storage class cannot be scanned; restore it first")
    if obj.size >= max_size:
        raise JobFailure("FileSizeLimitExceeded",
                         f"The object is {obj.size} bytes; files must be smaller than {max_size} bytes")
    try:
        stream = obj.open()
    except ObjectMissing:  # deleted or overwritten between the lookup and the read
        raise JobFailure("ResourceNotFound", f"The object {key} does not exist in {bucket}") from None
    try:
        yield stream
    finally:
        stream.close()


def without_query(url: str) -> str:
    """The Url as CI would fetch it if it dropped the query (a pre-signed URL's signature and
    `versionId`): whether CI keeps it is not documented (doc 436/50132 says only "full URL")."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


@dataclass(frozen=True)
class UrlFetcher:
    """Downloads a Url input into a spooled file, bounded in size and in total time.

    `cos_proxy` gives the local COS's endpoint: a URL on a COS host (`<bucket>.cos.<region>.
    myqcloud.com`, what a pre-signed URL names) is fetched through it as through an HTTP proxy, so
    the local COS checks the URL's signature and expiry as COS would."""

    timeout: float = 10.0
    max_size: int = MAX_FILE_SIZE
    spool_memory: int = 4 << 20
    chunk_size: int = 64 << 10
    cos_proxy: Optional[Callable[[], Optional[str]]] = None

    @contextlib.contextmanager
    def open(self, url: str) -> Iterator[BinaryIO]:
        spool = tempfile.SpooledTemporaryFile(max_size=self.spool_memory)
        try:
            self._download(url, spool)  # type: ignore[arg-type]
            spool.seek(0)
            yield spool  # type: ignore[misc]
        finally:
            spool.close()

    def _download(self, url: str, spool: BinaryIO) -> None:
        deadline = time.monotonic() + self.timeout
        try:
            with requests.get(url, stream=True, timeout=self.timeout, allow_redirects=True,
                              proxies=self._proxies(url)) as answer:
                if not 200 <= answer.status_code < 300:
                    raise JobFailure("ResourceDownloadFailed",
                                     f"GET {url} answered HTTP {answer.status_code}")
                declared = answer.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) >= self.max_size:
                    raise self._too_large(url)
                received = 0
                for chunk in answer.iter_content(self.chunk_size):
                    received += len(chunk)
                    if received >= self.max_size:
                        raise self._too_large(url)
                    if time.monotonic() > deadline:
                        raise JobFailure("ResourceDownloadFailed",
                                         f"GET {url} took longer than {self.timeout} s")
                    spool.write(chunk)
        except requests.RequestException as exc:
            raise JobFailure("ResourceDownloadFailed", f"GET {url} failed: {exc}") from None

    def _proxies(self, url: str) -> Dict[str, str]:
        host = urlsplit(url).hostname or ""
        proxy = self.cos_proxy() if self.cos_proxy is not None and _COS_HOST.match(host) else None
        return {"http": proxy} if proxy else {}

    def _too_large(self, url: str) -> JobFailure:
        return JobFailure("FileSizeLimitExceeded",
                          f"{url} is {self.max_size} bytes or more; files must be smaller")
