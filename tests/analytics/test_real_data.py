"""Cycle times per work type over real Jira history (../shared/data/aea-jira), against a computation
written here straight from the raw file.

The work type is the Journal field; the README's status table gives each status's stage.
"""

from __future__ import annotations

import json
import re
import statistics
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import pytest

from bridge.analytics.bottlenecks import work_type_stats
from bridge.analytics.snapshot import build_index
from bridge.config import AnalyticsConfig
from bridge.domain import Snapshot, StatusCategory, StatusChange, Task
from tests.sandbox.conftest import SHARED

DATA = SHARED / "data" / "aea-jira"
JOURNAL = "customfield_10100"

pytestmark = pytest.mark.skipif(
    not (DATA / "issues.json").is_file(),
    reason=f"{DATA / 'issues.json'} is absent (set BRIDGE_SHARED_DIR to the folder holding data/ and specs/)",
)


def stages() -> dict[str, str]:
    """Status id -> stage, from the README's table rows `| 10001 | Open | new | todo | ...`."""
    found = {}
    for line in (DATA / "README.md").read_text(encoding="utf-8").splitlines():
        cells = [cell.strip().strip("*") for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and re.fullmatch(r"100\d\d", cells[0]):
            found[cells[0]] = cells[3]
    return found


def issues() -> list[dict[str, Any]]:
    document = json.loads((DATA / "issues.json").read_text(encoding="utf-8"))
    return list(document["issues"])


def when(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")


def status_moves(issue: dict[str, Any]) -> list[tuple[datetime, str]]:
    moves = []
    for entry in issue["changelog"]["histories"]:
        for item in entry["items"]:
            if item["field"] == "status":
                moves.append((when(entry["created"]), item["to"]))
    return sorted(moves)


def journal(issue: dict[str, Any]) -> str | None:
    value = issue["fields"].get(JOURNAL)
    return value["value"] if value else None


def independent_figures(stage: dict[str, str]) -> dict[str | None, tuple[int, float, float, float]]:
    """Per journal: finished count, median and 85th percentile of cycle days, median active days."""
    cycles: defaultdict[str | None, list[float]] = defaultdict(list)
    actives: defaultdict[str | None, list[float]] = defaultdict(list)
    for issue in issues():
        if stage[issue["fields"]["status"]["id"]] != "done":
            continue
        moves = status_moves(issue)
        starts = [at for at, status in moves if stage[status] in ("in_progress", "waiting")]
        ends = [at for at, status in moves if stage[status] == "done"]
        if not starts or not ends or ends[-1] < starts[0]:
            continue
        begin, end = starts[0], ends[-1]
        waited = timedelta()
        for i in range(len(moves) - 1):
            at, status = moves[i]
            following = moves[i + 1][0]
            if stage[status] == "waiting" and begin <= at and following <= end:
                waited += following - at
        cycles[journal(issue)].append((end - begin) / timedelta(days=1))
        actives[journal(issue)].append((end - begin - waited) / timedelta(days=1))
    figures = {}
    for name, values in cycles.items():
        p85 = statistics.quantiles(values, n=100, method="inclusive")[84] if len(values) > 1 else values[0]
        figures[name] = (len(values), statistics.median(values), p85, statistics.median(actives[name]))
    return figures


def snapshot(stage: dict[str, str]) -> tuple[Snapshot, datetime]:
    category = {status: StatusCategory(value) for status, value in stage.items()}
    tasks, changes = [], []
    latest = datetime.min.replace(tzinfo=when("2024-01-01T00:00:00.000+0000").tzinfo)
    for issue in issues():
        fields = issue["fields"]
        tasks.append(
            Task(
                source="aea",
                remote_id=issue["id"],
                key=issue["key"],
                title=fields["summary"],
                team="AEA Data Editor",
                work_type=journal(issue),
                raw_status=fields["status"]["id"],
                category=category[fields["status"]["id"]],
            )
        )
        for at, status in status_moves(issue):
            latest = max(latest, at)
            changes.append(
                StatusChange(
                    "aea",
                    f"{issue['id']}:{at.isoformat()}",
                    issue["id"],
                    at,
                    None,
                    status,
                    None,
                    category[status],
                )
            )
    return Snapshot(tasks=tasks, status_changes=changes), latest + timedelta(days=1)


def test_cycle_times_per_journal_match_the_raw_file() -> None:
    stage = stages()
    assert len(stage) == 29 and stage["10019"] == "waiting" and stage["10003"] == "in_progress"
    expected = independent_figures(stage)
    data, now = snapshot(stage)
    config = AnalyticsConfig(window=timedelta(days=5000))
    found = {
        s.work_type: (
            s.cycle_time.count,
            s.cycle_time.median_days,
            s.cycle_time.percentile_days,
            s.active_time.median_days,
        )
        for s in work_type_stats(build_index(data), now, config)
        if s.cycle_time is not None and s.active_time is not None
    }
    assert set(found) == set(expected)
    assert sum(count for count, *_ in expected.values()) > 600  # most of the 735 done tickets
    for name, figures in expected.items():
        assert found[name] == pytest.approx(figures, rel=1e-9), name
