"""The whole analysis: coherence warnings, the JSON document and determinism."""

from __future__ import annotations

import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.analytics import Snapshot, analyse
from bridge.analytics.coherence import warnings
from bridge.analytics.okr import effective_links
from bridge.analytics.snapshot import build_index
from bridge.config import AnalyticsConfig, BridgeConfig, OkrsConfig
from bridge.domain import KeyResultLink, LinkOrigin, Ref
from tests.analytics.build import DAY, DOING, DONE, NOW, SOURCE, finished, flatten, history, milestone, task
from tests.analytics.test_forecast import team_work
from tests.cli.test_report import SECTIONS

OKRS = OkrsConfig.model_validate(
    {
        "objectives": [
            {
                "id": "O1",
                "title": "Make checkout effortless",
                "key_results": [{"id": "KR1", "title": "Raise checkout conversion", "keywords": ["payment"]}],
            }
        ]
    }
)


def snapshot() -> Snapshot:
    milestones = [
        milestone("M1", team="core", value=8.0, effort=2.0, category=DOING, due=NOW + 30 * DAY),
        milestone("M2", team="core", value=5.0, effort=1.0, title="Payment retries at checkout"),
        milestone("M3", team="core", value=3.0, effort=1.0),
        milestone("M4", team="core", value=1.0, effort=1.0, category=DOING),
        milestone("M5", team="core", effort=1.0),
        milestone("M6", team="core", value=9.0, category=DONE),
    ]
    pairs = [finished(f"d{i}", "core", "api", 2.0 + i, milestone_id="M6") for i in range(6)]
    done, changes = flatten(pairs)
    tasks = [
        *done,
        task("t2", team="core", milestone_id="M2", category=DOING, work_type="api"),  # M2 under way
        task("t3", team="core", milestone_id="M3", category=DONE),  # M3 under way: a task finished
        task("t5", team="core", milestone_id="M5"),  # M5 not started
        task("t1", team="core", milestone_id="M1"),
        task("loose", team="core"),
        task("ghost", team="core", milestone_id="NOPE"),
        task("old-orphan", team="core", category=DONE),
    ]
    changes += history("t2", (3, DOING))
    links = [
        KeyResultLink(Ref(SOURCE, "M1"), Ref("config", "KR1"), LinkOrigin.RULE),
        KeyResultLink(Ref(SOURCE, "M3"), Ref("config", "KR1"), LinkOrigin.SUGGESTED, 0.3),
    ]
    return Snapshot(milestones=milestones, tasks=tasks, status_changes=changes, links=links)


def test_coherence_warnings_worked_example() -> None:
    snap = snapshot()
    found = {w.kind: w for w in warnings(build_index(snap), effective_links(snap.links), 3)}
    # M1 and M4 say so; M2 has a task in progress and M3 a finished one: 4 in progress, limit 3
    # items as people read them: these keys are no `PAY-1` kind, so the title alone
    retries = "Payment retries at checkout"
    assert found["too_many_in_progress"].items == ("Milestone M1", "Milestone M3", "Milestone M4", retries)
    assert found["too_many_in_progress"].message.startswith("team core has 4 milestones in progress at once")
    # only M1 has a key result (M3's is a suggestion nobody confirmed); M6 is done
    assert found["milestone_without_key_result"].items == (
        "Milestone M3",
        "Milestone M4",
        "Milestone M5",
        retries,
    )
    # open tasks with no milestone, or one the store does not hold; finished ones are history
    assert found["task_without_milestone"].items == ("Task ghost", "Task loose")
    assert found["task_without_milestone"].message == "2 open tasks in team core belong to no milestone"


def test_the_warning_points_at_suggestions_only_where_there_are_some() -> None:
    snap = snapshot()
    index, links = build_index(snap), effective_links(snap.links)

    def unlinked(suggested: set[Ref]) -> str:
        found = {w.kind: w for w in warnings(index, links, 3, suggested=suggested)}
        return found["milestone_without_key_result"].message

    none = unlinked(set())
    assert "suggest" not in none, "no suggestion to see"
    assert none == (
        "4 open milestones in team core move no key result "
        "(link them to one in their tracker or with okr_rules entries in the config)"
    )
    some = unlinked({Ref(SOURCE, "M2")})
    assert some.endswith("`bridge okr suggest` has a key result for 1 of them)")


def test_analyse_produces_the_json_document() -> None:
    config = BridgeConfig(analytics=AnalyticsConfig(rank_strategy="wsjf", forecast_runs=200), okrs=OKRS)
    report = analyse(snapshot(), config, NOW, flow=True)
    document = json.loads(report.to_json())
    # the command adds the stored drafts, the forecast history and the milestones reached
    stored = ("okr_drafts", "forecast_history", "milestones_reached")
    assert list(document) == [s for s in SECTIONS if s not in stored]
    flow = document["flow"][0]
    assert list(flow) == [
        "team",
        "cycle_time_percentiles",
        "cycle_times",
        "cumulative_flow",
        "weekly_throughput",
        "ageing",
        "ageing_percentiles",
        "how_many",
        "how_many_basis",
    ]
    assert len(flow["cumulative_flow"]) == 90 and len(flow["weekly_throughput"]) == 12
    assert set(flow["cumulative_flow"][0]) == {"day", "todo", "in_progress", "waiting", "done"}
    # wsjf: M2 5/1 = 5, M1 8/2 = 4, M3 3, M4 1, M5 unscored; M6 is done
    assert [m["key"] for m in document["milestones"]] == ["M2", "M1", "M3", "M4", "M5"]
    assert document["milestones"][1]["key_results"] == [
        {"id": "config:KR1", "title": OKRS.objectives[0].key_results[0].title, "origin": "rule"}
    ]
    assert document["milestones"][4]["flag"] == "no value set"
    kr = document["okrs"]["objectives"][0]["key_results"][0]
    assert kr["milestones"][0]["key"] == "M1" and kr["progress"] == 0.0
    assert (
        kr["progress_basis"] == "milestones" and kr["objective"] == document["okrs"]["objectives"][0]["title"]
    )
    suggested = {s["milestone"]: s for s in document["okrs"]["suggestions"]}
    assert suggested["jira:M2"]["key_result"] == "config:KR1"
    assert {w["kind"] for w in document["warnings"]} == {
        "too_many_in_progress",
        "milestone_without_key_result",
        "task_without_milestone",
    }
    api = next(w for w in document["work_types"] if w["work_type"] == "api")
    # finished cycle times 2 3 4 5 6 7: median 4.5
    assert api["cycle_time"]["median_days"] == 4.5 and api["in_progress"] == 1
    assert {f["key"] for f in document["forecasts"]} == {"M1", "M2", "M3", "M4", "M5"}
    assert report.task_rank(task("x", milestone_id="M1")) == 2
    assert report.task_rank(task("y", milestone_id="M6")) is None


def test_same_input_same_output() -> None:
    config = AnalyticsConfig(forecast_runs=300, seed=5)
    assert (
        analyse(snapshot(), config, NOW, flow=True).to_json()
        == analyse(snapshot(), config, NOW, flow=True).to_json()
    )


@settings(max_examples=25, deadline=None)
@given(team_work(), st.randoms(use_true_random=False))
def test_same_input_in_any_order_gives_the_same_report(data: Snapshot, rng: random.Random) -> None:
    config = BridgeConfig(analytics=AnalyticsConfig(forecast_runs=100, bootstrap_runs=100), okrs=OKRS)
    first = analyse(data, config, NOW).to_json()
    assert analyse(data, config, NOW).to_json() == first
    parts = {name: list(getattr(data, name)) for name in ("milestones", "tasks", "status_changes")}
    for items in parts.values():
        rng.shuffle(items)
    assert analyse(Snapshot(**parts), config, NOW).to_json() == first  # type: ignore[arg-type]
