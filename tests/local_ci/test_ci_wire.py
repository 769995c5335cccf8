"""The wire layer: submit bodies in, XML out, and every refusal as CI's XML error."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
import requests
from qcloud_cos import CosConfig
from qcloud_cos.cos_auth import CosS3Auth
from werkzeug.test import Client

from ci_samples import BUCKET, REGION
from cosguard.local.ci import eicar_bytes
from cosguard.local.ci.wire import WireError, parse_submit, render_callback

ERROR_NODES = ["Code", "Message", "Resource", "RequestId", "TraceId"]
QUERY_ORDER = ["Code", "Message", "JobId", "State", "CreationTime", "Object", "Suggestion",
               "DetectDetail"]


def body(input_xml: str = "<Object>a.doc</Object>", conf_xml: str = "<DetectType>Virus</DetectType>") -> bytes:
    return f"<Request><Input>{input_xml}</Input><Conf>{conf_xml}</Conf></Request>".encode()


def error_of(answer: requests.Response):
    root = ET.fromstring(answer.content)
    assert root.tag == "Error" and [child.tag for child in root] == ERROR_NODES
    assert answer.headers["Content-Type"] == "application/xml"
    assert root.findtext("RequestId") == answer.headers["x-ci-request-id"]
    return answer.status_code, root.findtext("Code")


# -- parse_submit -----------------------------------------------------------------------------
def test_parse_submit_reads_the_spec_sample():
    sample = (b"<Request>\n  <Input>\n    <Object>a.doc</Object>\n  </Input>\n  <Conf>\n"
              b"    <DetectType>Virus</DetectType>\n    <Callback>http://callback.com/</Callback>\n"
              b"  </Conf>\n</Request>")
    parsed = parse_submit(sample)
    assert (parsed.object_key, parsed.url, parsed.detect_type, parsed.callback) == (
        "a.doc", None, "Virus", "http://callback.com/")


@pytest.mark.parametrize("raw_body, code", [
    (b"", "MissingContent"),
    (b"<Request><Input>", "MalformedXML"),
    (b"<Other/>", "MalformedXML"),
    (b'<!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><Request>&b;</Request>', "MalformedXML"),
    (body("<Object>a</Object><Object>b</Object>"), "InvalidArgument"),
])
def test_parse_submit_refusals(raw_body, code):
    with pytest.raises(WireError) as caught:
        parse_submit(raw_body)
    assert (caught.value.code, caught.value.status) == (code, 400)


# -- refusals over HTTP, signed as the SDK signs ---------------------------------------------
@pytest.mark.parametrize("raw_body", [
    body(""),                                                            # neither Object nor Url
    b"<Request><Conf><DetectType>Virus</DetectType></Conf></Request>",   # no Input at all
    body("<Object>a.doc</Object><Url>http://x.example/a.doc</Url>"),    # both
    body("<Url>file:///etc/passwd</Url>"),                               # Url not http(s)
    body(conf_xml="<DetectType>Porn</DetectType>"),                      # DetectType not Virus
    body(conf_xml=""),                                                   # DetectType missing
    body(conf_xml="<DetectType>Virus</DetectType><Callback>ftp://cb.example/</Callback>"),
    body(conf_xml="<DetectType>Virus</DetectType><Callback>not a url</Callback>"),
])
def test_invalid_argument(ci, raw, raw_body):
    assert error_of(raw(ci, "POST", "/virus/detect", raw_body)) == (400, "InvalidArgument")
    assert ci.backend.jobs == {}


@pytest.mark.parametrize("raw_body, code", [(b"<Request><Input>", "MalformedXML"), (b"", "MissingContent")])
def test_unreadable_body(ci, raw, raw_body, code):
    assert error_of(raw(ci, "POST", "/virus/detect", raw_body)) == (400, code)


def test_both_host_forms_are_accepted(ci, raw, store):
    store.put(BUCKET, "a.doc", b"x")
    for host in (f"{BUCKET}.ci.{REGION}.myqcloud.com", f"{BUCKET}.cos.{REGION}.myqcloud.com:80"):
        answer = raw(ci, "POST", "/virus/detect", body(), host=host)
        assert answer.status_code == 200, answer.text
        assert answer.headers["Content-Type"] == "application/xml"
        assert answer.headers["x-ci-request-id"]


@pytest.mark.parametrize("host", ["127.0.0.1", f"{BUCKET}.ci.ap-beijing.myqcloud.com",
                                  f"{BUCKET}.example.com"])
def test_host_must_name_a_bucket_of_this_region(ci, raw, host):
    assert error_of(raw(ci, "POST", "/virus/detect", body(), host=host)) == (400, "InvalidHost")


def test_unsigned_and_wrongly_signed_requests_are_403(ci, raw):
    assert error_of(raw(ci, "POST", "/virus/detect", body(), sign=False)) == (403, "AccessDenied")
    assert error_of(raw(ci, "POST", "/virus/detect", body(), secret_key="nope")) == (
        403, "SignatureDoesNotMatch")
    assert error_of(raw(ci, "GET", "/virus/detect/ss" + "1" * 32, secret_key="nope")) == (
        403, "SignatureDoesNotMatch")


def test_other_paths_and_methods(ci, raw):
    assert error_of(raw(ci, "GET", "/virus/detect")) == (405, "MethodNotAllowed")
    assert error_of(raw(ci, "DELETE", "/virus/detect/ss" + "1" * 32)) == (405, "MethodNotAllowed")
    assert error_of(raw(ci, "GET", "/virus/other")) == (404, "NoSuchResource")


# -- rendering, through werkzeug's test client ------------------------------------------------
def _signed_headers(credentials, method: str, path: str, data: bytes = b"") -> dict:
    """Authorization as the SDK computes it, for the in-process test client."""
    config = CosConfig(Region=REGION, SecretId=credentials.secret_id, SecretKey=credentials.secret_key)
    headers = {"Host": f"{BUCKET}.ci.{REGION}.myqcloud.com", "Content-Type": "application/xml"}
    prepared = requests.Request(method, "http://localhost" + path, headers=headers, data=data).prepare()
    CosS3Auth(config, path)(prepared)
    return dict(prepared.headers)


def test_query_nodes_in_the_spec_order(ci, credentials, store):
    store.put(BUCKET, "a.doc", eicar_bytes())
    app = Client(ci.app)
    data = body()
    submitted = app.post("/virus/detect", data=data,
                         headers=_signed_headers(credentials, "POST", "/virus/detect", data))
    assert submitted.status_code == 200
    job_id = ET.fromstring(submitted.data).findtext("JobsDetail/JobId")
    ci.backend.wait_idle(5)
    path = f"/virus/detect/{job_id}"
    answer = app.get(path, headers=_signed_headers(credentials, "GET", path))
    root = ET.fromstring(answer.data)
    assert [child.tag for child in root] == ["JobsDetail", "RequestId"]
    assert [child.tag for child in root.find("JobsDetail")] == QUERY_ORDER
    assert root.findtext("RequestId") == answer.headers["x-ci-request-id"]
    results = root.findall("JobsDetail/DetectDetail/Result")
    assert [[child.tag for child in result] for result in results] == [["FileName", "VirusName"]]


def test_callback_bodies_share_the_query_fields(ci, store):
    store.put(BUCKET, "a.doc", eicar_bytes())
    job = ci.backend.wait_for(ci.backend.submit_job(BUCKET, object_key="a.doc").job_id, 5)
    xml_body, xml_type = render_callback(job, "xml")
    json_body, json_type = render_callback(job, "json")
    assert (xml_type, json_type) == ("application/xml", "application/json")
    detail = json.loads(json_body)["JobsDetail"]
    assert list(detail) == [child.tag for child in ET.fromstring(xml_body).find("JobsDetail")]
    assert detail["DetectDetail"] == {"Result": [{"FileName": "a.doc",
                                                  "VirusName": "Eicar-Test-Signature"}]}
    with pytest.raises(ValueError):
        render_callback(job, "yaml")
