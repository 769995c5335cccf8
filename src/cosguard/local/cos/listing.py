"""GET Bucket (list objects) as COS answers it: Contents and CommonPrefixes share MaxKeys.

moto returns up to MaxKeys objects *plus* every common prefix, with an opaque NextMarker; COS
counts both in MaxKeys, in key order, and its NextMarker is the last key or prefix returned.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union
from urllib.parse import quote
from xml.sax.saxutils import escape

from moto.s3.models import FakeDeleteMarker

from .naming import cos_storage_class, split_bucket
from .wire import CosError

MAX_KEYS = 1000


def _max_keys(raw: Optional[str]) -> int:
    if raw is None or raw == "":
        return MAX_KEYS
    try:
        value = int(raw)
    except ValueError:
        raise CosError(400, "InvalidArgument", f"max-keys must be an integer, got {raw!r}") from None
    if value < 0:
        raise CosError(400, "InvalidArgument", "max-keys must not be negative")
    return min(value, MAX_KEYS)


def entries(keys: Mapping[str, Any], prefix: str, delimiter: str, marker: str
            ) -> List[Tuple[str, Union[Any, None]]]:
    """(name, key object) for objects and (prefix, None) for common prefixes, in key order,
    after `marker`; delete markers left out."""
    found: Dict[str, Union[Any, None]] = {}
    for name, stored in keys.items():
        if not name.startswith(prefix) or isinstance(stored, FakeDeleteMarker):
            continue
        rest = name[len(prefix):]
        if delimiter and delimiter in rest:
            rolled = prefix + rest.split(delimiter, 1)[0] + delimiter
            found.setdefault(rolled, None)
        else:
            found[name] = stored
    return [(name, found[name]) for name in sorted(found) if not marker or name > marker]


def render(bucket: str, keys: Mapping[str, Any], query: Mapping[str, str],
           size_of: Callable[[str, int], int]) -> bytes:
    """The ListBucketResult document for one GET Bucket; `size_of(key, stored)` the reported size."""
    prefix = query.get("prefix", "")
    delimiter = query.get("delimiter", "")
    marker = query.get("marker", "")
    max_keys = _max_keys(query.get("max-keys"))
    url = query.get("encoding-type", "") == "url"

    def text(value: str) -> str:
        return escape(quote(value, safe="/") if url else value)

    listed = entries(keys, prefix, delimiter, marker)
    page, truncated = listed[:max_keys], len(listed) > max_keys
    appid = split_bucket(bucket)[1]
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult>',
           f"<Name>{escape(bucket)}</Name>"]
    if url:
        out.append("<EncodingType>url</EncodingType>")
    out += [f"<Prefix>{text(prefix)}</Prefix>", f"<Marker>{text(marker)}</Marker>",
            f"<MaxKeys>{max_keys}</MaxKeys>"]
    if delimiter:
        out.append(f"<Delimiter>{text(delimiter)}</Delimiter>")
    out.append(f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>")
    if truncated and page:
        out.append(f"<NextMarker>{text(page[-1][0])}</NextMarker>")
    for name, stored in page:
        if stored is None:
            out.append(f"<CommonPrefixes><Prefix>{text(name)}</Prefix></CommonPrefixes>")
            continue
        out.append(
            f"<Contents><Key>{text(name)}</Key>"
            f"<LastModified>{stored.last_modified_ISO8601}</LastModified>"
            f"<ETag>{escape(stored.etag)}</ETag><Size>{size_of(name, stored.size)}</Size>"
            f"<Owner><ID>{appid}</ID><DisplayName>{appid}</DisplayName></Owner>"
            f"<StorageClass>{cos_storage_class(stored.storage_class)}</StorageClass></Contents>")
    out.append("</ListBucketResult>")
    return "".join(out).encode("utf-8")
