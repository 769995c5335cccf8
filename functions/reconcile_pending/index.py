"""SCF timer trigger: apply verdicts whose callbacks were lost, resubmit failed submissions,
report jobs pending too long; once a day, the digest (COSGUARD_DIGEST_HOUR)."""
import os

from cosguard.runtime import Runtime

RUNTIME = Runtime.from_env(os.environ)  # cold start: a bad deploy fails here, naming every bad variable
RUNTIME.sweeper  # the sweep loads now, not on the first timer


def main_handler(event, context):
    with RUNTIME.invocation(context, "reconcile_pending"):
        report = RUNTIME.sweeper.sweep()
        RUNTIME.daily_digest(report)
    return report.as_dict()
