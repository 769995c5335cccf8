"""What CI's answer about a job means for the object: the verdict (infected, clean, failed) and
the virus names. The answer itself is parsed in infra (infra/ci_jobs.py)."""
from __future__ import annotations

from typing import List

from ..infra.ci_jobs import CiJob

CLEAN_SUGGESTIONS = ("normal", "nomal")  # one Chinese doc page spells it `nomal`


class VirusJob(CiJob, frozen=True):
    """A queried job: the only source of truth for a verdict (callback bodies are never trusted)."""

    @classmethod
    def of(cls, job: CiJob) -> "VirusJob":
        """The job CI answered, judged."""
        return job if isinstance(job, cls) else cls(*(getattr(job, name) for name in job._fields))

    @property
    def infected(self) -> bool:
        return self.state == "Success" and self.suggestion.lower() == "block"

    @property
    def clean(self) -> bool:
        return self.state == "Success" and self.suggestion.lower() in CLEAN_SUGGESTIONS

    @property
    def failed(self) -> bool:
        """Failed, or a Success whose Suggestion is neither block nor normal (never assume clean)."""
        return self.finished and not (self.infected or self.clean)

    @property
    def virus_names(self) -> List[str]:
        return sorted({name for _, name in self.findings if name})
