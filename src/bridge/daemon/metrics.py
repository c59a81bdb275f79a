"""Counters, gauges and histograms with labels, rendered in the Prometheus text format (0.0.4).

A small registry rather than a dependency: the daemon needs a handful of metrics, thread-safe updates
from scheduler threads, and one rendering for `/metrics`. `DaemonMetrics` names the daemon's own
(`bridge_*`); `record_cycle` updates them from one tracker's cycle, and `count_rate_limits` counts every
HTTP 429 a connector's retry policy sees.
"""

from __future__ import annotations

import math
import re
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from bridge.errors import RetriableAPIError
from bridge.http import RETRY_EVENTS

if TYPE_CHECKING:
    from bridge.sync.cycle import TrackerCycle

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
"""Cycle durations range from a no-change pull (well under a second) to a first full pull (many minutes)."""

_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

LabelValues = tuple[str, ...]
S = TypeVar("S")


def format_value(value: float) -> str:
    """A sample value as Prometheus writes it: integers without a fraction, `+Inf`, `-Inf`, `NaN`."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _label_text(names: Sequence[str], values: Sequence[str]) -> str:
    if not names:
        return ""
    pairs = ",".join(f'{n}="{escape_label_value(v)}"' for n, v in zip(names, values, strict=True))
    return "{" + pairs + "}"


class Metric(Generic[S]):
    """One metric family: a name, its help, its label names and one sample state per label set."""

    kind = "untyped"

    def __init__(self, name: str, help: str, labels: Sequence[str] = ()) -> None:
        if not _NAME.match(name):
            raise ValueError(f"invalid metric name {name!r}")
        for label in labels:
            if not _LABEL.match(label) or label.startswith("__") or label == "le":
                raise ValueError(f"invalid label name {label!r} for {name}")
        self.name = name
        self.help = help
        self.label_names = tuple(labels)
        self._samples: dict[LabelValues, S] = {}
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, str]) -> LabelValues:
        if set(labels) != set(self.label_names):
            expected = ", ".join(self.label_names) or "none"
            raise ValueError(f"{self.name} takes the labels {expected}, given {', '.join(labels) or 'none'}")
        return tuple(str(labels[n]) for n in self.label_names)

    def _new(self) -> S:
        raise NotImplementedError

    def _state(self, key: LabelValues) -> S:
        """The sample state for `key`; the caller holds the lock."""
        state = self._samples.get(key)
        if state is None:
            state = self._samples[key] = self._new()
        return state

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {escape_help(self.help)}", f"# TYPE {self.name} {self.kind}"]

    def samples(self) -> Iterator[str]:
        raise NotImplementedError

    def render(self) -> str:
        return "\n".join([*self.header(), *self.samples()]) + "\n"


class _Number:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0


class _ScalarMetric(Metric[_Number]):
    def _new(self) -> _Number:
        return _Number()

    def value(self, **labels: str) -> float:
        """The current value for these labels (0 for a label set never touched)."""
        key = self._key(labels)
        with self._lock:
            state = self._samples.get(key)
            return state.value if state is not None else 0.0

    def samples(self) -> Iterator[str]:
        with self._lock:
            items = sorted((key, state.value) for key, state in self._samples.items())
        if not items and not self.label_names:
            items = [((), 0.0)]
        for key, value in items:
            yield f"{self.name}{_label_text(self.label_names, key)} {format_value(value)}"


class Counter(_ScalarMetric):
    """A count that only goes up (until the process restarts)."""

    kind = "counter"

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise ValueError(f"{self.name} is a counter: it cannot go down by {amount}")
        key = self._key(labels)
        with self._lock:
            self._state(key).value += amount


class Gauge(_ScalarMetric):
    """A value that goes up and down."""

    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._state(key).value = float(value)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._state(key).value += amount


class _Buckets:
    __slots__ = ("counts", "sum")

    def __init__(self, size: int) -> None:
        self.counts = [0] * size
        self.sum = 0.0


class Histogram(Metric[_Buckets]):
    """Observations counted into cumulative buckets, with their sum and count."""

    kind = "histogram"

    def __init__(
        self, name: str, help: str, labels: Sequence[str] = (), buckets: Iterable[float] = DURATION_BUCKETS
    ) -> None:
        super().__init__(name, help, labels)
        bounds = sorted(float(b) for b in buckets if not math.isinf(b))
        if not bounds or len(set(bounds)) != len(bounds):
            raise ValueError(f"{name} needs distinct, finite bucket bounds")
        self.bounds = (*bounds, math.inf)

    def _new(self) -> _Buckets:
        return _Buckets(len(self.bounds))

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        # Buckets are "less than or equal": a value on a bound counts in that bound's bucket.
        index = bisect_left(self.bounds, value)
        with self._lock:
            state = self._state(key)
            state.counts[index] += 1
            state.sum += value

    def count(self, **labels: str) -> int:
        key = self._key(labels)
        with self._lock:
            state = self._samples.get(key)
            return sum(state.counts) if state is not None else 0

    def samples(self) -> Iterator[str]:
        with self._lock:
            items = sorted((key, list(state.counts), state.sum) for key, state in self._samples.items())
        if not items and not self.label_names:
            items = [((), [0] * len(self.bounds), 0.0)]
        names = (*self.label_names, "le")
        for key, counts, total in items:
            running = 0
            for bound, count in zip(self.bounds, counts, strict=True):
                running += count
                labels = _label_text(names, (*key, format_value(bound)))
                yield f"{self.name}_bucket{labels} {running}"
            plain = _label_text(self.label_names, key)
            yield f"{self.name}_sum{plain} {format_value(total)}"
            yield f"{self.name}_count{plain} {running}"


M = TypeVar("M", bound="Metric[Any]")


class Registry:
    """The metrics of one process, in the order they were registered."""

    def __init__(self) -> None:
        self._metrics: dict[str, Metric[Any]] = {}
        self._lock = threading.Lock()

    def counter(self, name: str, help: str, labels: Sequence[str] = ()) -> Counter:
        return self._get_or_add(Counter, name, lambda: Counter(name, help, labels), labels)

    def gauge(self, name: str, help: str, labels: Sequence[str] = ()) -> Gauge:
        return self._get_or_add(Gauge, name, lambda: Gauge(name, help, labels), labels)

    def histogram(
        self, name: str, help: str, labels: Sequence[str] = (), buckets: Iterable[float] = DURATION_BUCKETS
    ) -> Histogram:
        return self._get_or_add(Histogram, name, lambda: Histogram(name, help, labels, buckets), labels)

    def _get_or_add(self, kind: type[M], name: str, make: Callable[[], M], labels: Sequence[str]) -> M:
        """The metric called `name`, made on first use; asking again with another type or labels fails."""
        with self._lock:
            existing = self._metrics.get(name)
            if existing is None:
                metric = make()
                self._metrics[name] = metric
                return metric
        if not isinstance(existing, kind) or existing.label_names != tuple(labels):
            raise ValueError(f"metric {name} is already registered as a {existing.kind} with other labels")
        return existing

    def get(self, name: str) -> Metric[Any] | None:
        with self._lock:
            return self._metrics.get(name)

    def render(self) -> str:
        """Every metric in the text exposition format, version 0.0.4."""
        with self._lock:
            metrics = list(self._metrics.values())
        return "".join(metric.render() for metric in metrics)


@dataclass(frozen=True)
class DaemonMetrics:
    """The daemon's metrics, registered (once) in a registry."""

    cycles: Counter
    cycle_duration: Histogram
    items_pulled: Counter
    writes: Counter
    writes_read_back: Counter
    requests: Counter
    rate_limited: Counter
    last_success: Gauge
    lease_held: Gauge

    @classmethod
    def of(cls, registry: Registry) -> DaemonMetrics:
        return cls(
            cycles=registry.counter(
                "bridge_cycles_total", "Cycles run, by tracker and outcome (ok, partial, failed).",
                ("tracker", "outcome"),
            ),
            cycle_duration=registry.histogram(
                "bridge_cycle_duration_seconds", "How long a tracker's cycle took.", ("tracker",)
            ),
            items_pulled=registry.counter(
                "bridge_items_pulled_total", "Items read from a tracker by pulls.", ("tracker",)
            ),
            writes=registry.counter(
                "bridge_writes_total", "Writes to a tracker, by outcome (done, failed, deferred).",
                ("tracker", "outcome"),
            ),
            writes_read_back=registry.counter(
                "bridge_writes_read_back_total",
                "Writes whose request got no answer, read back from the tracker, by what it held "
                "(applied: counted done; not_applied: counted failed).",
                ("tracker", "outcome"),
            ),
            requests=registry.counter(
                "bridge_requests_total", "HTTP requests made to a tracker.", ("tracker",)
            ),
            rate_limited=registry.counter(
                "bridge_http_429_total", "HTTP 429 (rate limited) answers from a tracker.", ("tracker",)
            ),
            last_success=registry.gauge(
                "bridge_last_success_timestamp_seconds",
                "When a tracker's last cycle without error finished (Unix time).",
                ("tracker",),
            ),
            lease_held=registry.gauge(
                "bridge_lease_held", "1 while this replica holds the tracker's lease, else 0.", ("tracker",)
            ),
        )  # fmt: skip


def cycle_outcome(cycle: TrackerCycle) -> str:
    """`failed` when the tracker's cycle ended in an error, `partial` when some writes failed, else `ok`."""
    if cycle.error is not None:
        return "failed"
    if cycle.push is not None and cycle.push.failed:
        return "partial"
    return "ok"


def record_cycle(
    registry: Registry, cycle: TrackerCycle, duration: float, *, finished_at: datetime | None = None
) -> None:
    """Count one tracker's cycle: its outcome, duration, items pulled, writes and requests.

    `finished_at` (aware) stamps the last-success gauge when the cycle had no error; now by default.
    """
    metrics = DaemonMetrics.of(registry)
    tracker = cycle.tracker
    outcome = cycle_outcome(cycle)
    metrics.cycles.inc(tracker=tracker, outcome=outcome)
    metrics.cycle_duration.observe(max(0.0, duration), tracker=tracker)
    metrics.items_pulled.inc(cycle.pull.items if cycle.pull is not None else 0, tracker=tracker)
    metrics.requests.inc(max(0, cycle.requests), tracker=tracker)
    push = cycle.push
    if push is not None and not push.dry_run:
        metrics.writes.inc(push.done, tracker=tracker, outcome="done")
        metrics.writes.inc(push.failed, tracker=tracker, outcome="failed")
        metrics.writes.inc(len(push.plan.deferred), tracker=tracker, outcome="deferred")
        metrics.writes_read_back.inc(push.read_back_applied, tracker=tracker, outcome="applied")
        metrics.writes_read_back.inc(push.read_back - push.read_back_applied, tracker=tracker,
                                     outcome="not_applied")  # fmt: skip
    if outcome != "failed":
        stamp = finished_at.timestamp() if finished_at is not None else time.time()
        metrics.last_success.set(stamp, tracker=tracker)


def set_lease_held(registry: Registry, tracker: str, held: bool) -> None:
    DaemonMetrics.of(registry).lease_held.set(1.0 if held else 0.0, tracker=tracker)


def count_rate_limits(registry: Registry) -> Callable[[], None]:
    """Count every HTTP 429 any retry policy in this process sees, by tracker; returns the undo."""
    counter = DaemonMetrics.of(registry).rate_limited

    def on_retriable(error: RetriableAPIError) -> None:
        if error.status == 429:
            counter.inc(tracker=error.tracker or "unknown")

    RETRY_EVENTS.add(on_retriable)
    return lambda: RETRY_EVENTS.remove(on_retriable)
