"""Helpers for the local COS tests (conftest modules share one name, so helpers live here)."""
from __future__ import annotations

import requests
from qcloud_cos.cos_auth import CosS3Auth


def signed(client, cos, method, bucket, key="", params=None, **kwargs):
    """A raw request signed by the SDK's own signer, to read every header of the answer."""
    host = "service.cos.myqcloud.com" if bucket == "service" else f"{bucket}.cos.ap-guangzhou.myqcloud.com"
    auth = CosS3Auth(client._conf, key or "/", params or {})
    return requests.request(method, f"{cos.endpoint}/{key}", params=params, auth=auth,
                            headers={"Host": host, **kwargs.pop("headers", {})}, **kwargs)
