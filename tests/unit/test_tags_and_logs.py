import io
import json
import logging

from cosguard.domain.status import ScanStatus
from cosguard.domain.tags import merge, replaced
from cosguard.infra import logs


def test_user_tags_are_kept():
    merged, fitted = merge({"team": "a", "cosguard-status": "pending"}, ScanStatus.CLEAN, "ss1")
    assert merged == {"team": "a", "cosguard-status": "clean", "cosguard-job": "ss1"}
    assert fitted


def test_ten_tags_never_drop_a_user_tag_unless_asked():
    user = {f"t{i}": str(i) for i in range(10)}
    merged, fitted = merge(user, ScanStatus.PENDING, "ss1")
    assert merged == user and not fitted
    nine = {f"t{i}": str(i) for i in range(9)}
    merged, fitted = merge(nine, ScanStatus.PENDING, "ss1")
    assert merged["cosguard-status"] == "pending" and "cosguard-job" not in merged and fitted
    merged, fitted = merge(user, ScanStatus.CLEAN, "ss1", make_room=True)
    assert fitted and merged == dict({k: v for k, v in user.items() if k != "t9"}, **{"cosguard-status": "clean"})
    assert replaced(user, ScanStatus.CLEAN, "ss1") == "t9" and replaced(nine, ScanStatus.CLEAN) is None


def test_cosguards_job_tag_gives_way_to_its_status():
    full = dict({f"t{i}": str(i) for i in range(9)}, **{"cosguard-job": "old"})
    merged, fitted = merge(full, ScanStatus.INFECTED, "ss2")
    assert fitted and merged["cosguard-status"] == "infected" and "cosguard-job" not in merged


def test_json_lines_with_bound_context_and_masked_secrets():
    stream = io.StringIO()
    logger = logging.getLogger("cosguard.test-json")
    logger.handlers[:] = []
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logs.register_secrets(["very-secret-key-123"])
    with logs.bound(request_id="req-1"):
        logs.event(logger, "record", outcome="submitted", key="a.txt",
                   reason="auth q-sign-algorithm=sha1&q-ak=AK&q-signature=abc very-secret-key-123",
                   url="https://x/cb?bucket=b&token=deadbeef")
    line = json.loads(stream.getvalue())
    assert line["request_id"] == "req-1" and line["key"] == "a.txt"
    assert (line["event"], line["message"], line["outcome"]) == ("record", "record", "submitted")
    assert "very-secret-key-123" not in stream.getvalue()
    assert "q-signature" not in stream.getvalue()
    assert "deadbeef" not in stream.getvalue()


def test_the_sdks_own_error_lines_stay_out_of_the_logs(capsys):
    """A claim's expected 404 must not print the SDK's raw XML error at ERROR on every upload."""
    import logging as stdlib_logging

    logs.configure("DEBUG")
    stdlib_logging.getLogger("qcloud_cos.cos_client").error("<Error><Code>NoSuchKey</Code></Error>")
    captured = capsys.readouterr()
    assert "NoSuchKey" not in captured.out + captured.err


def test_a_job_tag_is_only_ever_the_job_of_this_write():
    """An uploader's (or an earlier write's) cosguard-job must not stay beside a status it did not set."""
    merged, fitted = merge({"team": "a", "cosguard-job": "forged"}, ScanStatus.ERROR)
    assert fitted and merged == {"team": "a", "cosguard-status": "error"}
    merged, fitted = merge({"team": "a", "cosguard-job": "old"}, ScanStatus.CLEAN, "ss2")
    assert fitted and merged == {"team": "a", "cosguard-status": "clean", "cosguard-job": "ss2"}


def test_an_object_already_carrying_the_status_never_loses_a_user_tag():
    full = dict({f"t{i}": str(i) for i in range(9)}, **{"cosguard-status": "pending"})
    merged, fitted = merge(full, ScanStatus.INFECTED, "ss3", make_room=True)
    assert fitted and merged == dict(full, **{"cosguard-status": "infected"})
    assert replaced(full, ScanStatus.INFECTED, "ss3") is None


def test_the_status_read_back_from_tags():
    from cosguard.domain.tags import status_of
    assert status_of({"cosguard-status": "clean", "team": "a"}) is ScanStatus.CLEAN
    assert status_of({"cosguard-status": "infected"}) is ScanStatus.INFECTED
    assert status_of({"team": "a"}) is None and status_of({"cosguard-status": "Clean"}) is None
