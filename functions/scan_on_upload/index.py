"""SCF COS upload trigger: every new object gets exactly one CI virus detection job."""
import os

from cosguard.runtime import Runtime
from cosguard.triggers.upload import scan_upload_event

RUNTIME = Runtime.from_env(os.environ)  # cold start: a bad deploy fails here, naming every bad variable
RUNTIME.scanner  # the scan path loads now, not on the first event


def main_handler(event, context):
    with RUNTIME.invocation(context, "scan_on_upload"):
        summary = scan_upload_event(RUNTIME.scanner, event)
    return summary.as_dict()
