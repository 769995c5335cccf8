"""Invoke one SCF handler the way SCF's Python runtime does, for tests/deploy/test_layer.py.

Run as `python3.9 -S run_handler.py` with PYTHONPATH=<function dir>:<unzipped layer> (SCF:
/var/user:/opt) and the function's environment; stdin carries {"handler", "event", "context"}.
The last stdout line is MARK + JSON: the handler's return value (or its error), the files the
handler, cosguard and the SDK were imported from, and the interpreter's version. Works on 3.9.
"""
import importlib
import json
import os
import sys
import traceback

MARK = "@@run_handler@@ "

# Running a script puts its own folder first on sys.path; SCF has nothing of the sort.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)


def _origin(name):
    """Where `name` is (or would be) imported from in this process."""
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        return "not importable: %s" % exc
    # a namespace package (cosguard has no __init__.py) has no __file__, only __path__
    return getattr(module, "__file__", None) or list(getattr(module, "__path__", []))[0]


def main():
    request = json.load(sys.stdin)
    module_name, function_name = request["handler"].rsplit(".", 1)
    payload = {"python": "%d.%d.%d" % sys.version_info[:3], "site_loaded": "site" in sys.modules}
    try:
        module = importlib.import_module(module_name)
        payload["result"] = getattr(module, function_name)(request["event"], request["context"])
        payload["ok"] = True
    except BaseException as exc:  # noqa: B902 - report everything, SCF would too
        payload["ok"] = False
        payload["error"] = "%s: %s" % (type(exc).__name__, exc)
        payload["traceback"] = traceback.format_exc()
    payload["files"] = {name: _origin(name) for name in (module_name, "cosguard.runtime", "qcloud_cos",
                                                           "requests", "defusedxml")}
    sys.stdout.write("\n" + MARK + json.dumps(payload, default=str) + "\n")


if __name__ == "__main__":
    main()
