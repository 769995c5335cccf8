"""What a function builds once at cold start and reuses on warm invocations."""
from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator, Mapping, Optional

from .infra import logs
from .triggers.callback import CallbackService
from .infra.cloud import CloudGateway
from .infra.config import Settings
from .infra.notify import Notifier
from .infra.retry import Deadline
from .domain.scan import Scanner
from .bulk.sweep import Sweeper
from .domain.verdict import VerdictService


def _request_id(context: Any) -> str:
    if isinstance(context, Mapping):
        return str(context.get("request_id", "") or "")
    return str(getattr(context, "request_id", "") or "")


class Runtime:
    """Settings, the cloud gateway and the services over it, for one function instance."""

    def __init__(self, settings: Settings, gateway: Optional[CloudGateway] = None):
        self.settings = settings
        self.gateway = gateway or CloudGateway(settings)
        logs.configure(settings.log_level)
        logs.register_secrets([settings.secret_key, settings.callback_token, settings.session_token or ""])
        notifier = Notifier(settings) if settings.notify_url else None
        self.scanner = Scanner(settings, self.gateway, notifier=notifier)
        self.verdicts = VerdictService(settings, self.gateway, notifier=notifier)
        self.verdicts.rescan = lambda info: self.scanner.scan_object(info.bucket, [info.key], info.version_id,
                                                                     info=info)
        self.callbacks = CallbackService(settings, self.verdicts)
        self.sweeper = Sweeper(settings, self.verdicts, self.scanner)

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None, **kwargs: Any) -> "Runtime":
        """Raises ConfigError naming every bad variable."""
        return cls(Settings.from_env(os.environ if env is None else env, **kwargs))

    @contextlib.contextmanager
    def invocation(self, context: Any, env: Optional[Mapping[str, str]] = None) -> Iterator[None]:
        """Per-invocation setup: the deadline, fresh role credentials, the request id bound to logs."""
        env = os.environ if env is None else env
        self.gateway.deadline = Deadline.from_context(context)
        self.gateway.refresh_credentials(env)
        logs.register_secrets([env.get("TENCENTCLOUD_SECRETKEY", ""), env.get("TENCENTCLOUD_SESSIONTOKEN", "")])
        with logs.bound(request_id=_request_id(context)):
            yield
