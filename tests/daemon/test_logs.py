"""JSON log lines carry a cycle's figures as fields, a failed cycle logs at ERROR, secrets stay out."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from bridge.daemon.logs import FIELDS, JsonLines
from bridge.daemon.service import log_cycle
from bridge.domain import FieldWrite, Ref
from bridge.http import SECRETS, RedactingFilter
from bridge.sync.cycle import TrackerCycle
from bridge.sync.plan import Plan
from bridge.sync.pull import PullResult
from bridge.sync.push import PushResult


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """What the bridge logs, as the daemon writes it with `log_format = "json"`."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonLines())
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("bridge")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield out
    logger.removeHandler(handler)
    logger.setLevel(previous)


def _entries(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def _cycle(*, failed: int = 0, error: str | None = None) -> TrackerCycle:
    plan = Plan("acme-jira", writes=[FieldWrite(Ref("acme-jira", str(n)), "rank", n) for n in range(5)])
    plan.deferred = [FieldWrite(Ref("acme-jira", "99"), "rank", 99)]
    push = PushResult("acme-jira", plan, done=5 - failed, failed=failed)
    return TrackerCycle(
        "acme-jira", pull=PullResult("acme-jira", items=40), push=push, requests=12, error=error
    )


def test_a_cycle_line_carries_every_field_and_its_level_follows_the_outcome(lines: io.StringIO) -> None:
    log_cycle(_cycle(), 2.34567, number=3)
    log_cycle(_cycle(failed=2), 1.0, number=4)
    log_cycle(TrackerCycle("acme-jira", error="acme-jira: HTTP 500 from /search"), 0.25, number=5)
    ok, partial, failed = _entries(lines)
    assert ok["level"] == "info" and partial["level"] == "warning" and failed["level"] == "error"
    assert list(ok)[:4] == ["time", "level", "logger", "message"]
    assert [key for key in ok if key in FIELDS] == list(FIELDS), "every field, in a stable order"
    assert ok | {"time": None} == {
        "time": None,
        "level": "info",
        "logger": "bridge.daemon.service",
        "message": "acme-jira: cycle ok in 2.3s: 40 pulled, 5 writes planned, 5 done, 0 failed, 12 requests",
        "tracker": "acme-jira",
        "cycle": 3,
        "outcome": "ok",
        "duration_s": 2.346,
        "items": 40,
        "writes_planned": 5,
        "writes_deferred": 1,
        "writes_done": 5,
        "writes_failed": 0,
        "writes_read_back": 0,
        "requests": 12,
        "error": None,
    }
    assert partial["outcome"] == "partial" and partial["writes_failed"] == 2
    assert "cycle partial" in partial["message"]
    assert failed["outcome"] == "failed" and failed["error"] == "acme-jira: HTTP 500 from /search"
    assert "cycle FAILED" in failed["message"] and failed["items"] == 0


def test_a_cycle_that_raised_a_bug_logs_its_traceback_and_secrets_never_get_through(
    lines: io.StringIO,
) -> None:
    token = f"sentinel-{uuid.uuid4().hex}"
    SECRETS.add(token)
    try:
        raise RuntimeError(f"the analysis broke on Bearer {token}\x1b[2J")
    except RuntimeError as exc:
        log_cycle(
            TrackerCycle("acme-jira", error=f"unexpected RuntimeError: {token}"), 0.1, number=1, raised=exc
        )
    (entry,) = _entries(lines)
    raw = lines.getvalue()
    assert token not in raw and "\x1b" not in raw
    assert entry["level"] == "error" and entry["error"] == "unexpected RuntimeError: ***"
    assert "Traceback (most recent call last)" in entry["traceback"] and "RuntimeError" in entry["traceback"]


def test_a_record_with_an_exception_and_no_error_field_names_the_exception(lines: io.StringIO) -> None:
    log = logging.getLogger("bridge.test")
    try:
        {}["missing"]
    except KeyError:
        log.exception("reading failed", extra={"tracker": "design-trello"})
    (entry,) = _entries(lines)
    assert entry["tracker"] == "design-trello" and entry["error"] == "KeyError: 'missing'"
    assert entry["traceback"].startswith("Traceback")
