"""What a function builds once at cold start and reuses on warm invocations."""
from __future__ import annotations

import contextlib
import os
import threading
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Optional

from .domain.seal import sealer_for
from .infra import logs, metrics
from .infra.cloud import CloudGateway
from .infra.config import Settings
from .infra.retry import Deadline, within

log = logs.get_logger("cosguard.runtime")

if TYPE_CHECKING:  # imported where first used: each handler loads only the services it calls
    from .bulk.sweep import Sweeper
    from .domain.scan import Scanner
    from .domain.verdict import VerdictService
    from .infra.notify import Notifier
    from .triggers.callback import CallbackService


def _function_name(context: Any) -> str:
    if isinstance(context, Mapping):
        return str(context.get("function_name", "") or "")
    return str(getattr(context, "function_name", "") or "")


def _request_id(context: Any) -> str:
    if isinstance(context, Mapping):
        return str(context.get("request_id", "") or "")
    return str(getattr(context, "request_id", "") or "")


class Runtime:
    """Settings, the cloud gateway and the services over it, for one function instance.

    Settings and the gateway are built at once (a bad deploy fails at cold start); each service is
    built, and its module imported, the first time it is used, so the upload trigger never loads
    the callback's XML parser nor the sweep, and the callback never loads the sweep. A handler
    touches its own service at cold start (`RUNTIME.scanner`), so that import is not paid on the
    first event instead.
    """

    def __init__(self, settings: Settings, gateway: Optional[CloudGateway] = None):
        self.settings = settings
        self.gateway = gateway or CloudGateway(settings)
        logs.configure(settings.log_level)
        logs.register_secrets([settings.secret_key, settings.callback_token, settings.session_token or "",
                               *settings.callback_token_previous])
        self.sealer = sealer_for(settings)  # one per instance: its rejections feed the reports
        self._services: dict = {}
        self._building = threading.RLock()

    def _service(self, name: str, build) -> Any:
        found = self._services.get(name)
        if found is None:
            with self._building:
                found = self._services.get(name)
                if found is None:
                    found = self._services[name] = build()
        return found

    @property
    def notifier(self) -> Optional["Notifier"]:
        """The webhook sender, or None when COSGUARD_NOTIFY_URL is unset (notify is not imported then)."""
        if not self.settings.notify_url:
            return None

        def build():
            from .infra.notify import Notifier
            return Notifier(self.settings)
        return self._service("notifier", build)

    @property
    def scanner(self) -> "Scanner":
        def build():
            from .domain.scan import Scanner
            return Scanner(self.settings, self.gateway, notifier=self.notifier, sealer=self.sealer)
        return self._service("scanner", build)

    @property
    def verdicts(self) -> "VerdictService":
        def build():
            from .domain.verdict import VerdictService
            verdicts = VerdictService(self.settings, self.gateway, notifier=self.notifier, sealer=self.sealer)
            # a version made current again by removing a newer one is scanned like a new upload
            verdicts.rescan = lambda info: self.scanner.scan_object(info.bucket, [info.key], info.version_id,
                                                                    info=info)
            # a version deleted by someone else may have been read for another's job: recheck their verdicts
            verdicts.recheck = lambda bucket, key, since: self.scanner.recheck(bucket, key, since)
            return verdicts
        return self._service("verdicts", build)

    @property
    def callbacks(self) -> "CallbackService":
        def build():
            from .triggers.callback import CallbackService
            return CallbackService(self.settings, self.verdicts)
        return self._service("callbacks", build)

    @property
    def sweeper(self) -> "Sweeper":
        def build():
            from .bulk.sweep import Sweeper
            return Sweeper(self.settings, self.verdicts, self.scanner)
        return self._service("sweeper", build)

    def daily_digest(self, report: Any) -> Optional[bool]:
        """The reconcile timer's once-a-day digest (COSGUARD_DIGEST_HOUR, bulk/digest.py), after
        its sweep; None when none is configured or due."""
        notifier = self.notifier
        if self.settings.digest_hour is None or notifier is None:
            return None
        from .bulk.digest import DailyDigest
        digest = self._service("digest", lambda: DailyDigest(self.settings, self.gateway, notifier,
                                                             self.sweeper.ledgers, self.sealer))
        return digest.send_if_due(report)

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None, **kwargs: Any) -> "Runtime":
        """Raises ConfigError naming every bad variable."""
        return cls(Settings.from_env(os.environ if env is None else env, **kwargs))

    @contextlib.contextmanager
    def invocation(self, context: Any, function: str = "", env: Optional[Mapping[str, str]] = None
                   ) -> Iterator[None]:
        """Per-invocation setup: the deadline, fresh role credentials, the request id bound to logs,
        and the invocation's figures (metrics.py), logged as one `metrics` line at its end (and
        sent to Cloud Monitor when enabled), whether the handler returned or raised."""
        env = os.environ if env is None else env
        self.gateway.refresh_credentials(env)
        logs.register_secrets([env.get("TENCENTCLOUD_SECRETKEY", ""), env.get("TENCENTCLOUD_SESSIONTOKEN", "")])
        tally: Optional[metrics.Tally] = None
        with within(Deadline.from_context(context)), logs.bound(request_id=_request_id(context)):
            try:
                with metrics.measuring(function or _function_name(context)) as tally:
                    yield
            finally:
                if tally is not None:
                    self.report_metrics(tally)

    def report_metrics(self, tally: "metrics.Tally") -> None:
        """The one place the figures leave: the `metrics` line, then Cloud Monitor (best effort)."""
        fields = tally.fields()
        logs.event(log, "metrics", **fields)
        if self.settings.monitor_enabled:
            from .infra.monitor import MonitorReporter  # loaded only when enabled
            reporter = self._service("monitor", lambda: MonitorReporter(self.settings))
            reporter.send(fields, self.gateway.settings)
