"""Names each request by its COS API, for counters, deny rules and event names."""
from __future__ import annotations

from typing import Mapping

# Sub-resources that select a bucket API (`GET /?versioning` is GetBucketVersioning, …).
_BUCKET_SUBRESOURCES = {
    "versioning": "Versioning", "tagging": "Tagging", "acl": "ACL", "cors": "Cors",
    "lifecycle": "Lifecycle", "policy": "Policy", "notification": "Notification",
    "replication": "Replication", "website": "Website", "logging": "Logging",
    "encryption": "Encryption", "location": "Location", "inventory": "Inventory",
    "referer": "Referer", "intelligenttiering": "IntelligentTiering",
}

OBJECT_OPERATIONS = frozenset({
    "PutObject", "PostObject", "GetObject", "HeadObject", "DeleteObject", "CopyObject",
    "InitiateMultipartUpload", "UploadPart", "UploadPartCopy", "CompleteMultipartUpload",
    "AbortMultipartUpload", "ListParts", "GetObjectTagging", "PutObjectTagging",
    "DeleteObjectTagging", "GetObjectACL", "PutObjectACL", "PostObjectRestore", "OptionsObject",
    "AppendObject",
})
BUCKET_OPERATIONS = frozenset(
    {"GetService", "GetBucket", "GetBucketObjectVersions", "HeadBucket", "PutBucket",
     "DeleteBucket", "DeleteMultipleObjects", "ListMultipartUploads"}
    | {f"{verb}Bucket{sub}" for sub in _BUCKET_SUBRESOURCES.values()
       for verb in ("Get", "Put", "Delete")}
    | {"PostBucketInventory"}   # a one-time inventory (doc 436/46869)
)
# Answered by inventory.py, not moto (whose S3 inventory XML is not COS's).
INVENTORY_OPS = frozenset({"PutBucketInventory", "GetBucketInventory", "DeleteBucketInventory",
                           "PostBucketInventory"})
OPERATIONS = OBJECT_OPERATIONS | BUCKET_OPERATIONS

# Object creations that fire `cos:ObjectCreated:<suffix>`.
CREATION_EVENTS = {
    "PutObject": "Put",
    "PostObject": "Post",
    "CopyObject": "Copy",
    "CompleteMultipartUpload": "CompleteMultipartUpload",
    # Listed by legacy docs only: SCF's COS trigger doc (583/9707) does not name it, so LocalCos
    # publishes it only with `append_events=True`.
    "AppendObject": "Append",
}


def classify(method: str, bucket: str, key: str, query: Mapping[str, str],
             headers: Mapping[str, str]) -> str:
    """The COS API name of a request; `headers` lower-cased, `query` any case."""
    method = method.upper()
    q = {k.lower() for k in query}
    copy = "x-cos-copy-source" in headers
    if not bucket:
        return "GetService"
    if method == "OPTIONS":
        return "OptionsObject"
    if key:
        if "uploadid" in q:
            if method == "PUT":
                return "UploadPartCopy" if copy else "UploadPart"
            return {"POST": "CompleteMultipartUpload", "GET": "ListParts",
                    "DELETE": "AbortMultipartUpload"}.get(method, "UploadPart")
        if "uploads" in q and method == "POST":
            return "InitiateMultipartUpload"
        if "tagging" in q:
            return {"GET": "GetObjectTagging", "PUT": "PutObjectTagging",
                    "DELETE": "DeleteObjectTagging"}.get(method, "GetObjectTagging")
        if "acl" in q:
            return "PutObjectACL" if method == "PUT" else "GetObjectACL"
        if "restore" in q:
            return "PostObjectRestore"
        if "append" in q:
            return "AppendObject"
        return {"PUT": "CopyObject" if copy else "PutObject", "GET": "GetObject",
                "HEAD": "HeadObject", "DELETE": "DeleteObject",
                "POST": "PostObject"}.get(method, "GetObject")
    if "inventory" in q and method == "POST":
        return "PostBucketInventory"
    for name, api in _BUCKET_SUBRESOURCES.items():
        if name in q:
            verb = {"PUT": "Put", "DELETE": "Delete"}.get(method, "Get")
            return f"{verb}Bucket{api}"
    if "versions" in q:
        return "GetBucketObjectVersions"
    if "uploads" in q:
        return "ListMultipartUploads"
    if "delete" in q and method == "POST":
        return "DeleteMultipleObjects"
    return {"GET": "GetBucket", "HEAD": "HeadBucket", "PUT": "PutBucket",
            "DELETE": "DeleteBucket", "POST": "PostObject"}.get(method, "GetBucket")
