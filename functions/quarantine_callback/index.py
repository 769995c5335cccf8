"""SCF function URL for CI's callbacks: verify the verdict with CI, then quarantine or mark clean."""
import os

from cosguard.runtime import Runtime

RUNTIME = Runtime.from_env(os.environ, require_callback_url=False)  # cold start, every bad variable named
RUNTIME.callbacks  # the callback path loads now, not on the first callback


def main_handler(event, context):
    with RUNTIME.invocation(context, "quarantine_callback"):
        answer = RUNTIME.callbacks.handle(event)
    return answer.as_scf()
