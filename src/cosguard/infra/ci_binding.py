"""Whether CI is bound to a bucket: `GET /` on `<bucket>.ci.<region>.myqcloud.com` answers
`{"CIStatus": "on"}` (doc 460/97481; `off`: not bound, `unbinding`: being unbound; a sub-account
needs `ci:DescribeCIBuckets`). cos-python-sdk-v5 has no method for it: the request is sent through
its signed `send_request`, as its own CI methods send theirs."""
from __future__ import annotations

import json
from typing import Any

from qcloud_cos.cos_auth import CosS3Auth

from ..errors import CloudPermanentError
from .cloud import translate_sdk_errors

OPERATION = "DescribeCIBuckets"


def ci_status(ci_client: Any, bucket: str) -> str:
    """`on`, `off` or `unbinding` as CI answers for `bucket`; CloudError when it cannot be read."""
    conf = ci_client._conf
    with translate_sdk_errors(OPERATION):
        answer = ci_client.send_request(
            method="GET", url=conf.uri(bucket=bucket, path="/", endpoint=conf._endpoint_ci), bucket=bucket,
            auth=CosS3Auth(conf, "/"), headers={}, ci_request=True)
    try:
        status = json.loads(answer.content.decode("utf-8"))["CIStatus"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise CloudPermanentError(f"{OPERATION}: CI answered no CIStatus for {bucket}",
                                  operation=OPERATION) from None
    return str(status)
