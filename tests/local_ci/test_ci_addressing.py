"""The local CI reached as cos-python-sdk-v5 reaches CI through an HTTP proxy: the request line is
absolute-form (`POST http://<bucket>.ci.<region>.myqcloud.com/virus/detect HTTP/1.1`) and the
signature covers just the path, as the client signed it."""
from __future__ import annotations

from qcloud_cos import CosConfig, CosS3Client

from ci_helpers import scan
from ci_samples import BUCKET, REGION
from cosguard.local.ci import eicar_bytes


def test_submit_and_query_through_a_proxy(ci, store, credentials):
    config = CosConfig(Region=REGION, SecretId=credentials.secret_id,
                       SecretKey=credentials.secret_key, Scheme="http",
                       Proxies={"http": ci.endpoint})
    client = CosS3Client(config, retry=0)
    store.put(BUCKET, "uploads/eicar.com", eicar_bytes())
    answer = scan(client, "uploads/eicar.com")
    assert answer["JobsDetail"]["Suggestion"] == "block"
