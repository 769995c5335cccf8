"""SCF timer trigger: apply verdicts whose callbacks were lost, resubmit failed submissions,
report jobs pending too long; then, with COSGUARD_RESCAN_AFTER_DAYS, rescan a slice of old clean
verdicts (cosguard/bulk/rescan_schedule.py)."""
import os

from cosguard.runtime import Runtime

RUNTIME = Runtime.from_env(os.environ)  # cold start: a bad deploy fails here, naming every bad variable
RUNTIME.sweeper  # the sweep loads now, not on the first timer


def main_handler(event, context):
    with RUNTIME.invocation(context):
        answer = RUNTIME.sweeper.sweep().as_dict()
        if RUNTIME.settings.rescan_after_days is not None:
            from cosguard.bulk.rescan_schedule import scheduled_rescans
            answer["rescan"] = scheduled_rescans(RUNTIME.scanner).as_dict()
    return answer
