"""One SCF function instance: a process that imports `<function dir>/index.py` as SCF does and
runs invocations sent by the local SCF runtime.

Protocol: JSON lines. The worker answers `{"ready": true}` or `{"init_error": ...}` once, then one
`{"id", "ok", "result" | "error"}` per `{"id", "event", "context"}` request. The protocol uses the
process's original stdout; the function's own output (its JSON logs) goes to stderr.
"""
from __future__ import annotations

import importlib
import json
import os
import sys
import traceback


def main(argv=None) -> int:
    function_dir, handler = (argv or sys.argv[1:])[:2]
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # the function's prints and logs go to stderr
    sys.stdout = sys.stderr
    sys.path.insert(0, function_dir)
    module_name, _, attribute = handler.rpartition(".")
    try:
        func = getattr(importlib.import_module(module_name), attribute)
    except Exception as exc:  # noqa: BLE001 - reported to the runtime, as SCF reports init errors
        protocol.write(json.dumps({"init_error": f"{type(exc).__name__}: {exc}"}) + "\n")
        return 1
    protocol.write(json.dumps({"ready": True, "pid": os.getpid()}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        try:
            result = func(request["event"], request["context"])
            answer = {"id": request["id"], "ok": True, "result": result}
        except Exception as exc:  # noqa: BLE001 - an execution error, retried by the runtime
            traceback.print_exc()
            answer = {"id": request["id"], "ok": False,
                      "error": {"type": type(exc).__name__, "message": str(exc)}}
        protocol.write(json.dumps(answer, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
