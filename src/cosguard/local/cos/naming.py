"""COS names and their moto counterparts: hosts, buckets, regions, storage classes.

Kept free of HTTP and of moto imports so the dialect, the events and the store agree on one mapping.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, Optional, Tuple
from urllib.parse import parse_qs, quote, unquote, urlsplit

# `<name>-<appid>.cos.<region>.myqcloud.com`, as the SDK builds it (also the tencentcos.cn domain
# and the internal endpoint); the port is ignored.
_HOST = re.compile(
    r"^(?P<bucket>[a-z0-9][a-z0-9-]*-\d+)\.cos(?:-internal)?\.(?P<region>[a-z0-9-]+)"
    r"\.(?:myqcloud\.com|tencentcos\.cn)(?::\d+)?$")
_BUCKET = re.compile(r"^(?P<name>[a-z0-9][a-z0-9-]*)-(?P<appid>\d+)$")

# SCF's COS event names the bucket's region by its legacy short code (reference §3.4: "cd").
SHORT_REGIONS: Dict[str, str] = {
    "ap-guangzhou": "gz", "ap-beijing": "bj", "ap-shanghai": "sh", "ap-chengdu": "cd",
    "ap-chongqing": "cq", "ap-nanjing": "nj", "ap-hongkong": "hk", "ap-singapore": "sg",
    "ap-mumbai": "in", "ap-seoul": "kr", "ap-tokyo": "jp", "ap-bangkok": "th",
    "na-siliconvalley": "sv", "na-ashburn": "va", "na-toronto": "ca", "eu-frankfurt": "de",
    "ap-beijing-fsi": "bjjr", "ap-shanghai-fsi": "shjr", "ap-shenzhen-fsi": "szjr",
}

# COS storage class -> a class moto accepts. Injective, so answers map back to COS names.
# ARCHIVE/DEEP_ARCHIVE land on moto's archive classes, so GET before a restore fails as on COS.
_COS_TO_MOTO_CLASS: Dict[str, str] = {
    "STANDARD": "STANDARD",
    "STANDARD_IA": "STANDARD_IA",
    "INTELLIGENT_TIERING": "INTELLIGENT_TIERING",
    "ARCHIVE": "GLACIER",
    "DEEP_ARCHIVE": "DEEP_ARCHIVE",
    "MAZ_STANDARD": "REDUCED_REDUNDANCY",
    "MAZ_STANDARD_IA": "ONEZONE_IA",
    "MAZ_INTELLIGENT_TIERING": "GLACIER_IR",
}
_MOTO_TO_COS_CLASS = {v: k for k, v in _COS_TO_MOTO_CLASS.items()}
COS_STORAGE_CLASSES = frozenset(_COS_TO_MOTO_CLASS)


def moto_storage_class(cos_class: str) -> Optional[str]:
    """The moto class for a COS class name (case-insensitive), or None when COS has no such class."""
    return _COS_TO_MOTO_CLASS.get(cos_class.strip().upper())


def cos_storage_class(moto_class: Optional[str]) -> str:
    return _MOTO_TO_COS_CLASS.get(moto_class or "STANDARD", moto_class or "STANDARD")


def short_region(region: str) -> str:
    return SHORT_REGIONS.get(region, region)


def split_bucket(bucket: str) -> Tuple[str, str]:
    """`examplebucket-1250000000` -> (`examplebucket`, `1250000000`); ValueError otherwise."""
    match = _BUCKET.match(bucket)
    if not match:
        raise ValueError(f"COS bucket names look like <name>-<appid>, got {bucket!r}")
    return match.group("name"), match.group("appid")


def parse_host(host: str) -> Optional[Tuple[str, str]]:
    """(bucket, region) from a virtual-host style COS Host header, else None."""
    match = _HOST.match((host or "").lower())
    if not match:
        return None
    return match.group("bucket"), match.group("region")


def object_url(bucket: str, region: str, key: str) -> str:
    """The object's public URL as COS names it in events."""
    return f"http://{bucket}.cos.{region}.myqcloud.com/{quote(key, safe='/-_.~')}"


@dataclass(frozen=True)
class CopySource:
    bucket: str
    region: Optional[str]
    key: str
    version_id: Optional[str]


def parse_copy_source(value: str) -> Optional[CopySource]:
    """`<bucket>.cos.<region>.myqcloud.com/<urlencoded key>[?versionId=…]` (also `/<bucket>/<key>`)."""
    value = value.strip()
    if "://" in value:
        value = value.split("://", 1)[1]
    parts = urlsplit("//" + value) if not value.startswith("/") else urlsplit(value)
    version = parse_qs(parts.query).get("versionId", [None])[0]
    if parts.netloc:
        host = parse_host(parts.netloc)
        if host is None:
            return None
        bucket, region = host
        key = unquote(parts.path[1:]) if parts.path.startswith("/") else unquote(parts.path)
    else:
        bucket, _, raw_key = parts.path.lstrip("/").partition("/")
        region, key = None, unquote(raw_key)
    if not key:
        return None
    return CopySource(bucket=bucket, region=region, key=key, version_id=version or None)


class BucketNames:
    """Maps COS bucket names to this instance's moto bucket names and back.

    moto keeps one bucket namespace per process, so every LocalCos prefixes its buckets with a
    random tag: two instances may both hold `examplebucket-1250000000` without seeing each other.
    """

    def __init__(self, tag: str):
        self.tag = tag
        self.prefix = f"{tag}-"

    def to_moto(self, cos_bucket: str) -> str:
        return self.prefix + cos_bucket

    def to_cos(self, moto_bucket: str) -> str:
        return moto_bucket[len(self.prefix):] if moto_bucket.startswith(self.prefix) else moto_bucket

    def strip(self, text: str) -> str:
        """Every moto bucket name in `text` (an XML answer, a header) back to its COS name."""
        return text.replace(self.prefix, "")
