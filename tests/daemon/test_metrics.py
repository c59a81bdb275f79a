"""The metrics registry renders valid Prometheus text, and the daemon's metrics follow its cycles."""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from bridge.daemon.metrics import (
    CONTENT_TYPE,
    DaemonMetrics,
    Registry,
    count_rate_limits,
    record_cycle,
    set_lease_held,
)
from bridge.domain import FieldWrite, Ref
from bridge.errors import FatalAPIError, RetriableAPIError
from bridge.http import RetryPolicy
from bridge.sync.cycle import TrackerCycle
from bridge.sync.plan import Plan
from bridge.sync.pull import PullResult
from bridge.sync.push import PushResult

# --- a small parser of the text format (0.0.4), strict enough to catch malformed output --------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


@dataclass
class Family:
    name: str
    kind: str = ""
    help: str = ""
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)


def parse_labels(text: str) -> dict[str, str]:
    """`{a="x",b="y\\"z"}` -> {"a": "x", "b": 'y"z'}, undoing the format's escapes."""
    assert text.startswith("{") and text.endswith("}"), text
    body, labels, i = text[1:-1], {}, 0
    while i < len(body):
        name_match = _LABEL_NAME.match(body, i)
        assert name_match is not None, f"bad label name at {body[i:]!r}"
        i = name_match.end()
        assert body[i : i + 2] == '="', f'expected =" at {body[i:]!r}'
        i += 2
        value = []
        while body[i] != '"':
            if body[i] == "\\":
                escaped = body[i + 1]
                assert escaped in '\\"n', f"bad escape \\{escaped}"
                value.append("\n" if escaped == "n" else escaped)
                i += 2
            else:
                assert body[i] != "\n"
                value.append(body[i])
                i += 1
        i += 1
        assert name_match.group() not in labels, "a label repeated"
        labels[name_match.group()] = "".join(value)
        if i < len(body):
            assert body[i] == ",", f"expected , at {body[i:]!r}"
            i += 1
    return labels


def parse_value(text: str) -> float:
    return {"+Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}.get(text) or float(text)


def _family_of(name: str, families: dict[str, Family]) -> Family:
    if name in families:
        return families[name]
    for suffix in ("_bucket", "_sum", "_count"):
        base = name.removesuffix(suffix)
        if base != name and families.get(base) and families[base].kind == "histogram":
            return families[base]
    raise AssertionError(f"sample {name} before its TYPE line")


def parse_exposition(text: str) -> dict[str, Family]:
    assert text.endswith("\n"), "the last line must end with a newline"
    families: dict[str, Family] = {}
    for line in text.splitlines():
        assert line.strip(), "no blank lines"
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            assert name not in families or not families[name].help, f"second HELP for {name}"
            families.setdefault(name, Family(name)).help = help_text
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), kind
            family = families.setdefault(name, Family(name))
            assert not family.kind and not family.samples, f"TYPE for {name} must come first and once"
            family.kind = kind
        else:
            assert not line.startswith("#"), line
            match = _SAMPLE.match(line)
            assert match is not None, f"malformed sample line {line!r}"
            name, labels, value = match.groups()
            _family_of(name, families).samples.append(
                (name, parse_labels(labels) if labels else {}, parse_value(value))
            )
    return families


def sample(families: dict[str, Family], name: str, **labels: str) -> float:
    family = _family_of(name, families)
    found = [v for n, got, v in family.samples if n == name and got == labels]
    assert len(found) == 1, f"{name}{labels}: {len(found)} samples"
    return found[0]


# --- the registry ----------------------------------------------------------------------------------


def test_counter_gauge_and_help_render_in_the_text_format() -> None:
    registry = Registry()
    counter = registry.counter("demo_things_total", "Things.\nSecond line with a \\ backslash.", ("kind",))
    gauge = registry.gauge("demo_level", "A level.")
    counter.inc(kind="plain")
    counter.inc(2.5, kind='quote " backslash \\ newline \n end')
    gauge.set(-3)
    text = registry.render()
    families = parse_exposition(text)
    assert families["demo_things_total"].kind == "counter"
    assert families["demo_things_total"].help == "Things.\\nSecond line with a \\\\ backslash."
    assert sample(families, "demo_things_total", kind="plain") == 1
    assert sample(families, "demo_things_total", kind='quote " backslash \\ newline \n end') == 2.5
    assert families["demo_level"].kind == "gauge"
    assert sample(families, "demo_level") == -3
    assert CONTENT_TYPE.startswith("text/plain; version=0.0.4")


def test_a_metric_without_labels_shows_zero_before_its_first_update() -> None:
    registry = Registry()
    registry.counter("demo_total", "Nothing yet.")
    registry.histogram("demo_seconds", "Nothing yet either.", buckets=(1.0,))
    families = parse_exposition(registry.render())
    assert sample(families, "demo_total") == 0
    assert sample(families, "demo_seconds_count") == 0
    assert sample(families, "demo_seconds_bucket", le="+Inf") == 0


def test_counters_only_go_up() -> None:
    registry = Registry()
    counter = registry.counter("demo_total", "Counts.", ("tracker",))
    seen = []
    for step in (1, 0, 3, 0.5):
        counter.inc(step, tracker="a")
        seen.append(sample(parse_exposition(registry.render()), "demo_total", tracker="a"))
    assert seen == sorted(seen) == [1, 1, 4, 4.5]
    with pytest.raises(ValueError, match="cannot go down"):
        counter.inc(-1, tracker="a")
    assert counter.value(tracker="a") == 4.5


def test_histogram_buckets_are_cumulative_with_sum_and_count() -> None:
    registry = Registry()
    histogram = registry.histogram("demo_seconds", "Durations.", ("tracker",), buckets=(0.5, 1, 5))
    for value in (0.2, 0.5, 0.7, 1.0, 3.0, 9.0, 12.0):
        histogram.observe(value, tracker="a")
    histogram.observe(2.0, tracker="b")
    families = parse_exposition(registry.render())
    assert families["demo_seconds"].kind == "histogram"
    buckets = [
        (labels["le"], value)
        for name, labels, value in families["demo_seconds"].samples
        if name == "demo_seconds_bucket" and labels["tracker"] == "a"
    ]
    assert buckets == [("0.5", 2), ("1", 4), ("5", 5), ("+Inf", 7)], "a value on a bound counts in it"
    counts = [value for _, value in buckets]
    assert counts == sorted(counts), "buckets are cumulative"
    assert sample(families, "demo_seconds_count", tracker="a") == 7
    assert sample(families, "demo_seconds_sum", tracker="a") == pytest.approx(26.4)
    assert sample(families, "demo_seconds_bucket", tracker="b", le="1") == 0
    assert sample(families, "demo_seconds_bucket", tracker="b", le="5") == 1


def test_labels_must_match_the_declared_names() -> None:
    registry = Registry()
    counter = registry.counter("demo_total", "Counts.", ("tracker", "outcome"))
    with pytest.raises(ValueError, match="takes the labels tracker, outcome"):
        counter.inc(tracker="a")
    with pytest.raises(ValueError, match="already registered"):
        registry.gauge("demo_total", "Not a gauge.", ("tracker", "outcome"))
    with pytest.raises(ValueError, match="already registered"):
        registry.counter("demo_total", "Other labels.", ("tracker",))
    assert registry.counter("demo_total", "Same.", ("tracker", "outcome")) is counter
    with pytest.raises(ValueError, match="invalid label name"):
        registry.histogram("demo_seconds", "le is the histogram's own.", ("le",))
    with pytest.raises(ValueError, match="invalid metric name"):
        registry.counter("demo-total", "Dashes are not allowed.")


def test_updates_from_many_threads_are_not_lost() -> None:
    registry = Registry()
    counter = registry.counter("demo_total", "Counts.", ("tracker",))
    histogram = registry.histogram("demo_seconds", "Durations.", ("tracker",))

    def work() -> None:
        for _ in range(2000):
            counter.inc(tracker="a")
            histogram.observe(0.3, tracker="a")
            registry.render()

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    families = parse_exposition(registry.render())
    assert sample(families, "demo_total", tracker="a") == 12_000
    assert sample(families, "demo_seconds_count", tracker="a") == 12_000


# --- the daemon's metrics --------------------------------------------------------------------------


def _write(n: int) -> FieldWrite:
    return FieldWrite(Ref("acme-jira", str(n)), "rank", n)


def _cycle(*, error: str | None = None, done: int = 3, failed: int = 1, deferred: int = 2) -> TrackerCycle:
    plan = Plan("acme-jira", writes=[_write(n) for n in range(done + failed)])
    plan.deferred = [_write(100 + n) for n in range(deferred)]
    push = PushResult("acme-jira", plan, done=done, failed=failed) if error is None else None
    return TrackerCycle(
        "acme-jira", pull=PullResult("acme-jira", items=40), push=push, requests=12, error=error
    )


def test_record_cycle_counts_outcome_duration_items_writes_and_requests() -> None:
    registry = Registry()
    finished = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    record_cycle(registry, _cycle(failed=0), 2.0, finished_at=finished)
    record_cycle(registry, _cycle(), 0.4, finished_at=finished)
    families = parse_exposition(registry.render())
    assert sample(families, "bridge_cycles_total", tracker="acme-jira", outcome="ok") == 1
    assert sample(families, "bridge_cycles_total", tracker="acme-jira", outcome="partial") == 1
    assert sample(families, "bridge_cycle_duration_seconds_count", tracker="acme-jira") == 2
    assert sample(families, "bridge_cycle_duration_seconds_sum", tracker="acme-jira") == pytest.approx(2.4)
    assert sample(families, "bridge_cycle_duration_seconds_bucket", tracker="acme-jira", le="0.5") == 1
    assert sample(families, "bridge_items_pulled_total", tracker="acme-jira") == 80
    assert sample(families, "bridge_requests_total", tracker="acme-jira") == 24
    assert sample(families, "bridge_writes_total", tracker="acme-jira", outcome="done") == 6
    assert sample(families, "bridge_writes_total", tracker="acme-jira", outcome="failed") == 1
    assert sample(families, "bridge_writes_total", tracker="acme-jira", outcome="deferred") == 4
    assert sample(families, "bridge_last_success_timestamp_seconds", tracker="acme-jira") == (
        finished.timestamp()
    )


def test_writes_read_back_after_a_lost_answer_are_counted_by_what_the_tracker_held() -> None:
    registry = Registry()
    cycle = _cycle(done=3, failed=1)
    assert cycle.push is not None
    cycle.push.read_back, cycle.push.read_back_applied = 3, 2
    record_cycle(registry, cycle, 1.0)
    families = parse_exposition(registry.render())
    assert sample(families, "bridge_writes_read_back_total", tracker="acme-jira", outcome="applied") == 2
    assert sample(families, "bridge_writes_read_back_total", tracker="acme-jira", outcome="not_applied") == 1
    assert sample(families, "bridge_writes_total", tracker="acme-jira", outcome="done") == 3


def test_a_failed_cycle_leaves_the_last_success_time_alone() -> None:
    registry = Registry()
    first = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    record_cycle(registry, _cycle(), 1.0, finished_at=first)
    record_cycle(registry, _cycle(error="acme-jira: HTTP 500"), 1.0, finished_at=datetime.now(UTC))
    metrics = DaemonMetrics.of(registry)
    assert metrics.cycles.value(tracker="acme-jira", outcome="failed") == 1
    assert metrics.last_success.value(tracker="acme-jira") == first.timestamp()
    set_lease_held(registry, "acme-jira", True)
    set_lease_held(registry, "design-trello", False)
    families = parse_exposition(registry.render())
    assert sample(families, "bridge_lease_held", tracker="acme-jira") == 1
    assert sample(families, "bridge_lease_held", tracker="design-trello") == 0
    names = {name for name in families}
    assert all(name.startswith("bridge_") for name in names)


def _flaky(answers: list[Exception | None]) -> Callable[[], str]:
    pending = list(answers)

    def call() -> str:
        answer = pending.pop(0)
        if answer is not None:
            raise answer
        return "done"

    return call


def test_429s_seen_by_any_retry_policy_are_counted_by_tracker() -> None:
    registry = Registry()
    undo = count_rate_limits(registry)
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
    families = parse_exposition(registry.render())
    assert sample(families, "bridge_http_429_total", tracker="acme-jira") == 4
    assert sample(families, "bridge_http_429_total", tracker="design-trello") == 1
