"""The real seam, cli/scf_api.TccliScfApi, offline: the installed tccli accepts its command line and
parameter file (and fails as it fails, its error code read back), and an answer is parsed. Nothing
leaves loopback: tccli is pointed at a closed local port."""
from __future__ import annotations

import os
import shutil
import socket
import stat
import sys

import pytest

from cosguard.cli.scf_api import ScfApiError, TccliScfApi, function_url


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_installed_tccli_takes_the_call_and_its_error_code_is_read(tmp_path, monkeypatch):
    tccli = shutil.which("tccli")
    if tccli is None:
        pytest.skip("the tccli command is not installed (pip install tccli)")
    monkeypatch.setenv("HOME", str(tmp_path))   # no operator configuration is read
    api = TccliScfApi("ap-guangzhou", tccli=tccli, timeout=120, extra_args=[
        "--secretId", "AKIDoffline", "--secretKey", "offline", "--endpoint", f"127.0.0.1:{closed_port()}"])
    with pytest.raises(ScfApiError) as info:
        api.call("ListTriggers", {"FunctionName": "quarantine-callback-prod-cosguard", "Limit": 100})
    assert info.value.code == "ClientNetworkError", info.value.message


def test_an_answer_is_parsed_and_the_parameters_travel_in_a_file(tmp_path):
    fake = tmp_path / "tccli"
    fake.write_text(f"""#!{sys.executable}
import json, sys
args = sys.argv[1:]
assert args[:4] == ["scf", "ListTriggers", "--region", "ap-guangzhou"], args
assert args[4] == "--cli-input-json" and args[5].startswith("file://"), args
params = json.load(open(args[5][len("file://"):]))
desc = json.dumps({{"AuthType": "NONE", "NetConfig": {{"EnableIntranet": False, "EnableExtranet": True,
                   "ExtranetUrl": "https://1250000000-abc.ap-guangzhou.tencentscf.com"}}}})
print(json.dumps({{"TotalCount": 1, "Triggers": [{{"Type": "http", "Qualifier": "$DEFAULT",
                   "TriggerName": "url-trigger", "TriggerDesc": desc, "Echo": params, "File": args[5][7:]}}]}}))
""")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    answer = TccliScfApi("ap-guangzhou", tccli=str(fake)).call("ListTriggers", {"FunctionName": "f", "Limit": 100})
    assert answer["Triggers"][0]["Echo"] == {"FunctionName": "f", "Limit": 100}
    assert function_url(answer["Triggers"]) == "https://1250000000-abc.ap-guangzhou.tencentscf.com"
    parameter_file = answer["Triggers"][0]["File"]
    assert parameter_file.endswith(".json") and not os.path.exists(parameter_file)   # it held the token


def test_a_failing_tool_is_an_scf_error_not_a_crash(tmp_path):
    api = TccliScfApi("ap-guangzhou", tccli=str(tmp_path / "no-such-tccli"))
    with pytest.raises(ScfApiError) as info:
        api.call("GetFunction", {"FunctionName": "f"})
    assert info.value.code == "ToolFailed"
