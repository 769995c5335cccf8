"""cosguard.domain.jobs: what a CI job answer means, whatever shape CI gives it. The verdict rests on
this alone (callback bodies are never trusted): anything but Success + block/normal is a failed scan,
never clean. Found by mutation testing (docs/mutation-testing.md); the adversarial suites drive the
same answers through the local CI."""
import pytest

from cosguard.domain.jobs import VirusJob

BUCKET = "intake-1250000000"


def job(**detail):
    return VirusJob.from_response({"JobsDetail": dict({"JobId": "ss1", "State": "Success"}, **detail)})


@pytest.mark.parametrize("state, suggestion, verdict", [
    ("Success", "block", "infected"), ("Success", "Block", "infected"), ("Success", "BLOCK", "infected"),
    ("Success", "normal", "clean"), ("Success", "Normal", "clean"), ("Success", "nomal", "clean"),
    ("Success", "NOMAL", "clean"),
    ("Success", "review", "failed"), ("Success", "", "failed"), ("Success", "normal ", "failed"),
    ("Success", None, "failed"), ("Success", "blocked", "failed"),
    ("Failed", "block", "failed"), ("Failed", "normal", "failed"), ("Failed", "", "failed"),
    ("Running", "normal", "unfinished"), ("Submitted", "block", "unfinished"), ("", "normal", "unfinished"),
    ("success", "normal", "unfinished"), (None, None, "unfinished"),
])
def test_only_success_with_block_or_normal_is_a_verdict_and_nothing_else_is_clean(state, suggestion, verdict):
    answer = job(State=state, Suggestion=suggestion)
    seen = [name for name in ("infected", "clean", "failed") if getattr(answer, name)]
    assert seen == ([] if verdict == "unfinished" else [verdict])
    assert answer.finished == (verdict != "unfinished")


def test_every_field_is_read_and_missing_ones_are_empty():
    full = VirusJob.from_response({"JobsDetail": {
        "JobId": "ss1", "State": "Failed", "Suggestion": "normal", "Code": "InternalError", "Message": "boom",
        "Object": "up/a.exe", "Url": "", "CreationTime": "2026-12-07T10:00:00+0800"}})
    assert (full.job_id, full.state, full.suggestion, full.code, full.message, full.object_key,
            full.creation_time) == ("ss1", "Failed", "normal", "InternalError", "boom", "up/a.exe",
                                    "2026-12-07T10:00:00+0800")
    empty = VirusJob.from_response({})
    assert (empty.job_id, empty.state, empty.suggestion, empty.code, empty.message, empty.object_key,
            empty.url, empty.creation_time, empty.findings) == ("", "", "", "", "", "", "", "", ())
    assert not (empty.finished or empty.clean or empty.infected or empty.failed)


def test_a_list_of_jobs_details_reads_the_first_and_an_empty_list_reads_nothing():
    listed = VirusJob.from_response({"JobsDetail": [{"JobId": "first", "State": "Success", "Suggestion": "block"},
                                                    {"JobId": "second", "State": "Success", "Suggestion": "normal"}]})
    assert (listed.job_id, listed.infected) == ("first", True)
    assert VirusJob.from_response({"JobsDetail": []}).job_id == ""


def test_findings_in_any_shape_ci_sends_them_without_a_urls_signature():
    signed = "https://intake-1250000000.cos.ap-guangzhou.myqcloud.com/up/a.zip?q-sign-algorithm=sha1&q-signature=s"
    one_block_one_result = job(Suggestion="block", DetectDetail={"Result": {"FileName": "a.exe", "VirusName": "Eicar"}})
    assert one_block_one_result.findings == (("a.exe", "Eicar"),)
    many = job(Suggestion="block", DetectDetail=[
        {"Result": [{"FileName": signed, "VirusName": "Eicar"}, {"FileName": "in/b.com", "VirusName": "Eicar"},
                    {"FileName": "c.doc", "VirusName": "Macro"}, "not a result", {"VirusName": ""}]},
        None, {"Result": None}, {}])
    assert many.findings == (("https://intake-1250000000.cos.ap-guangzhou.myqcloud.com/up/a.zip", "Eicar"),
                             ("in/b.com", "Eicar"), ("c.doc", "Macro"), ("", ""))
    assert many.virus_names == ["Eicar", "Macro"]   # each once, sorted, never an empty name
    assert job(DetectDetail={"Result": {"FileName": "what?.exe", "VirusName": "X"}}).findings == (("what?.exe", "X"),)
    plain_http = "http://intake-1250000000.cos.ap-guangzhou.myqcloud.com/up/a.zip?q-signature=s?x=?"
    assert job(DetectDetail={"Result": {"FileName": plain_http, "VirusName": "X"}}).findings == \
        (("http://intake-1250000000.cos.ap-guangzhou.myqcloud.com/up/a.zip", "X"),)


def test_the_scanned_key_is_cis_object_or_the_key_its_url_names_in_this_bucket():
    assert job(Object="up/a.exe").scanned_key(BUCKET) == "up/a.exe"
    url = f"https://{BUCKET}.cos.ap-guangzhou.myqcloud.com/up/%E6%96%87%20a.exe?q-signature=s"
    by_url = job(Url=url)
    assert by_url.scanned_key(BUCKET) == "up/\u6587 a.exe"
    assert by_url.scanned_key("other-1250000000") == ""
    assert job(Object="up/a.exe", Url=url).scanned_key(BUCKET) == "up/a.exe"
    assert url not in repr(by_url)   # a read credential: never printed or logged
