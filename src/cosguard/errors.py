"""cosguard's one error family.

    CosguardError
    ├── ConfigError            bad or missing environment; lists every problem at once
    ├── EventError             an event or request that cosguard cannot accept
    │   ├── EventParseError        not a COS trigger event / unreadable record
    │   ├── CallbackRejected       a callback request refused (carries its HTTP status)
    │   ├── ForeignJobError        a callback's token was issued for another upload than the job's
    ├── CloudError             a COS or CI call failed (SDK errors translated at the boundary)
    │   ├── CloudTransientError    worth retrying: throttling, 5xx, timeouts, connection errors
    │   └── CloudPermanentError    will not heal by retrying: 4xx such as AccessDenied
    │       └── NotFoundError          the object, job or key does not exist
    ├── QuarantineError        an infected object could not be moved or deleted; original kept
    │   └── CopyRefused            COS refused the copy for good (a 4xx): the verdict falls back
    ├── StaleObjectError       the object changed since it was scanned; the verdict is not its own
    └── SubmissionError        some records of an event could not be submitted (raised once, at the end)
"""
from __future__ import annotations

from typing import Optional, Sequence


class CosguardError(Exception):
    """Root of every error cosguard raises on purpose."""


class ConfigError(CosguardError):
    """The environment does not describe a working deployment."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("invalid configuration: " + "; ".join(self.problems))


class EventError(CosguardError):
    """An event or request that cosguard cannot accept."""


class EventParseError(EventError):
    """Not a COS trigger event, or a record without the fields cosguard needs."""



class ForeignJobError(EventError):
    """A callback names a job of another upload than the one its URL's token was issued for."""

class CallbackRejected(EventError):
    """A callback request refused before anything was touched."""

    def __init__(self, status: int, reason: str):
        self.status = status
        self.reason = reason
        super().__init__(f"{status}: {reason}")


class CloudError(CosguardError):
    """A COS or CI call failed; `code` is the service's error code when it sent one."""

    retryable = False

    def __init__(self, message: str, *, code: str = "", status: Optional[int] = None,
                 request_id: str = "", operation: str = ""):
        self.code = code
        self.status = status
        self.request_id = request_id
        self.operation = operation
        super().__init__(message)


class CloudTransientError(CloudError):
    """Throttling, a 5xx, a timeout or a broken connection: retrying may heal it."""

    retryable = True


class CloudPermanentError(CloudError):
    """A 4xx that retrying will not heal (not bound to CI, no permission, bad request)."""


class NotFoundError(CloudPermanentError):
    """The object, version, job or bookkeeping entry does not exist."""


class PreconditionFailed(CloudPermanentError):
    """A conditional write lost: the target already exists or changed."""


class QuarantineError(CosguardError):
    """An infected object could not be moved or deleted; the original stays where it was."""


class CopyRefused(QuarantineError):
    """COS refused the copy with a 4xx other than a failed precondition (no permission, a limit):
    retrying cannot heal it, so the verdict takes effect without the copy (domain/fallback.py)."""

    def __init__(self, message: str, cause: CloudError):
        self.cause = cause
        super().__init__(message)


class StaleObjectError(CosguardError):
    """The object at the key is no longer the version that was scanned: leave it to its own job."""


class SubmissionError(CosguardError):
    """Some records of an event were not submitted; raised after all records so SCF retries."""

    def __init__(self, failures: Sequence[str]):
        self.failures = list(failures)
        super().__init__(f"{len(self.failures)} record(s) not submitted: " + "; ".join(self.failures[:5]))
