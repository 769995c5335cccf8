import json

import pytest

from helpers import load_event
from cosguard.triggers.callback import extract_job_id
from cosguard.errors import CallbackRejected
from cosguard.domain.security import bucket_token, callback_url, token_matches

JOB = "ss364c726b370211ec8fb35254008618d9"


def test_query_shaped_xml_with_and_without_event_name():
    with_event = load_event("callback_xml_event.xml")
    assert extract_job_id(with_event) == JOB
    without = with_event.replace(b"<EventName>TaskFinish</EventName>", b"")
    assert extract_job_id(without) == JOB


@pytest.mark.parametrize("doc", [
    {"JobsDetail": {"JobId": JOB, "State": "Success"}},
    {"EventName": "ReviewDocument", "JobsDetail": {"JobId": JOB}},
    {"Response": {"JobsDetail": {"JobId": JOB}}},
    {"code": 0, "data": {"trace_id": JOB}},
])
def test_json_shapes(doc):
    assert extract_job_id(json.dumps(doc).encode()) == JOB


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<Response><JobsDetail><JobId>&lol3;</JobId></JobsDetail></Response>"""
XXE = b"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<Response><JobsDetail><JobId>&x;</JobId></JobsDetail></Response>"""


@pytest.mark.parametrize("body", [BILLION_LAUGHS, XXE, b"<Response><JobsDetail>", b"{not json",
                                  b"[]", b"", b"<Response/>", b'{"JobsDetail": {"JobId": "../../etc"}}'])
def test_hostile_or_useless_bodies_are_400(body):
    with pytest.raises(CallbackRejected) as caught:
        extract_job_id(body)
    assert caught.value.status == 400


def test_tokens_are_per_bucket_and_never_the_secret():
    secret = "s" * 32
    token = bucket_token(secret, "a-1250000000")
    assert secret not in token
    assert token_matches(secret, "a-1250000000", token)
    assert not token_matches(secret, "b-1250000000", token)
    assert not token_matches(secret, "a-1250000000", token[:-1] + "0")
    url = callback_url("https://fn.example.com/cb?x=1", secret, "a-1250000000")
    assert url.startswith("https://fn.example.com/cb?x=1&bucket=a-1250000000&token=")
