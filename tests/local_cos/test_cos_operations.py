"""Request -> COS API name, the vocabulary of counters and deny rules."""
from __future__ import annotations

import pytest

from cosguard.local.cos.operations import OPERATIONS, classify

COPY = {"x-cos-copy-source": "b-1.cos.ap-guangzhou.myqcloud.com/k"}


@pytest.mark.parametrize("method,key,query,headers,expected", [
    ("PUT", "k", {}, {}, "PutObject"),
    ("PUT", "k", {}, COPY, "CopyObject"),
    ("GET", "k", {}, {}, "GetObject"),
    ("HEAD", "k", {}, {}, "HeadObject"),
    ("DELETE", "k", {"versionId": "v"}, {}, "DeleteObject"),
    ("POST", "k", {"uploads": ""}, {}, "InitiateMultipartUpload"),
    ("PUT", "k", {"partNumber": "1", "uploadId": "u"}, {}, "UploadPart"),
    ("PUT", "k", {"partNumber": "1", "uploadId": "u"}, COPY, "UploadPartCopy"),
    ("POST", "k", {"uploadId": "u"}, {}, "CompleteMultipartUpload"),
    ("DELETE", "k", {"uploadId": "u"}, {}, "AbortMultipartUpload"),
    ("GET", "k", {"tagging": ""}, {}, "GetObjectTagging"),
    ("PUT", "k", {"tagging": ""}, {}, "PutObjectTagging"),
    ("DELETE", "k", {"tagging": ""}, {}, "DeleteObjectTagging"),
    ("POST", "k", {"append": "", "position": "0"}, {}, "AppendObject"),
    ("GET", "", {"prefix": "p"}, {}, "GetBucket"),
    ("GET", "", {"versions": ""}, {}, "GetBucketObjectVersions"),
    ("PUT", "", {"versioning": ""}, {}, "PutBucketVersioning"),
    ("GET", "", {"versioning": ""}, {}, "GetBucketVersioning"),
    ("POST", "", {"delete": ""}, {}, "DeleteMultipleObjects"),
    ("POST", "", {}, {}, "PostObject"),
    ("HEAD", "", {}, {}, "HeadBucket"),
])
def test_classify(method, key, query, headers, expected):
    assert classify(method, "b-1", key, query, headers) == expected
    assert expected in OPERATIONS


def test_no_bucket_is_get_service():
    assert classify("GET", "", "", {}, {}) == "GetService"
