"""Errors, as a person at a shell needs them: one line that says what failed and what to do, and
the exit code docs/operations.md documents. `--debug` shows the traceback as well.

The first errors a real deployment meets are an endpoint that does not answer, keys COS refuses
and a bucket that does not exist: each gets its own sentence, named from what COS answered (the
error codes of doc 436/7730), never guessed from the command that ran."""
from __future__ import annotations

from typing import NamedTuple, Optional
from urllib.parse import urlsplit

import requests

from ..errors import CloudError, ConfigError, CosguardError

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_CLOUD, EXIT_BUG, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130

_KEY_CODES = {"SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidSecretId", "ExpiredToken",
              "InvalidToken", "TokenRefreshRequired", "RequestTimeTooSkewed"}
_ENV_HINT = "pass --env-file FILE (e.g. the file `cosguard local --env-file FILE` writes) or export them"


class UsageError(CosguardError):
    """An argument that cannot be meant for this deployment (a bucket it does not serve): exit 2."""


class Failure(NamedTuple):
    message: str
    exit_code: int


def explain(exc: BaseException, settings=None, env_file: Optional[str] = None) -> Failure:
    """What `exc` means for the person who ran the command, and the exit code that says so."""
    if isinstance(exc, ConfigError):
        return Failure(_config(exc, env_file), EXIT_USAGE)
    if isinstance(exc, UsageError):
        return Failure(str(exc), EXIT_USAGE)
    if isinstance(exc, CloudError):
        return Failure(_cloud(exc, settings), EXIT_CLOUD)
    sdk = _sdk_error(exc)
    if sdk is not None:
        return Failure(_cloud(sdk, settings), EXIT_CLOUD)
    if isinstance(exc, CosguardError):
        return Failure(str(exc), EXIT_FINDINGS)
    return Failure(f"internal error: {type(exc).__name__}: {exc} (a bug: rerun with --debug for the "
                   "traceback and report it)", EXIT_BUG)


def _config(exc: ConfigError, env_file: Optional[str]) -> str:
    missing = [p[:-len(" is required")] for p in exc.problems if p.endswith(" is required")]
    others = [p for p in exc.problems if not p.endswith(" is required")]
    parts = []
    if missing:
        parts.append(f"{', '.join(missing)} not set" + ("" if env_file else f": {_ENV_HINT}"))
    parts += others
    return "invalid configuration: " + "; ".join(parts)


def _sdk_error(exc: BaseException) -> Optional[CloudError]:
    """An SDK error that reached the CLI untranslated (a call outside the gateway), as cosguard's."""
    from qcloud_cos.cos_exception import CosClientError, CosServiceError

    from ..infra.cloud import translate_sdk_errors
    if not isinstance(exc, (CosClientError, CosServiceError, requests.RequestException)):
        return None
    try:
        with translate_sdk_errors(""):
            raise exc
    except CloudError as translated:
        return translated
    except requests.RequestException as raw:
        return CloudError(str(raw))
    return None  # pragma: no cover


def _cloud(exc: CloudError, settings) -> str:
    service = "CI" if "virus" in (exc.operation or "").lower() or "Job" in (exc.operation or "") else "COS"
    connection = _connection_error(exc)
    if connection is not None:
        where = _url(connection) or _endpoint(service, settings)
        why = "timed out" if isinstance(connection, requests.Timeout) else "connection refused" \
            if "refused" in str(connection).lower() else "no connection"
        return (f"cannot reach {service} at {where} ({why}): check {_endpoint_hint(service, settings)}")
    code, status, operation = exc.code or "", exc.status, exc.operation or "a request"
    answered = f"{status} {code}".strip() + (f" on {operation}" if operation else "")
    bucket = _bucket(exc)
    if code in _KEY_CODES:
        return (f"{service} refused the keys ({answered}): check TENCENTCLOUD_SECRETID and "
                "TENCENTCLOUD_SECRETKEY (and TENCENTCLOUD_SESSIONTOKEN for temporary keys) in the "
                "environment or the --env-file")
    if code == "NoSuchBucket":
        region = getattr(settings, "region", "") or "the region"
        return (f"the bucket {bucket or '(unnamed)'} does not exist in {region} ({answered}): check the "
                "bucket names (COSGUARD_BUCKETS, COSGUARD_QUARANTINE_BUCKET, COSGUARD_STATE_BUCKET, "
                "--bucket) and COSGUARD_REGION")
    if code == "AccessDenied" or status == 403:
        return (f"{service} denied {operation}{f' on {bucket}' if bucket else ''} ({answered}): the keys "
                "in TENCENTCLOUD_SECRETID need that permission (CAM policy)")
    request = f", request id {exc.request_id}" if exc.request_id else ""
    detail = str(exc).split(": ", 1)[-1][:200]
    return f"{service} failed ({answered}{request}): {detail}"


def _connection_error(exc: BaseException) -> Optional[requests.RequestException]:
    """The broken connection or timeout under `exc`, whatever the SDK wrapped it in."""
    seen = set()
    current: Optional[BaseException] = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (requests.ConnectionError, requests.Timeout)):
            return current
        current = current.__cause__ or current.__context__
    return None


def _url(error: requests.RequestException) -> str:
    request = getattr(error, "request", None)
    url = getattr(request, "url", "") or ""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def _endpoint(service: str, settings) -> str:
    endpoint = getattr(settings, "ci_endpoint" if service == "CI" else "cos_endpoint", None) \
        or getattr(settings, "cos_endpoint", None)
    if endpoint:
        return str(endpoint)
    region = getattr(settings, "region", "") or "?"
    return f"{service}'s endpoint in {region}"


def _endpoint_hint(service: str, settings) -> str:
    variable = "COSGUARD_CI_ENDPOINT" if service == "CI" and getattr(settings, "ci_endpoint", None) \
        else "COSGUARD_COS_ENDPOINT"
    if getattr(settings, "cos_endpoint", None):
        return (f"{variable} and that the service is running (a `cosguard local` must still be "
                "running: its env file goes when it stops)")
    return "the network (DNS, proxy, firewall) and COSGUARD_REGION"


def _bucket(exc: CloudError) -> str:
    """The bucket COS named in its error's Resource (`<bucket>.cos.<region>.myqcloud.com/<key>`)."""
    cause = exc.__cause__
    resource = ""
    if cause is not None and hasattr(cause, "get_resource_location"):
        resource = cause.get_resource_location() or ""
    host = resource.split("/", 1)[0]
    if ".cos." in host or ".ci." in host:
        return host.split(".", 1)[0]
    parts = [p for p in resource.split("/") if p]
    return parts[0] if resource.startswith("/") and parts else ""
