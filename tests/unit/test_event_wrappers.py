import base64

import pytest

from cosguard.errors import CallbackRejected, EventParseError
from cosguard.triggers.events import CosUploadEvent, HttpRequest, mask_cos_event
from helpers import load_event


def record_with_key(key, name="testpic", appid="1253970026", **object_fields):
    return {"cos": {"cosObject": {"key": f"/{appid}/{name}/{key}", "size": 3, **object_fields},
                    "cosBucket": {"name": name, "appid": appid, "region": "gz"}},
            "event": {"eventName": "cos:ObjectCreated:Put"}}


def test_documented_event_wraps_field_by_field():
    raw = load_event("cos_put.json")
    (record,) = list(CosUploadEvent(raw).records)
    assert record.bucket == "testpic-1253970026"
    assert record.raw_key == "testfile"
    assert record.key_candidates == ["testfile"]
    assert record.size == raw["Records"][0]["cos"]["cosObject"]["size"] == 1029
    assert record.version_id is None
    assert record.event_name == "cos:ObjectCreated:*"
    assert record.request_id == "NWMxOWY4MGFfMjViMjU4NjRfMTUyMV8yNzhhZjM="


def test_every_record_is_kept():
    event = CosUploadEvent({"Records": [record_with_key(f"k{i}") for i in range(5)]})
    assert [r.raw_key for r in event.records] == [f"k{i}" for i in range(5)]


@pytest.mark.parametrize("sent, candidates", [
    ("a b.txt", ["a b.txt"]),
    ("a%20b.txt", ["a%20b.txt", "a b.txt"]),
    ("c++/x+y.txt", ["c++/x+y.txt"]),
    ("%E4%B8%AD%E6%96%87.txt", ["%E4%B8%AD%E6%96%87.txt", "中文.txt"]),
    ("中文.txt", ["中文.txt"]),
    ("100%.txt", ["100%.txt"]),
])
def test_key_candidates_keep_the_literal_key_first(sent, candidates):
    (record,) = CosUploadEvent({"Records": [record_with_key(sent)]}).records
    assert record.key_candidates == candidates


def test_size_as_string_and_version_id():
    (record,) = CosUploadEvent({"Records": [record_with_key("k", size="2048", vid="MTg0NDUx")]}).records
    assert record.size == 2048
    assert record.version_id == "MTg0NDUx"


@pytest.mark.parametrize("raw", [None, [], "text", {}, {"Records": []}, {"Records": "x"},
                                 {"Records": [{"s3": {}}]}])
def test_non_cos_events_are_rejected_clearly(raw):
    with pytest.raises(EventParseError):
        CosUploadEvent(raw)


def test_one_bad_record_does_not_sink_the_others():
    event = CosUploadEvent({"Records": [record_with_key("good"), {"cos": {"cosObject": {}}}]})
    assert [r.raw_key for r in event.records] == ["good"]
    assert event.invalid_records[0][0] == 1


def test_masking_hides_the_authorization_header():
    masked = mask_cos_event(load_event("cos_put.json"))
    headers = masked["Records"][0]["event"]["requestParameters"]["requestHeaders"]
    assert headers["Authorization"] == "***"
    assert "q-signature" not in str(masked)


def test_function_url_and_apigw_requests():
    url = HttpRequest(load_event("function_url_post.json"))
    assert url.method == "POST" and url.query == {"a": "1", "b": "2"}
    assert url.body(1024) == b'{"test":"hello world"}'
    gw = HttpRequest(load_event("apigw_post.json"))
    assert gw.headers["host"].startswith("service-")
    assert gw.query == {"foo": "bar", "bob": "alice"}


def test_base64_body_and_size_limit():
    event = {"httpMethod": "POST", "body": base64.b64encode(b"<x/>").decode(), "isBase64Encoded": True}
    assert HttpRequest(event).body(100) == b"<x/>"
    with pytest.raises(CallbackRejected) as caught:
        HttpRequest({"httpMethod": "POST", "body": "a" * 2000}).body(1000)
    assert caught.value.status == 413
    with pytest.raises(CallbackRejected) as caught:
        HttpRequest({"httpMethod": "POST", "body": "!!", "isBase64Encoded": True}).body(100)
    assert caught.value.status == 400


def test_a_record_that_cannot_be_read_does_not_hide_the_probes_records_after_it():
    """Probe mode records the raw records of `cosguard probe`'s scratch objects (triggers/upload.py):
    a malformed record before one of them is passed over, not the end of the event."""
    import copy
    import types

    from cosguard.triggers.upload import record_probe_events
    good = load_event("cos_put.json")["Records"][0]
    broken = copy.deepcopy(good)
    del broken["cos"]["cosObject"]["key"]
    probe = copy.deepcopy(good)
    probe["cos"]["cosObject"]["key"] = probe["cos"]["cosObject"]["key"].rsplit("/", 1)[0] + "/cosguard-probe/r1/a.txt"
    seen = []
    scanner = types.SimpleNamespace(probe=types.SimpleNamespace(record_event_records=seen.extend))
    record_probe_events(scanner, CosUploadEvent({"Records": [broken, good, probe]}))
    assert [keys[0].endswith("cosguard-probe/r1/a.txt") for _, keys, _ in seen] == [True]


def test_each_record_knows_its_place_and_a_missing_part_is_named_with_it():
    """What an operator reads for a malformed record: which record, and which part is missing."""
    import copy

    good = load_event("cos_put.json")["Records"][0]
    no_cos = {k: v for k, v in good.items() if k != "cos"}
    no_object = copy.deepcopy(good)
    del no_object["cos"]["cosObject"]
    no_bucket = copy.deepcopy(good)
    del no_bucket["cos"]["cosBucket"]
    no_appid = copy.deepcopy(good)
    del no_appid["cos"]["cosBucket"]["appid"]
    empty_name = copy.deepcopy(good)
    empty_name["cos"]["cosBucket"]["name"] = ""
    no_key = copy.deepcopy(good)
    del no_key["cos"]["cosObject"]["key"]
    empty_key = copy.deepcopy(good)
    empty_key["cos"]["cosObject"]["key"] = ""
    event = CosUploadEvent({"Records": [good, no_cos, no_object, good, no_bucket, no_appid, empty_name, no_key,
                                        empty_key]})
    assert [record.index for record in event.records] == [0, 3]
    assert event.invalid_records == [
        (1, "Records[1] has no 'cos'"), (2, "Records[2].cos has no 'cosObject'"),
        (4, "Records[4].cos has no 'cosBucket'"), (5, "Records[5].cos.cosBucket has no 'appid'"),
        (6, "Records[6].cos.cosBucket.name is empty"), (7, "Records[7].cos.cosObject has no 'key'"),
        (8, "Records[8].cos.cosObject.key is empty")]
    assert list(next(iter(event.records))) == list(good)   # a record reads as the mapping it wraps
    assert list(event) == ["Records"]


def test_a_record_whose_event_part_is_no_object_is_read_without_it():
    import copy

    record = copy.deepcopy(load_event("cos_put.json")["Records"][0])
    record["event"] = "not an object"
    [parsed] = CosUploadEvent({"Records": [record]}).records
    assert parsed.event_name == "" and parsed.event_time is None


def test_a_backfills_listed_identity_reaches_the_scanner_and_bad_events_say_why():
    """A fanned-out backfill's record carries the write's identity as listed (bulk/invoke.py): the
    scanner gets it, so a handled write costs one ledger read and no HEAD."""
    import copy

    record = copy.deepcopy(load_event("cos_put.json")["Records"][0])
    record["cosguard"] = {"listed": "etag@1800000000"}
    plain = load_event("cos_put.json")["Records"][0]
    assert [u.listed for u in CosUploadEvent({"Records": [record, plain]}).uploads()] == ["etag@1800000000", None]
    with pytest.raises(EventParseError, match="^event is not a JSON object$"):
        CosUploadEvent(["Records"])
    with pytest.raises(EventParseError, match="^event has no Records: not a COS trigger event$"):
        CosUploadEvent({"Records": []})


def test_an_event_with_no_usable_record_names_every_one():
    good = load_event("cos_put.json")["Records"][0]
    event = CosUploadEvent({"Records": ["not an object", good]})
    assert event.invalid_records == [(0, "Records[0] is not an object")] and len(event) == 1
    with pytest.raises(EventParseError, match=r"^no usable record: Records\[0\] is not an object; Records\[1\] has no 'cos'$"):
        CosUploadEvent({"Records": [7, {}]})


def test_an_http_event_that_is_no_object_is_a_400_that_says_so():
    with pytest.raises(CallbackRejected) as refused:
        HttpRequest(["GET", "/"])
    assert (refused.value.status, refused.value.reason, str(refused.value)) == (
        400, "not an HTTP event", "400: not an HTTP event")


def test_a_body_is_read_up_to_its_limit_exactly_and_refused_past_it():
    ten = bytes(range(10))
    assert HttpRequest({}).body(10) == b""
    assert HttpRequest({"body": base64.b64encode(ten).decode(), "isBase64Encoded": True}).body(10) == ten
    assert HttpRequest({"body": "x" * 10}).body(10) == b"x" * 10
    for event, status, reason in (({"body": 7}, 400, "body is not a string"),
                                  ({"body": "x" * 11}, 413, "body larger than 10 bytes"),
                                  ({"body": "x" * 18}, 413, "body larger than 10 bytes")):
        with pytest.raises(CallbackRejected) as refused:
            HttpRequest(event).body(10)
        assert (refused.value.status, refused.value.reason) == (status, reason)
