"""Every `tccli scf` command in deploy/README.md, and every SCF call written in deploy/deploy.py and
cosguard's SCF seam, checked against the SCF API schema the installed tccli ships: the action
exists, each parameter is a member, required members are given, values have the member's type and
JSON values (Code, Layers, Environment, TriggerDesc for cos / timer / http) parse into members that
exist. Commands are read from the files themselves, so the docs cannot drift."""
from __future__ import annotations

import ast
import json
import re
import shlex
from typing import Dict, List, Tuple

import pytest

import scf_schema
from deploy_helpers import ROOT

pytest.importorskip("tccli", reason="pip install tccli (the test extra has it)")

README = ROOT / "deploy" / "README.md"
SHELL_VARS = {"R": "ap-guangzhou", "ROLE": "cosguard-scf-role", "DEPLOY_BUCKET": "deploy-1250000000",
              "LAYER_VERSION": "1"}


def bash_blocks(text: str) -> List[str]:
    return re.findall(r"```bash\n(.*?)```", text, re.S)


def logical_lines(block: str) -> List[str]:
    return [line.strip() for line in block.replace("\\\n", " ").splitlines()]


SUBSTITUTED: Dict[str, str] = {}


def _unsubstitute(word: str) -> str:
    return re.sub(r"@@\d+@@", lambda m: SUBSTITUTED[m.group(0)], word)


def _substitutions(text: str, env: Dict[str, str], preflight, app, example_env) -> str:
    """Shell expansion just far enough for the README: $VAR, ${VAR%-*}, and $(...) whose output
    matters (preflight's --environment JSON) evaluated the way the command would."""
    def command(match_text: str) -> str:
        if match_text.startswith("python deploy/preflight.py --environment"):
            instance = _unsubstitute(shlex.split(_substitutions(match_text, env, preflight, app, example_env))[-1])
            return json.dumps(preflight.scf_api_environment(app.instances[instance], example_env))
        if "base64" in match_text:
            return "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="
        if "cosguard-layer.json" in match_text:
            return "0" * 64
        raise AssertionError(f"unexpected command substitution $({match_text})")

    out, i = [], 0
    while i < len(text):
        if text.startswith("$(", i):
            depth, j = 1, i + 2
            while depth:
                depth += {"(": 1, ")": -1}.get(text[j], 0)
                j += 1
            # the shell does not re-split or unquote a substitution's output: stand in a token
            token = f"@@{len(SUBSTITUTED)}@@"
            SUBSTITUTED[token] = command(text[i + 2:j - 1])
            out.append(token)
            i = j
            continue
        match = re.match(r"\$\{(\w+)%-\*\}|\$\{(\w+)\}|\$(\w+|\d)", text[i:])
        if match and not text.startswith("$DEFAULT", i):
            name = match.group(1) or match.group(2) or match.group(3)
            assert name in env, f"README uses ${name}, which this test does not know"
            value = env[name]
            out.append(value.rsplit("-", 1)[0] if match.group(1) else value)
            i += match.end()
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


def readme_commands(preflight, app, example_env) -> List[Tuple[str, Dict[str, str]]]:
    """(action, {parameter: raw value}) for each `tccli scf` line, shell functions expanded per call."""
    found = []
    for block in bash_blocks(README.read_text("utf-8")):
        lines = logical_lines(block)
        functions: Dict[str, List[str]] = {}
        current = None
        for line in lines:
            head = re.match(r"(\w+)\(\)\s*\{", line)
            if head:
                current = functions.setdefault(head.group(1), [])
                continue
            if current is not None:
                if line == "}":
                    current = None
                else:
                    current.append(line)
                continue
            words = line.split()
            calls = []
            if words and words[0] in functions:
                positional = {str(n): v for n, v in enumerate(shlex.split(line.split("#")[0])[1:], start=1)}
                calls = [(body, dict(SHELL_VARS, **positional)) for body in functions[words[0]]]
            else:
                calls = [(line, SHELL_VARS)]
            for text, env in calls:
                if not text.startswith("tccli scf "):
                    continue
                argv = [_unsubstitute(w) for w in
                        shlex.split(_substitutions(text.split("  #")[0], env, preflight, app, example_env))]
                action, rest = argv[2], argv[3:]
                assert len(rest) % 2 == 0 and all(r.startswith("--") for r in rest[::2]), argv
                params = dict(zip((r[2:] for r in rest[::2]), rest[1::2]))
                assert params.pop("region") == "ap-guangzhou"
                found.append((action, params))
    return found


def typed(action: str, params: Dict[str, str]) -> Dict[str, object]:
    """Command-line strings as tccli sends them: objects and lists are JSON, integers numbers."""
    members = scf_schema.request_members(action)
    out = {}
    for name, raw in params.items():
        kind = members[name]["type"] if name in members else "string"
        if kind in ("object", "list"):
            out[name] = json.loads(raw)   # fails the test when the README's JSON does not parse
        elif kind == "int":
            out[name] = int(raw)
        else:
            out[name] = raw
    return out


@pytest.fixture(scope="module")
def commands(preflight, app, example_env):
    return readme_commands(preflight, app, example_env)


def test_the_readme_has_the_commands_a_deploy_needs(commands):
    actions = [a for a, _ in commands]
    for needed in ("PublishLayerVersion", "CreateFunction", "CreateTrigger", "ListTriggers", "DeleteFunction",
                   "DeleteLayerVersion"):
        assert needed in actions, needed
    assert actions.count("CreateFunction") == 3
    assert sorted(p["Type"] for a, p in commands if a == "CreateTrigger") == ["cos", "http", "timer"]


def test_every_readme_command_matches_the_schema(commands):
    for action, params in commands:
        assert scf_schema.problems(action, typed(action, params)) == [], (action, params)


def test_the_readme_trigger_descriptions_are_what_the_deploy_script_sends(commands, preflight, app, example_env):
    from deploy_helpers import load_script
    deploy = load_script("deploy/deploy.py", "cosguard_deploy_script_3")
    plan = deploy.make_plan(app, example_env)
    sent = {t.type: (t.name, json.loads(t.desc) if t.type != "timer" else t.desc)
            for f in plan.functions.values() for t in f.triggers}
    for _, params in [c for c in commands if c[0] == "CreateTrigger"]:
        desc = params["TriggerDesc"]
        expected_name, expected_desc = sent[params["Type"]]
        assert (json.loads(desc) if params["Type"] != "timer" else desc) == expected_desc
        assert params["TriggerName"] == expected_name


@pytest.mark.parametrize("action, params, expected", [
    ("CreateTriger", {}, "no such SCF action"),
    ("CreateTrigger", {"FunctionName": "f", "Type": "timer", "TriggerDesc": "0 */10 * * * *"}, "TriggerName"),
    ("CreateTrigger", {"FunctionName": "f", "TriggerName": "t", "Type": "timer",
                       "TriggerDesc": "0 */10 * * * *"}, "6 cron fields"),
    ("CreateTrigger", {"FunctionName": "f", "TriggerName": "b", "Type": "cos",
                       "TriggerDesc": '{"event": "cos:ObjectCreated:*", "filter": {"prefix": "in/"}}'}, "prefix unknown"),
    ("CreateTrigger", {"FunctionName": "f", "TriggerName": "u", "Type": "http",
                       "TriggerDesc": '{"AuthType": "NONE"}'}, "NetConfig"),
    ("CreateFunction", {"FunctionName": "f", "Code": {"ZipFile": "x", "Bucket": "b"}}, "Code.Bucket"),
    ("CreateFunction", {"FunctionName": "f", "Code": {}, "Layers": [{"LayerName": "l"}]}, "LayerVersion"),
    ("UpdateFunctionConfiguration", {"FunctionName": "f", "Environment": {"Variables": [{"Name": "A"}]}},
     "Name: not a member"),
    ("PublishLayerVersion", {"LayerName": "l", "CompatibleRuntimes": "Python3.9", "Content": {}}, "str where"),
])
def test_the_checker_refuses_what_the_schema_refuses(action, params, expected):
    found = scf_schema.problems(action, params)
    assert any(expected in p for p in found), found


# -- the calls written in the code ---------------------------------------------------------------
def literal_calls(path) -> List[Tuple[str, List[str], int]]:
    """(action, parameter names, line) for each `<x>.call("Action", {...})` with a literal dict."""
    calls = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "call" \
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            assert len(node.args) == 2 and isinstance(node.args[1], ast.Dict), \
                f"{path.name}:{node.lineno}: pass the parameters as a literal dict so they can be checked"
            keys = node.args[1].keys
            assert all(isinstance(k, ast.Constant) for k in keys), f"{path.name}:{node.lineno}: ** in params"
            calls.append((node.args[0].value, [k.value for k in keys], node.lineno))
    return calls


@pytest.mark.parametrize("relative", ["deploy/deploy.py", "src/cosguard/cli/scf_api.py",
                                      "src/cosguard/cli/verify_deploy.py"])
def test_every_call_in_the_code_names_members_and_required_ones(relative):
    calls = literal_calls(ROOT / relative)
    assert calls, relative
    for action, names, line in calls:
        assert action in scf_schema.schema()["actions"], f"{relative}:{line}: {action}"
        members = scf_schema.request_members(action)
        unknown = [n for n in names if n not in members]
        missing = [n for n, m in members.items() if m.get("required") and n not in names]
        assert not unknown and not missing, f"{relative}:{line}: {action} unknown {unknown}, missing {missing}"
