import json
from urllib.parse import parse_qsl, urlsplit

import pytest

from cosguard.domain.seal import Sealer
from cosguard.domain.security import callback_url, check_callback_query, object_ref
from cosguard.errors import CallbackRejected
from cosguard.triggers.callback import extract_job_id
from helpers import load_event

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


def test_tokens_are_per_object_expire_and_never_the_secret():
    secret = b"s" * 32
    sealer = Sealer(secret)
    ref = object_ref("a-1250000000", "docs/x.pdf", "etag-1")
    assert ref != object_ref("a-1250000000", "docs/x.pdf", "etag-2") != object_ref("b-1250000000", "docs/x.pdf", "etag-1")
    url = callback_url("https://fn.example.com/cb?x=1", sealer, "a-1250000000", ref, 2000)
    assert url.startswith(f"https://fn.example.com/cb?x=1&bucket=a-1250000000&ref={ref}&exp=2000&token=")
    query = dict(parse_qsl(urlsplit(url).query))
    assert secret.decode() not in url
    assert check_callback_query(sealer, query, now=1999) == (True, "")
    assert check_callback_query(sealer, query, now=2001) == (False, "expired token")
    for name, value in (("bucket", "b-1250000000"), ("ref", "0" * 32), ("exp", "99999"),
                        ("token", query["token"][:-1] + "0")):
        assert check_callback_query(sealer, dict(query, **{name: value}), now=0) == (False, "bad token")
    assert check_callback_query(Sealer(b"t" * 32), query, now=0) == (False, "bad token")
    assert check_callback_query(sealer, dict(query, token=""), now=0) == (False, "missing token")

def test_a_url_issued_before_a_rotation_verifies_only_inside_the_window():
    old, new, stranger = b"o" * 32, b"n" * 32, b"x" * 32
    ref = object_ref("a-1250000000", "docs/x.pdf", "etag-1")
    issued = dict(parse_qsl(urlsplit(callback_url("https://fn.example.com/cb", Sealer(old), "a-1250000000",
                                                  ref, 2000)).query))
    assert issued["token"].startswith(Sealer(old).key_id + ".")     # the token names its key
    assert check_callback_query(Sealer(new, [old]), issued, now=0) == (True, "")
    assert check_callback_query(Sealer(new), issued, now=0) == (False, "bad token")
    assert check_callback_query(Sealer(new, [stranger]), issued, now=0) == (False, "bad token")
    legacy = dict(issued, token=issued["token"].partition(".")[2])  # a URL from before key ids
    assert check_callback_query(Sealer(new, [old]), legacy, now=0) == (True, "")
    assert check_callback_query(Sealer(new, [stranger]), legacy, now=0) == (False, "bad token")
    renamed = dict(issued, token=Sealer(new).key_id + "." + legacy["token"])  # old MAC, new key's id
    assert check_callback_query(Sealer(new, [old]), renamed, now=0) == (False, "bad token")
