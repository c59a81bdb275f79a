"""The error hierarchy: every failure says what a user or the daemon should do next.

`UserError` and its subclasses leave the CLI as one paragraph and exit code 2. Errors from a
tracker or the store exit with 1. API errors are split by what to do next (retry, give up, skip).
"""

from __future__ import annotations

from dataclasses import dataclass


class BridgeError(Exception):
    """Base of every error the bridge raises on purpose."""

    exit_code = 1


class UserError(BridgeError):
    """Something the user can fix: a bad flag, a missing file, an unset variable."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem in a configuration, named by its dotted path (`trackers.acme.status_map`)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(UserError):
    """A configuration with one or more problems; all are reported at once."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(self.render())

    def render(self) -> str:
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        lines = [f"{self.source}: {count} {noun}"]
        lines.extend(f"  {problem}" for problem in self.problems)
        return "\n".join(lines)


class StoreError(BridgeError):
    """The store could not be reached or migrated."""


class StoreLost(StoreError):
    """The store itself is gone (its database dropped) or unreachable, not one statement failing: nothing
    can be read or recorded, so a command stops at once with this one message, which names the store
    and the fix, instead of failing every tracker and every bookkeeping step after it."""


class APIError(BridgeError):
    """A tracker answered with an error, or did not answer."""

    def __init__(self, message: str, *, status: int | None = None, tracker: str | None = None) -> None:
        self.status = status
        self.tracker = tracker
        super().__init__(message)


class RetriableAPIError(APIError):
    """Worth trying again later: 429, 5xx, timeouts, dropped connections."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        tracker: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, status=status, tracker=tracker)


class FatalAPIError(APIError):
    """Trying again will not help: a bad request, a missing project, an unsupported server."""


class AuthError(FatalAPIError):
    """The tracker refused the credentials (401) or the permission (403)."""


class SkippableAPIError(APIError):
    """One item could not be read or written; the rest of the page goes on."""


class WriteRefused(BridgeError):
    """A write that cannot be made as given (sending it would not help): switched off by the config, not
    the bridge's to make, or refused by the tracker for that item. It fails alone, with this message, and
    the other writes of the push go on."""


class OutcomeUnknown(WriteRefused):
    """A write whose request got no answer after every retry (a timeout, a connection cut after the
    request went out, a 5xx): the tracker may have applied it or not. The kit's `Writer` reads such writes
    back from the tracker and settles each as what the tracker holds, instead of calling it failed."""
