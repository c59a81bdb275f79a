"""The method's warnings item by item (the labels `bridge sync` writes): hand-built snapshots."""

from __future__ import annotations

from bridge.analytics import Snapshot, analyse
from bridge.analytics.coherence import ItemWarning, ordinal
from bridge.config import AnalyticsConfig, BridgeConfig, PushConfig, parse_config
from bridge.connector import ConnectorRegistry
from bridge.domain import Milestone, Ref
from bridge.sync.desired import Labels, desired_state
from bridge.sync.explain import explain
from bridge.written import Written
from tests.analytics.build import (
    DOING,
    DONE,
    NOW,
    SOURCE,
    WAITING,
    finished,
    flatten,
    history,
    milestone,
    task,
)


def _found(snap: Snapshot, kind: str, **settings: object) -> dict[str, ItemWarning]:
    config = AnalyticsConfig.model_validate({"forecast_runs": 100, **settings})
    report = analyse(snap, config, NOW)
    return {w.item.remote_id: w for w in report.item_warnings if w.kind == kind}


def _estimates() -> list[Milestone]:
    return [
        milestone("full", team="core", value=5.0, effort=2.0),
        milestone("no-value", team="core", effort=2.0),
        milestone("no-effort", team="core", value=5.0),
        milestone("zero-effort", team="core", value=5.0, effort=0.0),
        milestone("bare", team="core"),
        milestone("done-bare", team="core", category=DONE),
    ]


def test_needs_estimate_follows_what_the_rank_strategy_reads() -> None:
    snap = Snapshot(milestones=_estimates())
    by_value = _found(snap, "needs_estimate", rank_strategy="value")
    assert sorted(by_value) == ["bare", "no-value"], "value reads the value alone; done items never"
    assert by_value["no-value"].reason == (
        "no value set: the value rank strategy ranks by value, so it is ranked after every scored milestone"
    )
    by_wsjf = _found(snap, "needs_estimate", rank_strategy="wsjf")
    assert sorted(by_wsjf) == ["bare", "no-effort", "no-value", "zero-effort"]
    assert by_wsjf["no-effort"].reason.startswith(
        "no effort set: the wsjf rank strategy divides value by effort"
    )
    assert by_wsjf["zero-effort"].reason.startswith("no effort set")
    assert by_wsjf["bare"].reason.startswith("no value and no effort set")
    assert by_wsjf["bare"].name == "Milestone bare" and by_wsjf["bare"].team == "core"
    assert _found(snap, "needs_estimate", rank_strategy="okr") == {}, "okr scores by key results"


def test_too_many_in_progress_labels_the_lowest_ranked_beyond_the_limit() -> None:
    milestones = [
        milestone(f"P{n}", team="payments", value=float(10 - n), category=DOING) for n in range(1, 6)
    ]
    milestones += [
        milestone("P-idle", team="payments", value=100.0),  # open, not started: not counted
        milestone("P-done", team="payments", value=100.0, category=DONE),
        milestone("S1", team="search", value=1.0, category=DOING),  # within its own team's limit
    ]
    found = _found(Snapshot(milestones=milestones), "too_many_in_progress", max_milestones_in_progress=3)
    assert sorted(found) == ["P4", "P5"]
    assert (
        found["P4"].reason == "payments has 5 milestones in progress, more than 3; this one ranks 4th of them"
    )
    assert found["P5"].reason.endswith("this one ranks 5th of them")
    assert _found(Snapshot(milestones=milestones), "too_many_in_progress", max_milestones_in_progress=5) == {}


def test_a_milestone_with_a_started_task_counts_as_in_progress() -> None:
    milestones = [milestone(f"M{n}", team="core", value=float(10 - n)) for n in range(1, 3)]
    tasks = [
        task("a", team="core", milestone_id="M1", category=DOING),
        task("b", team="core", milestone_id="M2"),
    ]
    found = _found(
        Snapshot(milestones=milestones, tasks=tasks), "too_many_in_progress", max_milestones_in_progress=1
    )
    assert found == {}, "M2's task has not started: one milestone in progress"
    tasks[1] = task("b", team="core", milestone_id="M2", category=WAITING)
    found = _found(
        Snapshot(milestones=milestones, tasks=tasks), "too_many_in_progress", max_milestones_in_progress=1
    )
    assert list(found) == ["M2"] and found["M2"].reason.endswith("ranks 2nd of them")


def _ageing_world(open_since: float, *, typed: int = 6) -> Snapshot:
    # six finished design/research tasks of 2..12 days: p85 is 10.5 d
    pairs = [finished(f"d{i}", "design", "research", 2.0 + 2 * i) for i in range(typed)]
    pairs += [finished(f"o{i}", "design", "visual", 1.0 + i) for i in range(6)]
    done, changes = flatten(pairs)
    tasks = [
        *done,
        task("old", team="design", work_type="research", category=DOING, title="Interview buyers"),
        task("young", team="design", work_type="research", category=DOING),
        task("waiting", team="design", work_type="research", category=WAITING),
        task("todo", team="design", work_type="research"),
    ]
    changes += history("old", (open_since + 1, DOING), (open_since - 2, WAITING), (open_since - 3, DOING))
    changes += history("young", (1.0, DOING))
    changes += history("waiting", (30.0, DOING), (29.0, WAITING))
    return Snapshot(tasks=tasks, status_changes=changes)


def test_ageing_measures_from_the_first_start_against_the_work_types_percentile() -> None:
    found = _found(_ageing_world(23.4), "ageing")
    assert sorted(found) == ["old", "waiting"], "waiting counts: started and not done; todo never started"
    old = found["old"]
    assert old.name == "Interview buyers" and old.team == "design"
    # age from the first start (24.4 d ago), not the last move back into progress
    assert old.reason == (
        "in progress 24.4 d, longer than 85% of design/research work takes (10.5 d): a hint to split it"
    )
    assert _found(_ageing_world(23.4), "ageing", percentile=99)["old"].reason.startswith(
        "in progress 24.4 d, longer than 99% of design/research"
    )


def test_ageing_falls_back_on_the_team_and_says_so() -> None:
    found = _found(_ageing_world(23.4, typed=2), "ageing")
    assert "old" in found
    assert found["old"].reason == (
        "in progress 24.4 d, longer than 85% of design's work takes "
        "(5.0 d; too few design/research items finished to judge by type): a hint to split it"
    )


def test_the_report_names_the_labels_only_where_a_tracker_takes_them() -> None:
    snap = Snapshot(milestones=[milestone("bare", team="core")])
    plain = analyse(snap, AnalyticsConfig(forecast_runs=100), NOW)
    assert plain.warning_labels == {} and [w.kind for w in plain.item_warnings] == ["needs_estimate"]
    config = BridgeConfig(analytics=AnalyticsConfig(forecast_runs=100), push=PushConfig(label_prefix="x-"))
    assert analyse(snap, config, NOW).warning_labels == {}, "no tracker: nothing written"
    document = plain.to_dict()["item_warnings"]
    assert document == [
        {
            "kind": "needs_estimate",
            "item": str(Ref(SOURCE, "bare")),
            "name": "Milestone bare",
            "team": "core",
            "reason": "no value set: the value rank strategy ranks by value, "
            "so it is ranked after every scored milestone",
            "label": None,
        }
    ]


def test_ordinals() -> None:
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th",
    ]  # fmt: skip


def test_push_config_checks_the_new_labels() -> None:
    problems = dict(PushConfig(ageing_label="slow work").problems())
    assert problems[("ageing_label",)] == "labels cannot contain spaces (Jira rejects them)"
    clash = dict(PushConfig(ageing_label="bottleneck").problems())
    assert "'mb-bottleneck' is also bottleneck_label's label" in clash[("ageing_label",)]
    frozen = dict(PushConfig(opt_out_label="mb-needs-estimate").problems())
    assert "needs_estimate_label" in frozen[("opt_out_label",)]
    assert set(PushConfig().managed_labels()) >= {"mb-needs-estimate", "mb-too-many-in-progress", "mb-ageing"}


TRACKER = """
[analytics]
forecast_runs = 100
max_milestones_in_progress = 1

[trackers.jira]
kind = "jira"
url = "https://acme.atlassian.net"
email_env = "J_EMAIL"
token_env = "J_TOKEN"
projects = ["T"]
status_map = { "To Do" = "todo", "Doing" = "in_progress", "Done" = "done" }
"""


def _labelled_world() -> Snapshot:
    return Snapshot(
        milestones=[
            milestone("first", team="core", value=9.0, category=DOING),
            milestone("second", team="core", value=5.0, category=DOING),
            milestone("bare", team="core"),
            milestone("bare-done", team="core", category=DONE),
        ]
    )


def test_sync_wishes_each_warning_label_with_its_reason_and_explain_shows_it() -> None:
    config = parse_config(TRACKER, ConnectorRegistry.default())
    snap = _labelled_world()
    report = analyse(snap, config, NOW)
    assert report.warning_labels["needs_estimate"] == "mb-needs-estimate"
    wishes = desired_state(report, snap, SOURCE, config)
    labels = {ref.remote_id: set(wish.labels) for ref, wish in wishes.items()}
    assert labels == {
        "first": set(),
        "second": {"mb-too-many-in-progress"},
        "bare": {"mb-needs-estimate"},
        "bare-done": set(),
    }
    second = wishes[Ref(SOURCE, "second")]
    assert second.reasons["mb-too-many-in-progress"] == (
        "core has 2 milestones in progress, more than 1; this one ranks 2nd of them"
    )
    assert {"mb-needs-estimate", "mb-too-many-in-progress", "mb-ageing"} <= Labels.of(config).managed
    assert Labels.of(config).colours["mb-ageing"] == "sky"
    shown = explain(report, snap, config, "second", Written())
    assert ("label", "mb-too-many-in-progress", second.reasons["mb-too-many-in-progress"]) in shown.lines

    quiet = parse_config(TRACKER + "\n[trackers.jira.write]\nlabels = false\n", ConnectorRegistry.default())
    report = analyse(snap, quiet, NOW)
    assert report.warning_labels == {}, "no tracker takes labels: the report names none"
    assert not any(wish.labels for wish in desired_state(report, snap, SOURCE, quiet).values())
    shown = explain(report, snap, quiet, "bare", Written())
    assert ("warning", "needs estimate", "no value set: the value rank strategy ranks by value, so it is "
            "ranked after every scored milestone") in shown.lines  # fmt: skip
