"""The daemon's metrics, read back with `prometheus_client`'s own parsers: a registry of the bridge's own,
every per-tracker series from the start, counters that move as requests, pages and writes happen (over
real HTTP against the Jira sandbox), failed cycles counted whatever raised, and the lease gauge set by
the lease code."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import bridge.daemon.service as service_module
from bridge import __version__
from bridge.daemon.http import StatusServer
from bridge.daemon.metrics import (
    CYCLE_OUTCOMES,
    READ_BACK_OUTCOMES,
    WRITE_OUTCOMES,
    DaemonMetrics,
    MetricsProgress,
)
from bridge.daemon.service import Daemon, live_status, resume_metrics
from bridge.domain import FieldWrite, Ref, WriteOutcome
from bridge.errors import FatalAPIError, RetriableAPIError, StoreError
from bridge.http import RequestCounter, RetryPolicy
from bridge.sync.cycle import TrackerCycle, run_cycle
from bridge.sync.plan import Plan
from bridge.sync.pull import PullResult
from bridge.sync.push import PushResult
from tests.sandbox.conftest import Control
from tests.unit.test_progress import Jira, jira  # noqa: F401  (the Jira sandbox with write-back)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_exposition(text: str) -> Samples:
    """Every sample of a text exposition, by name and labels, as `prometheus_client` parses it."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for name, labels, value, *_ in family.samples:
            key = (name, frozenset(labels.items()))
            assert key not in found, f"{name}{labels} twice"
            found[key] = value
    return found


def sample(samples: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    assert key in samples, f"no sample {name}{labels}"
    return samples[key]


def scrape(metrics: DaemonMetrics) -> Samples:
    return parse_exposition(generate_latest(metrics.registry).decode("utf-8"))


# --- the registry ----------------------------------------------------------------------------------


def test_each_daemon_has_a_registry_of_its_own_and_the_global_one_stays_clean() -> None:
    first, second = DaemonMetrics(["acme-jira"]), DaemonMetrics(["acme-jira"])  # no duplicate error
    first.cycles.labels("acme-jira", "ok").inc()
    assert sample(scrape(first), "bridge_cycles_total", tracker="acme-jira", outcome="ok") == 1
    assert sample(scrape(second), "bridge_cycles_total", tracker="acme-jira", outcome="ok") == 0
    assert "bridge_" not in generate_latest(REGISTRY).decode("utf-8"), "the global registry stays clean"
    given = CollectorRegistry()
    assert DaemonMetrics(registry=given).registry is given


def test_every_series_is_there_at_zero_from_the_start_with_build_info_and_process_metrics() -> None:
    samples = scrape(DaemonMetrics(["acme-jira", "design-trello"]))
    for tracker in ("acme-jira", "design-trello"):
        for outcome in CYCLE_OUTCOMES:
            assert sample(samples, "bridge_cycles_total", tracker=tracker, outcome=outcome) == 0
        for outcome in WRITE_OUTCOMES:
            assert sample(samples, "bridge_writes_total", tracker=tracker, outcome=outcome) == 0
        for outcome in READ_BACK_OUTCOMES:
            assert sample(samples, "bridge_writes_read_back_total", tracker=tracker, outcome=outcome) == 0
        for name in (
            "bridge_requests_total", "bridge_rate_limited_total", "bridge_items_pulled_total",
            "bridge_pages_pulled_total", "bridge_pending_writes", "bridge_lease_held",
            "bridge_last_success_timestamp_seconds", "bridge_cycle_duration_seconds_count",
        ):  # fmt: skip
            assert sample(samples, name, tracker=tracker) == 0, name
        assert sample(samples, "bridge_cycle_duration_seconds_bucket", tracker=tracker, le="+Inf") == 0
    (build,) = [labels for name, labels in samples if name == "bridge_build_info"]
    assert dict(build)["version"] == __version__ and dict(build)["python"].count(".") == 2
    names = {name for name, _ in samples}
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes", "python_info"} <= names
    assert "python_gc_collections_total" in names
    assert not any("429" in name for name in names), "the rate-limit counter has no status code in its name"


# --- updates ---------------------------------------------------------------------------------------


def _write(n: int) -> FieldWrite:
    return FieldWrite(Ref("acme-jira", str(n)), "rank", n)


def _cycle(*, error: str | None = None, done: int = 3, failed: int = 1, deferred: int = 2) -> TrackerCycle:
    plan = Plan("acme-jira", writes=[_write(n) for n in range(done + failed)])
    plan.deferred = [_write(100 + n) for n in range(deferred)]
    push = PushResult("acme-jira", plan, done=done, failed=failed) if error is None else None
    return TrackerCycle(
        "acme-jira", pull=PullResult("acme-jira", items=40), push=push, requests=12, error=error
    )


def test_a_cycle_that_ends_counts_its_outcome_duration_deferred_and_pending_writes() -> None:
    metrics = DaemonMetrics(["acme-jira"])
    finished = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    metrics.record_cycle(_cycle(failed=0), 2.0, finished_at=finished)
    metrics.record_cycle(_cycle(), 0.4, finished_at=finished)
    samples = scrape(metrics)
    assert sample(samples, "bridge_cycles_total", tracker="acme-jira", outcome="ok") == 1
    assert sample(samples, "bridge_cycles_total", tracker="acme-jira", outcome="partial") == 1
    assert sample(samples, "bridge_cycle_duration_seconds_count", tracker="acme-jira") == 2
    assert sample(samples, "bridge_cycle_duration_seconds_sum", tracker="acme-jira") == pytest.approx(2.4)
    assert sample(samples, "bridge_cycle_duration_seconds_bucket", tracker="acme-jira", le="0.5") == 1
    assert sample(samples, "bridge_writes_total", tracker="acme-jira", outcome="deferred") == 4
    assert sample(samples, "bridge_pending_writes", tracker="acme-jira") == 3, "2 deferred + 1 failed"
    assert sample(samples, "bridge_last_success_timestamp_seconds", tracker="acme-jira") == (
        finished.timestamp()
    )
    # Items, requests and writes done are counted as they happen, not again when the cycle ends.
    assert sample(samples, "bridge_items_pulled_total", tracker="acme-jira") == 0
    assert sample(samples, "bridge_writes_total", tracker="acme-jira", outcome="done") == 0


def test_a_failed_cycle_leaves_the_last_success_time_and_the_pending_writes_alone() -> None:
    metrics = DaemonMetrics(["acme-jira"])
    first = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    metrics.record_cycle(_cycle(), 1.0, finished_at=first)
    metrics.record_cycle(_cycle(error="acme-jira: HTTP 500"), 1.0, finished_at=datetime.now(UTC))
    samples = scrape(metrics)
    assert sample(samples, "bridge_cycles_total", tracker="acme-jira", outcome="failed") == 1
    assert sample(samples, "bridge_last_success_timestamp_seconds", tracker="acme-jira") == first.timestamp()
    assert sample(samples, "bridge_pending_writes", tracker="acme-jira") == 3


def test_progress_reports_move_the_counters_by_what_each_adds() -> None:
    metrics = DaemonMetrics(["acme-jira"])
    progress = MetricsProgress(metrics)
    for cycles in range(1, 3):
        progress.pull_started("acme-jira")
        progress.pulled("acme-jira", "issues", 1, 50)
        progress.pulled("acme-jira", "issues", 2, 80)
        progress.pulled("acme-jira", "epics", 3, 85)
        progress.push_started("acme-jira", 10)
        progress.sent("acme-jira", [_outcome(1, True), _outcome(2, False), _outcome(3, True, read_back=True)])
        progress.sent("acme-jira", [_outcome(4, False, read_back=True), _outcome(5, True)])
        samples = scrape(metrics)
        assert sample(samples, "bridge_pages_pulled_total", tracker="acme-jira") == 3 * cycles
        assert sample(samples, "bridge_items_pulled_total", tracker="acme-jira") == 85 * cycles
        assert sample(samples, "bridge_writes_total", tracker="acme-jira", outcome="done") == 3 * cycles
        assert sample(samples, "bridge_writes_total", tracker="acme-jira", outcome="failed") == 2 * cycles
        read_back = {
            outcome: sample(samples, "bridge_writes_read_back_total", tracker="acme-jira", outcome=outcome)
            for outcome in ("applied", "not_applied")
        }
        assert read_back == {"applied": cycles, "not_applied": cycles}, "by what the tracker held"


def _outcome(n: int, ok: bool, *, read_back: bool = False) -> WriteOutcome:
    return WriteOutcome(_write(n), ok, datetime.now(UTC), None if ok else "refused", read_back=read_back)


def _flaky(answers: list[Exception | None]) -> Callable[[], str]:
    pending = list(answers)

    def call() -> str:
        answer = pending.pop(0)
        if answer is not None:
            raise answer
        return "done"

    return call


def test_429s_seen_by_any_retry_policy_are_counted_by_tracker() -> None:
    metrics = DaemonMetrics(["acme-jira"])
    undo = metrics.listen()
    policy = RetryPolicy(attempts=3, sleep=lambda _s: None)
    limited = RetriableAPIError("slow down", status=429, tracker="acme-jira", retry_after=0)
    broken = RetriableAPIError("oops", status=503, tracker="acme-jira")
    try:
        assert policy.call(_flaky([limited, broken, None])) == "done"
        with pytest.raises(RetriableAPIError):  # the last attempt's 429 counts too
            policy.call(_flaky([limited, limited, limited]))
        with pytest.raises(FatalAPIError):
            policy.call(_flaky([FatalAPIError("gone", status=404, tracker="acme-jira")]))
        other = RetriableAPIError("slow down", status=429, tracker="design-trello")
        policy.call(_flaky([other, None]))
    finally:
        undo()
    policy.call(_flaky([limited, None]))
    samples = scrape(metrics)
    assert sample(samples, "bridge_rate_limited_total", tracker="acme-jira") == 4
    assert sample(samples, "bridge_rate_limited_total", tracker="design-trello") == 1


def test_every_request_a_session_makes_is_counted_as_it_is_made() -> None:
    metrics = DaemonMetrics(["acme-jira"])
    session = RequestCounter()
    session.name = "acme-jira"
    undo = metrics.listen()
    try:
        session.count()
        with session.setup():
            session.count()
        session.count()
        assert sample(scrape(metrics), "bridge_requests_total", tracker="acme-jira") == 3
    finally:
        undo()
    session.count()
    assert sample(scrape(metrics), "bridge_requests_total", tracker="acme-jira") == 3


# --- the daemon's cycles against the Jira sandbox ----------------------------------------------------


class Watching(MetricsProgress):
    """The daemon's progress, scraping `/metrics` over HTTP after the first page and the first chunk."""

    def __init__(self, metrics: DaemonMetrics) -> None:
        super().__init__(metrics)
        self.url = ""
        self.seen: dict[str, Samples] = {}

    def _look(self, moment: str) -> None:
        if moment not in self.seen:
            self.seen[moment] = parse_exposition(requests.get(f"{self.url}/metrics", timeout=5).text)

    def pulled(self, tracker: str, stream: str, pages: int, items: int) -> None:
        super().pulled(tracker, stream, pages, items)
        self.seen.setdefault("first page items", {("items", frozenset()): float(items)})
        self._look("after the first page")

    def sent(self, tracker: str, outcomes: Sequence[WriteOutcome]) -> None:
        super().sent(tracker, outcomes)
        done = sum(1 for outcome in outcomes if outcome.ok)
        self.seen.setdefault("first chunk done", {("done", frozenset()): float(done)})
        self._look("after the first chunk")


def _daemon(sandbox: Jira, progress: Callable[[DaemonMetrics], MetricsProgress] = MetricsProgress) -> Any:
    """A daemon wired as `serve` wires it (without its scheduler), its metrics, and its status server."""
    metrics = DaemonMetrics()
    watcher = progress(metrics)
    daemon = Daemon(
        sandbox.config,
        sandbox.store,
        on_cycle=lambda name, entry, seconds: metrics.record_cycle(entry, seconds),
        on_lease=metrics.set_lease_held,
        progress=watcher,
    )
    for name in daemon.trackers:
        metrics.add_tracker(name)
    server = StatusServer(sandbox.config, sandbox.store, metrics.registry, lambda: live_status(daemon))
    return daemon, metrics, watcher, server


def test_counters_move_while_a_cycle_runs_and_the_lease_gauge_follows_the_lease(
    jira: Jira,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("bridge.sync.push.PUSH_CHUNK", 7)
    daemon, metrics, watcher, server = _daemon(jira, Watching)
    undo = metrics.listen()
    try:
        with server:
            watcher.url = server.url
            entry = daemon.run_tracker("t")
            after = parse_exposition(requests.get(f"{server.url}/metrics", timeout=5).text)
    finally:
        undo()
    assert entry is not None and entry.error is None and entry.push is not None
    mid_pull = watcher.seen["after the first page"]
    assert (
        sample(mid_pull, "bridge_items_pulled_total", tracker="t")
        == watcher.seen["first page items"][("items", frozenset())]
    )
    assert sample(mid_pull, "bridge_pages_pulled_total", tracker="t") == 1
    assert sample(mid_pull, "bridge_requests_total", tracker="t") >= 5, "setup (4), a search"
    assert sample(mid_pull, "bridge_cycles_total", tracker="t", outcome="ok") == 0, "the cycle is not over"
    assert sample(mid_pull, "bridge_lease_held", tracker="t") == 1, "held while the cycle runs"
    mid_push = watcher.seen["after the first chunk"]
    first_chunk = watcher.seen["first chunk done"][("done", frozenset())]
    assert sample(mid_push, "bridge_writes_total", tracker="t", outcome="done") == first_chunk > 0
    assert first_chunk < entry.push.done, "several chunks"
    # Once the cycle is over, everything adds up to what the cycle reports.
    assert sample(after, "bridge_cycles_total", tracker="t", outcome="ok") == 1
    assert sample(after, "bridge_lease_held", tracker="t") == 0, "released when the cycle ended"
    assert entry.pull is not None
    assert sample(after, "bridge_items_pulled_total", tracker="t") == entry.pull.items
    assert sample(after, "bridge_pages_pulled_total", tracker="t") == entry.pull.pages
    assert sample(after, "bridge_writes_total", tracker="t", outcome="done") == entry.push.done
    assert sample(after, "bridge_requests_total", tracker="t") == entry.requests
    assert sample(after, "bridge_pending_writes", tracker="t") == 0


@pytest.mark.parametrize(
    ("raised", "error", "traceback"),
    [
        (RuntimeError("a bug in the analysis"), "unexpected RuntimeError: a bug in the analysis", True),
        (StoreError("the store is gone"), "the store is gone", False),
    ],
)
def test_a_cycle_that_raises_is_counted_failed_logged_at_error_and_releases_its_lease(
    jira: Jira,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    raised: Exception,
    error: str,
    traceback: bool,
) -> None:
    def explode(*_args: Any, **_kwargs: Any) -> Any:
        raise raised

    monkeypatch.setattr(service_module, "run_cycle", explode)
    daemon, metrics, _, _ = _daemon(jira)
    with caplog.at_level(logging.INFO, logger="bridge"):
        entry = daemon.run_tracker("t")  # the scheduler's job returns: nothing reaches it
    assert entry is not None and entry.error == error
    samples = scrape(metrics)
    assert sample(samples, "bridge_cycles_total", tracker="t", outcome="failed") == 1
    assert sample(samples, "bridge_cycle_duration_seconds_count", tracker="t") == 1
    assert sample(samples, "bridge_lease_held", tracker="t") == 0
    assert sample(samples, "bridge_last_success_timestamp_seconds", tracker="t") == 0
    (summary,) = [r for r in caplog.records if " cycle " in r.getMessage()]
    assert summary.levelno == logging.ERROR and "cycle FAILED" in summary.getMessage()
    assert summary.__dict__["outcome"] == "failed" and summary.__dict__["error"] == error
    assert (summary.exc_info is not None) is traceback
    state = daemon.status.trackers["t"]
    assert state.cycles == 1 and state.last is entry and not state.running
    assert (state.store_failure == "the store is gone") is isinstance(raised, StoreError)


def test_a_restarted_daemon_starts_its_gauges_from_the_store(jira: Jira) -> None:  # noqa: F811
    config = jira.config.model_copy(update={"push": jira.config.push.model_copy(update={"write_budget": 5})})
    result = run_cycle(jira.store, config, now=datetime.now(UTC))
    (entry,) = result.trackers
    assert entry.error is None and entry.push is not None and len(entry.push.plan.deferred) > 0
    metrics = DaemonMetrics(["t"])
    before = datetime.now(UTC).timestamp()
    resume_metrics(metrics, jira.store, ["t"])
    samples = scrape(metrics)
    assert sample(samples, "bridge_pending_writes", tracker="t") == len(entry.push.plan.deferred)
    assert 0 < before - sample(samples, "bridge_last_success_timestamp_seconds", tracker="t") < 60
    assert sample(samples, "bridge_cycles_total", tracker="t", outcome="ok") == 0, "counters start at 0"


def test_429s_and_writes_read_back_after_a_lost_answer_are_counted_through_a_daemons_cycle(
    jira: Jira,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The Jira sandbox answers one search with 429 and loses the answers of the first edits it applies:
    the daemon's counters say so, by tracker, with what the tracker held."""
    monkeypatch.setattr(RetryPolicy, "_sleep", lambda self, seconds: None)
    control = Control(str(jira.config.tracker("t").url))
    control.faults(
        {"kind": "429", "path": "/search", "count": 1, "retry_after": 0},
        {"kind": "lose", "method": "PUT", "path": r"/issue/[^/]+$", "count": 6},  # every attempt of one
    )
    daemon, metrics, _, _ = _daemon(jira)
    undo = metrics.listen()
    try:
        entry = daemon.run_tracker("t")
    finally:
        undo()
    assert entry is not None and entry.error is None and entry.push is not None
    assert control.get("faults")["injected"] == {"429": 1, "lose": 6}
    samples = scrape(metrics)
    assert sample(samples, "bridge_rate_limited_total", tracker="t") == 1
    applied = sample(samples, "bridge_writes_read_back_total", tracker="t", outcome="applied")
    assert applied == entry.push.read_back_applied >= 1
    assert sample(samples, "bridge_writes_read_back_total", tracker="t", outcome="not_applied") == 0
    assert sample(samples, "bridge_writes_total", tracker="t", outcome="done") == entry.push.done
    # Every request counts, the six whose answer was lost too.
    assert sample(samples, "bridge_requests_total", tracker="t") == entry.requests == control.request_count()
