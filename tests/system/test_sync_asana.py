"""Whole cycles against the Asana sandbox: a cycle writes ranks, the OKR field, goal relationships (to a
goal that an okr rule names as the key result) and the at-risk tag; a second cycle writes nothing; a
user's edit of the rank field is restored while their tags and relationships stay; an opted-out task gets
nothing; `--dry-run` writes nothing; `bridge purge` takes everything back; native order puts each
section's tasks in rank order."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bridge.config import BridgeConfig, load_config
from bridge.connector import ConnectorRegistry
from bridge.store import Store
from bridge.store.written import load_written
from bridge.sync.cycle import CycleResult, run_cycle
from bridge_sandbox.asana import AsanaEmulator
from bridge_sandbox.server import SandboxServer
from tests.sandbox.conftest import Control

TOKEN = "asana-tok-8d21e5b07c9f"
WS, ME = "100", "200"
ROADMAP = "300"
TODO, DOING, DONE = "400", "401", "402"
VALUE, EFFORT, RANK, OKR = "500", "501", "502", "503"
OKR_TAG, CUSTOMER, IGNORE = "600", "601", "602"
OBJECTIVE, KR, OTHER_KR = "700", "701", "702"
KR_TITLE = "Activation above 40%"
MILESTONES = {"Alpha": 10, "Beta": 50, "Gamma": 30, "Delta": 40, "Epsilon": 20}
"""Milestone -> value, in the order they sit in "To Do" (value order is Beta, Delta, Gamma, ...)."""
LINKED = ("Beta", "Gamma")
"""Milestones tagged `okr-growth`, which the okr rule links to the goal KR."""
GIDS = {name: str(8000 + 10 * n) for n, name in enumerate([*MILESTONES, "Overdue"])}
"""Milestone name -> its gid; its task is the next gid ("Alpha task")."""
GIDS |= {f"{name} task": str(int(gid) + 1) for name, gid in list(GIDS.items())}


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def asana_seed(now: datetime) -> dict[str, Any]:
    """Five milestones in "To Do", each waiting on one task of its own there, and "Overdue": a milestone
    in progress past its due date whose only task is done (so it is at risk)."""
    created = _iso(now - timedelta(days=10))
    tasks: list[dict[str, Any]] = []
    for name, value in [*MILESTONES.items(), ("Overdue", 5)]:
        section = DOING if name == "Overdue" else TODO
        tags = [{"gid": OKR_TAG}] if name in LINKED else []
        milestone = {
            "gid": GIDS[name], "name": name, "resource_subtype": "milestone", "created_at": created,
            "modified_at": created, "memberships": [{"project": ROADMAP, "section": section}], "tags": tags,
            "custom_fields": [{"gid": VALUE, "number_value": value}, {"gid": EFFORT, "number_value": 3}],
            "dependencies": [{"gid": GIDS[f"{name} task"]}],
        }  # fmt: skip
        if name == "Overdue":
            milestone["due_on"] = (now - timedelta(days=3)).date().isoformat()
        tasks.append(milestone)
    for name in MILESTONES:
        member = [{"project": ROADMAP, "section": TODO}]
        gid = GIDS[f"{name} task"]
        tasks.append(
            {
                "gid": gid,
                "name": f"{name} task",
                "created_at": created,
                "modified_at": created,
                "memberships": member,
            }
        )
    tasks.append({"gid": GIDS["Overdue task"], "name": "Overdue task", "created_at": created,
                  "modified_at": created, "completed": True, "completed_at": _iso(now - timedelta(days=5)),
                  "memberships": [{"project": ROADMAP, "section": DONE}]})  # fmt: skip
    return {
        "workspaces": [{"gid": WS, "name": "Acme"}],
        "users": [{"gid": ME, "name": "Robin", "email": "robin@example.com"}],
        "custom_fields": [
            {"gid": VALUE, "name": "Customer value", "type": "number", "precision": 0},
            {"gid": EFFORT, "name": "Estimate", "type": "number", "precision": 0},
            {"gid": RANK, "name": "Value rank", "type": "number", "precision": 0},
            {"gid": OKR, "name": "Key result", "type": "text"},
        ],
        "tags": [
            {"gid": OKR_TAG, "name": "okr-growth", "color": "dark-green", "workspace": WS},
            {"gid": CUSTOMER, "name": "customer-x", "color": "light-blue", "workspace": WS},
            {"gid": IGNORE, "name": "bridge-ignore", "workspace": WS},
        ],
        "projects": [
            {
                "gid": ROADMAP,
                "name": "Roadmap",
                "workspace": WS,
                "custom_field_settings": [{"custom_field": g} for g in (VALUE, EFFORT, RANK, OKR)],
            },
        ],
        "sections": [
            {"gid": TODO, "name": "To Do", "project": ROADMAP},
            {"gid": DOING, "name": "In Progress", "project": ROADMAP},
            {"gid": DONE, "name": "Done", "project": ROADMAP},
        ],
        "tasks": tasks,
        "goals": [
            {"gid": OBJECTIVE, "name": "Grow", "workspace": WS},
            {"gid": KR, "name": KR_TITLE, "workspace": WS, "parent": OBJECTIVE},
            {"gid": OTHER_KR, "name": "Churn under 2%", "workspace": WS, "parent": OBJECTIVE},
        ],
    }


def asana_table(base_url: str, name: str = "t") -> str:
    return f"""
[trackers.{name}]
kind = "asana"
url = "{base_url}"
token_env = "{name.upper()}_TOKEN"
workspace = "{WS}"
projects = ["{ROADMAP}"]
max_requests_per_second = 1000

[trackers.{name}.status_map]
"To Do" = "todo"
"In Progress" = "in_progress"
"Done" = "done"
"completed" = "done"

[trackers.{name}.fields]
value = "Customer value"
effort = "Estimate"

[trackers.{name}.okrs]
goals = true

[[trackers.{name}.okr_rules]]
tag = "okr-growth"
key_result = "{name}:{KR}"

[trackers.{name}.write]
rank_field = "Value rank"
tasks_inherit = true
okr_field = "Key result"
okr_links = true
labels = true
"""


@dataclass
class WriteSpy:
    """The write actions the emulator ran, through the Batch API or not."""

    actions: list[str] = field(default_factory=list)

    def attach(self, emulator: AsanaEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
        run = emulator._run_action

        def spy(request: Any, action: Any) -> Any:
            if isinstance(action, dict) and str(action.get("method", "")).upper() != "GET":
                self.actions.append(f"{str(action['method']).upper()} {action.get('relative_path')}")
            return run(request, action)

        monkeypatch.setattr(emulator, "_run_action", spy)


@dataclass
class Sync:
    server: SandboxServer
    emulator: AsanaEmulator
    control: Control
    config: BridgeConfig
    config_path: Path
    store: Store
    spy: WriteSpy

    def cycle(self, **options: Any) -> CycleResult:
        result = run_cycle(self.store, self.config, now=datetime.now(UTC), **options)
        assert result.ok, [t.error for t in result.trackers]
        return result

    def reload(self, write_options: str) -> None:
        text = self.config_path.read_text().replace(
            "[trackers.t.write]\n", "[trackers.t.write]\n" + write_options
        )
        self.config_path.write_text(text)
        self.config = load_config(self.config_path, ConnectorRegistry.default())

    def edit(self, **change: Any) -> Any:
        return self.control.edit(**change)

    def writes_sent(self) -> list[str]:
        """Write requests outside the Batch API, and write actions within it."""
        log = self.control.get("requests")["log"]
        writes = [e for e in log if e["method"] in ("POST", "PUT", "DELETE")]
        direct = [f"{e['method']} {e['route']}" for e in writes if not e["route"].endswith("/batch")]
        return direct + self.spy.actions

    def forget_requests(self) -> None:
        self.control.send("DELETE", "requests")
        self.spy.actions.clear()

    def field(self, name: str, gid: str) -> Any:
        return self.emulator.state.tasks[GIDS[name]].custom_values.get(gid)

    def tags(self, name: str) -> set[str]:
        state = self.emulator.state
        return {state.tags[t]["name"] for t in state.tasks[GIDS[name]].tags}

    def goals(self, name: str) -> set[str]:
        relations = self.emulator.state.relationships.values()
        return {r["supported_goal"] for r in relations if r["supporting_resource"] == GIDS[name]}

    def ranks(self, result: CycleResult) -> dict[str, int]:
        assert result.report is not None
        names = {gid: name for name, gid in GIDS.items()}
        return {names[r.milestone.remote_id]: r.rank for r in result.report.milestones}

    def order(self, section: str) -> list[str]:
        names = {gid: name for name, gid in GIDS.items()}
        return [names[g] for g in self.emulator.state.section_tasks[section]]


@pytest.fixture
def sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sync]:
    emulator = AsanaEmulator.from_seed(asana_seed(datetime.now(UTC)), token=TOKEN)
    spy = WriteSpy()
    spy.attach(emulator, monkeypatch)
    monkeypatch.setenv("T_TOKEN", TOKEN)
    with SandboxServer(emulator) as server:
        path = tmp_path / "bridge.toml"
        path.write_text(
            f'[store]\nurl = "sqlite:///{tmp_path / "store.db"}"\n\n[push]\nmax_change_share = 1.0\n'
            + asana_table(server.base_url)
        )
        config = load_config(path, ConnectorRegistry.default())
        store = Store.open(config)
        try:
            yield Sync(server, emulator, Control(server.base_url), config, path, store, spy)
        finally:
            store.close()


def test_a_cycle_writes_ranks_okrs_goal_links_and_tags_then_nothing_more(sync: Sync) -> None:
    first = sync.cycle()
    (entry,) = first.trackers
    assert entry.push is not None and entry.push.failed == 0 and entry.push.done > 0, entry.push
    ranks = sync.ranks(first)
    assert sorted(ranks, key=ranks.__getitem__)[:5] == ["Beta", "Delta", "Gamma", "Epsilon", "Alpha"]
    for name, rank in ranks.items():
        assert sync.field(name, RANK) == rank, name
        assert sync.field(f"{name} task", RANK) == rank, "tasks inherit their milestone's rank"
    for name in [*MILESTONES, "Overdue"]:
        linked = name in LINKED
        assert sync.field(name, OKR) == (KR_TITLE if linked else None), name
        assert sync.goals(name) == ({KR} if linked else set()), name
    assert "mb-at-risk" in sync.tags("Overdue")
    assert not any("mb-at-risk" in sync.tags(n) for n in MILESTONES)
    assert sum(1 for t in sync.emulator.state.tags.values() if t["name"] == "mb-at-risk") == 1

    sync.forget_requests()
    second = sync.cycle()
    assert second.trackers[0].plan is not None and second.trackers[0].plan.writes == []
    assert sync.writes_sent() == [], "the bridge's own writes do not make it write again"


def test_a_user_edit_of_the_rank_field_is_restored_and_theirs_are_kept(sync: Sync) -> None:
    first = sync.cycle()
    rank = sync.ranks(first)["Beta"]
    sync.edit(op="set_custom_field", task=GIDS["Beta"], field=RANK, value=rank + 40)
    sync.edit(op="add_tag", task=GIDS["Beta"], tag="customer-x")
    sync.edit(op="add_supporting", goal=OBJECTIVE, supporting=GIDS["Beta"])
    again = sync.cycle()
    plan = again.trackers[0].plan
    assert plan is not None and [(w.field, w.value) for w in plan.writes] == [("rank", rank)]
    assert plan.restores == plan.writes
    assert sync.field("Beta", RANK) == rank
    assert "customer-x" in sync.tags("Beta")
    assert sync.goals("Beta") == {KR, OBJECTIVE}


def test_a_users_own_link_to_a_goal_shows_in_the_okr_field_and_stays_theirs(sync: Sync, run_cli: Any) -> None:
    sync.edit(op="add_supporting", goal=OTHER_KR, supporting=GIDS["Gamma"])
    sync.edit(op="add_supporting", goal=OTHER_KR, supporting=GIDS["Delta"])
    sync.cycle()
    assert sync.field("Gamma", OKR) == f"{KR_TITLE}; Churn under 2%"
    assert sync.field("Delta", OKR) == "Churn under 2%"
    assert sync.goals("Gamma") == {KR, OTHER_KR} and sync.goals("Delta") == {OTHER_KR}
    sync.forget_requests()
    assert sync.cycle().trackers[0].plan.writes == []  # type: ignore[union-attr]
    assert sync.writes_sent() == []
    result = run_cli("purge", "--tracker", "t", "--config", str(sync.config_path))
    assert result.exit_code == 0, result.stderr + result.stdout
    assert sync.goals("Gamma") == {OTHER_KR} and sync.goals("Delta") == {OTHER_KR}, "the user's stay"
    assert sync.field("Gamma", OKR) is None and sync.field("Delta", OKR) is None


def test_an_opted_out_task_is_never_written(sync: Sync) -> None:
    sync.edit(op="add_tag", task=GIDS["Beta"], tag="bridge-ignore")
    first = sync.cycle()
    assert "Beta" in sync.ranks(first)
    assert sync.field("Beta", RANK) is None and sync.field("Beta", OKR) is None
    assert sync.goals("Beta") == set() and sync.tags("Beta") == {"okr-growth", "bridge-ignore"}
    assert sync.field("Gamma", RANK) is not None, "the others are written"


def test_dry_run_writes_nothing_and_the_summary_counts(sync: Sync, run_cli: Any) -> None:
    result = run_cli("sync", "--config", str(sync.config_path), "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "writes planned" in result.stdout and "will be" in result.stdout
    assert sync.writes_sent() == []
    summary = run_cli("sync", "--config", str(sync.config_path), "--json")
    assert summary.exit_code == 0, summary.stderr
    (tracker,) = json.loads(summary.stdout)["trackers"]
    assert tracker["writes_done"] == tracker["writes_planned"] > 0 and tracker["writes_failed"] == 0
    assert tracker["requests"] > 0
    assert TOKEN not in summary.stdout + summary.stderr


def test_purge_takes_back_everything_the_bridge_wrote(sync: Sync, run_cli: Any) -> None:
    sync.cycle()
    assert sync.goals("Beta") == {KR} and "mb-at-risk" in sync.tags("Overdue")
    sync.edit(op="add_tag", task=GIDS["Beta"], tag="customer-x")
    sync.edit(op="add_supporting", goal=OTHER_KR, supporting=GIDS["Gamma"])
    result = run_cli("purge", "--tracker", "t", "--config", str(sync.config_path))
    assert result.exit_code == 0, result.stderr + result.stdout
    for name in GIDS:
        assert sync.field(name, RANK) is None, name
        assert sync.field(name, OKR) is None, name
        assert not [x for x in sync.tags(name) if x.startswith("mb-")], name
    assert sync.goals("Beta") == set()
    assert sync.goals("Gamma") == {OTHER_KR}, "the user's relationship stays"
    assert sync.tags("Beta") == {"okr-growth", "customer-x"}
    with sync.store.read() as conn:
        assert load_written(conn, "t").rows == {}


def test_native_order_follows_the_ranks_with_the_fewest_moves(sync: Sync) -> None:
    sync.reload("native_order = true\n")
    first = sync.cycle()
    ranks = sync.ranks(first)
    rank_of = {**ranks, **{f"{n} task": r for n, r in ranks.items()}}
    order = sync.order(TODO)
    assert [rank_of[n] for n in order] == sorted(rank_of[n] for n in order), order
    assert order.index("Beta") < order.index("Delta") < order.index("Gamma") < order.index("Alpha")
    plan = first.trackers[0].plan
    assert plan is not None
    moves = [w for w in plan.writes if w.kind == "order"]
    assert 0 < len(moves) < len(order)
    sync.forget_requests()
    again = sync.cycle()
    assert again.trackers[0].plan is not None and again.trackers[0].plan.writes == [], "in order: no move"
    assert sync.writes_sent() == []


def test_the_bridges_own_writes_seen_by_the_pull_plan_nothing_and_read_nothing(sync: Sync) -> None:
    """The pull stores what each task holds (managed custom fields, tags, section and place in the
    project's order), so the cycle after a push plans from it: the bridge's own writes and moves, seen
    again by the pull, plan nothing and no task is read back; a user's edit the pull sees is restored
    without a read either."""
    sync.reload("native_order = true\n")
    first = sync.cycle()
    plan = first.trackers[0].plan
    assert plan is not None and any(w.kind == "order" for w in plan.writes), "tasks were moved"
    (entry,) = sync.cycle().trackers
    assert entry.pull is not None and entry.pull.items > 0, "the pull saw the bridge's writes"
    assert entry.plan is not None and entry.plan.writes == []
    assert entry.push is not None and entry.push.read == 0

    rank = sync.ranks(first)["Beta"]
    sync.edit(op="set_custom_field", task=GIDS["Beta"], field=RANK, value=rank + 40)
    (edited,) = sync.cycle().trackers
    assert edited.plan is not None and [(w.field, w.value) for w in edited.plan.writes] == [("rank", rank)]
    assert edited.plan.restores == edited.plan.writes and sync.field("Beta", RANK) == rank
    # Beta supports a goal: every goal is read, so its links come with the page too.
    assert edited.push is not None and edited.push.read == 0
    (after,) = sync.cycle().trackers
    assert after.plan is not None and after.plan.writes == []
    assert after.push is not None and after.push.read == 0


def test_a_users_move_seen_by_the_pull_is_undone_without_reading(sync: Sync) -> None:
    """A user's reorder leaves `modified_at` alone but sends an event: the pull reads the project's order
    again (one listing), and the push puts the task back without reading any task."""
    sync.reload("native_order = true\n")
    ranks = sync.ranks(sync.cycle())
    rank_of = {**ranks, **{f"{n} task": r for n, r in ranks.items()}}
    sync.cycle()
    order = sync.order(TODO)
    last = order[-1]
    sync.edit(op="move_task", task=GIDS[last], section=TODO, insert_before=GIDS[order[0]])
    assert sync.order(TODO)[0] == last
    (entry,) = sync.cycle().trackers
    assert entry.plan is not None and [w.kind for w in entry.plan.writes] == ["order"]
    assert entry.push is not None and entry.push.read == 0
    restored = sync.order(TODO)
    assert restored[0] == order[0] and [rank_of[n] for n in restored] == [rank_of[n] for n in order]
    (after,) = sync.cycle().trackers
    assert after.plan is not None and after.plan.writes == []
    assert after.push is not None and after.push.read == 0


def test_a_goal_link_a_user_removed_is_restored_from_the_goals_read_without_reading_the_task(
    sync: Sync,
) -> None:
    """Every goal of the workspace is read by the goals stream, so a page shows each task's goal links:
    the bridge's link a user removed is added again with no task read back."""
    sync.cycle()
    sync.cycle()
    sync.edit(op="remove_supporting", goal=KR, supporting=GIDS["Beta"])
    assert sync.goals("Beta") == set()
    (entry,) = sync.cycle().trackers
    assert entry.plan is not None and [w.kind for w in entry.plan.writes] == ["link"]
    assert entry.push is not None and entry.push.read == 0
    assert sync.goals("Beta") == {KR}
