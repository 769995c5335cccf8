"""CI answers only for buckets that exist and are bound, in COS's error format."""
from __future__ import annotations

import pytest
from qcloud_cos import CosConfig, CosS3Client
from qcloud_cos.cos_exception import CosServiceError

from ci_samples import BUCKET, REGION
from cosguard.local.ci import LocalCi
from cosguard.local.cos import LocalCos

MISSING = "nowhere-1250000000"


def refusal(call):
    with pytest.raises(CosServiceError) as caught:
        call()
    return caught.value.get_status_code(), caught.value.get_error_code(), caught.value.get_error_msg()


def test_a_bucket_that_exists_nowhere_is_no_such_bucket(ci, client):
    status, code, message = refusal(lambda: client.ci_auditing_virus_submit(Bucket=MISSING, Key="k"))
    assert (status, code) == (404, "NoSuchBucket") and MISSING in message
    assert refusal(lambda: client.ci_auditing_virus_query(Bucket=MISSING, JobID="ss" + "0" * 32)
                   )[:2] == (404, "NoSuchBucket")
    assert ci.backend.jobs == {}


def test_a_bucket_that_exists_but_is_not_bound_is_refused(ci, client, store):
    store.put(BUCKET, "k", b"x")
    ci.faults.unbound_buckets.add(BUCKET)
    status, code, message = refusal(lambda: client.ci_auditing_virus_submit(Bucket=BUCKET, Key="k"))
    assert (status, code) == (400, "BucketNotBound") and "bind" in message
    assert ci.backend.jobs == {}


def test_over_local_cos_only_its_buckets_exist(credentials):
    """The stack's wiring: CI reads local COS's buckets, so one never created there is refused."""
    with LocalCos(region=REGION, credentials=credentials) as cos, \
            LocalCi(region=REGION, credentials=credentials, store=cos.store, scan_delay=0) as ci:
        config = CosConfig(Region=REGION, SecretId=credentials.secret_id,
                           SecretKey=credentials.secret_key, Scheme="http", IP="127.0.0.1",
                           Port=ci.port)
        client = CosS3Client(config, retry=0)
        assert refusal(lambda: client.ci_auditing_virus_submit(Bucket=BUCKET, Key="k"))[:2] == (
            404, "NoSuchBucket")
        cos.create_bucket(BUCKET)
        answer = client.ci_auditing_virus_submit(Bucket=BUCKET, Key="k")
        assert answer["JobsDetail"]["State"] == "Submitted"


def test_get_slash_answers_the_bucket_s_ci_status(ci, make_client, store):
    """Doc 460/97481: `GET /` on the CI host answers `{"CIStatus": "on"}` for a bound bucket, "off"
    for one not bound; read as cosguard reads it, through the SDK's signed request."""
    from ci_samples import BUCKET, OTHER_BUCKET
    from cosguard.infra.ci_binding import ci_status
    ci.faults.unbound_buckets = {OTHER_BUCKET}
    client = make_client(ci)
    assert (ci_status(client, BUCKET), ci_status(client, OTHER_BUCKET)) == ("on", "off")
    assert ci.counters["DescribeCIBuckets"] == 2
