"""Errors, grouped by what the runner should do with them.

Messages never carry personal data: callers pass masked values or field names only.
"""

from __future__ import annotations

from dataclasses import dataclass


class HubError(Exception):
    """Root of every error hub raises on purpose."""


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in hub.toml, located by its TOML path (e.g. ``connectors.ats.config.path``)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ConfigurationError(HubError):
    """hub.toml (or a file it names) is wrong; seen by the integrator, nothing has run."""

    def __init__(self, problems: list[ConfigProblem], source: str = "hub.toml") -> None:
        self.problems = problems
        self.source = source
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{lines}")


class PluginError(HubError):
    """A plugin is broken or two plugins register the same name."""


class SyncError(HubError):
    """A sync could not complete."""


class FatalSyncError(SyncError):
    """Retrying will not help (bad credentials, missing table); the run fails."""


class RetriableSyncError(SyncError):
    """A transient failure (timeout, 429, 5xx, lost connection); retried with backoff."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RecordRejected(HubError):
    """One record cannot be written; it goes to dead letters and the run goes on."""


class PipelineBusy(HubError):
    """Another live process is already running this pipeline."""
