"""One analysis per change of the store, shared.

An analysis is stored keyed by the store's data version, a digest of the config's analysis settings
(`[analytics]` and `[okrs]`, with the version of the report's JSON shape) and the UTC day. Whoever asks
for it (a tracker's cycle, another replica, `bridge report`) first looks for its key: found, it is
reused and nothing is loaded or analysed. Not found, the store is loaded and analysed once, and the
analysis stored, unless the data changed while it ran (then it is not stored under a version it does not
match). On PostgreSQL the replicas that miss the same key queue on its advisory lock: one analyses, the
others find its analysis when they get the lock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from bridge.analysis_window import analysis_since
from bridge.analytics import Report, analyse
from bridge.analytics.shapes import DOCUMENT_SHAPE
from bridge.config import BridgeConfig
from bridge.domain import Snapshot, require_utc
from bridge.store import analyses
from bridge.store.analyses import AnalysisKey
from bridge.store.engine import Store
from bridge.store.facts import data_version
from bridge.store.snapshot import load_snapshot

log = logging.getLogger(__name__)


@dataclass
class Analysed:
    """A report, the key it is stored under, and whether it was reused (no analysis ran)."""

    report: Report
    key: AnalysisKey
    reused: bool
    _snapshot: Snapshot | None
    _load: Callable[[], Snapshot]
    document: str | None = None
    """The report's JSON document (`Report.to_json`) where this call made and stored it (a new
    analysis with the flow charts), so that the caller does not make it again."""

    @property
    def snapshot(self) -> Snapshot:
        """The store's contents the report was made from; loaded now when the analysis was reused."""
        if self._snapshot is None:
            self._snapshot = self._load()
        return self._snapshot

    def load_contents(self) -> Snapshot:
        """`snapshot`, as a loader to hand to what needs the contents only sometimes."""
        return self.snapshot


def key_for(store: Store, config: BridgeConfig, now: datetime, *, flow: bool) -> AnalysisKey:
    with store.read() as conn:
        version = data_version(conn)
    # the document's shape is part of the key: one stored in an older shape is made again, not served
    digest = analyses.settings_digest(config.analytics, config.okrs, {"document_shape": DOCUMENT_SHAPE})
    return AnalysisKey(version, digest, analyses.utc_day(now), flow)


def stored_document(store: Store, config: BridgeConfig, now: datetime) -> str | None:
    """The JSON document of the stored reports' analysis for the store as it is now, or None."""
    key = key_for(store, config, require_utc(now, "now"), flow=True)
    with store.read() as conn:
        return analyses.find_document(conn, key)


def shared_analysis(store: Store, config: BridgeConfig, now: datetime, *, flow: bool = False) -> Analysed:
    """The analysis of the store as it is now: the stored one for its key, else a new one, stored."""
    now = require_utc(now, "now")

    def load() -> Snapshot:
        return load_snapshot(store, since=analysis_since(config.analytics, now))

    key = key_for(store, config, now, flow=flow)
    with store.read() as conn:
        found = analyses.find(conn, key)
    if isinstance(found, Report):
        return Analysed(found, key, True, None, load)
    with analyses.one_analyser(store, key):
        with store.read() as conn:
            found = analyses.find(conn, key)  # another replica may have made it while this one waited
        if isinstance(found, Report):
            return Analysed(found, key, True, None, load)
        derived = _from_reports(store, key, now)
        if derived is not None:
            return Analysed(derived, key, True, None, load)
        started = time.perf_counter()
        snapshot = load()
        report = analyse(snapshot, config, now, flow=flow)
        seconds = time.perf_counter() - started
        document = None
        if key_for(store, config, now, flow=flow) == key:
            # the reports' analysis keeps its JSON document too: `bridge report --json` prints it as is
            document = report.to_json() if flow else None
            with store.write() as conn:
                analyses.save(conn, key, report, now=now, seconds=seconds, document=document)
        else:
            log.info("the store changed while it was analysed: the analysis is not kept")
    return Analysed(report, key, False, snapshot, load, document)


def _from_reports(store: Store, key: AnalysisKey, now: datetime) -> Report | None:
    """For a cycle's analysis (no flow charts): the reports' stored analysis of the same data, settings
    and day without its flow charts, stored under the cycle's key (so the next cycles read the smaller
    one), or None. It holds every figure a cycle's would: the flow charts are computed last, from the
    same index, and only added."""
    if key.flow:
        return None
    started = time.perf_counter()
    with store.read() as conn:
        found = analyses.find(conn, replace(key, flow=True))
    if not isinstance(found, Report):
        return None
    report = replace(found, flows=())
    with store.write() as conn:
        analyses.save(conn, key, report, now=now, seconds=time.perf_counter() - started)
    return report
