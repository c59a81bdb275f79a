"""Whole cycles against the Trello sandbox: a cycle writes ranks, the OKR field, a link attachment marked
with the bridge's id and the at-risk label; a second cycle writes nothing; a user's edit of the rank field
is restored while their labels and attachments stay; an opted-out card gets nothing; `--dry-run` writes
nothing; `bridge purge` takes everything back; native order puts each list's cards in rank order."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bridge.config import BridgeConfig, load_config
from bridge.connector import ConnectorRegistry
from bridge.store import Store, forecast_history
from bridge.store.written import load_written
from bridge.sync.cycle import CycleResult, run_cycle
from bridge_sandbox.server import SandboxServer
from bridge_sandbox.trello import Board, TrelloEmulator
from bridge_trello.push import parse_attachment
from tests.sandbox.conftest import Control

KEY, TOKEN = "sandbox-key", "tok-51c0e8a9d2f47b36"
WRITE_METHODS = ("PUT", "POST", "DELETE")
KR_URL = "https://okr.example.com/kr/7"
KR_TITLE = "Self-serve design system"
MILESTONES = {"Alpha": 10, "Beta": 50, "Gamma": 30, "Delta": 40, "Epsilon": 20}
"""Milestone -> value, in the order their cards sit in "To Do" (value order is Beta, Delta, ...)."""
LINKED = ("Beta", "Gamma")
"""Milestones carrying the `okr-design` label, which the okr rule links to the key result."""


OKRS = f"""
[push]
max_change_share = 1.0

[[okrs.objectives]]
id = "O7"
title = "Design at scale"

[[okrs.objectives.key_results]]
id = "KR7"
title = "{KR_TITLE}"
url = "{KR_URL}"
"""


def trello_table(base_url: str, board: str, name: str = "t") -> str:
    return f"""
[trackers.{name}]
kind = "trello"
url = "{base_url}"
api_key_env = "{name.upper()}_KEY"
token_env = "{name.upper()}_TOKEN"
boards = ["{board}"]
max_requests_per_second = 1000

[trackers.{name}.status_map]
"To Do" = "todo"
"In Progress" = "in_progress"
"Done" = "done"

[trackers.{name}.fields]
value = "Value"
effort = "Effort"

[[trackers.{name}.okr_rules]]
key_result = "KR7"
label = "okr-design"

[trackers.{name}.write]
rank_field = "Value rank"
tasks_inherit = true
okr_field = "Key result"
okr_links = true
labels = true
"""


@dataclass
class Sync:
    server: SandboxServer
    emulator: TrelloEmulator
    control: Control
    board: Board
    config: BridgeConfig
    config_path: Path
    store: Store
    cards: dict[str, str]
    """Card name -> id: each milestone's own card, its task ("Alpha task"), and "Overdue"."""

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
        log = self.control.get("requests")["log"]
        return [f"{e['method']} {e['route']}" for e in log if e["method"] in WRITE_METHODS]

    def card(self, name: str) -> dict[str, Any]:
        return self.board.cards[self.cards[name]]

    def field(self, name: str, field: str) -> Any:
        wanted = next(i for i, f in self.board.custom_fields.items() if f["name"] == field)
        for item in self.card(name)["customFieldItems"]:
            if item["idCustomField"] == wanted and item.get("value"):
                value = next(iter(item["value"].values()))
                return float(value) if field == "Value rank" else value
        return None

    def labels(self, name: str) -> set[str]:
        return {self.board.labels[i]["name"] for i in self.card(name)["idLabels"]}

    def attachments(self, name: str) -> list[tuple[str, str]]:
        return [(a["name"], a["url"]) for a in self.card(name)["attachments"]]

    def ranks(self, result: CycleResult) -> dict[str, int]:
        """Milestone name -> its rank in the cycle's report."""
        assert result.report is not None
        by_label = {f"label:{i}": x["name"].removeprefix("M:") for i, x in self.board.labels.items()}
        return {by_label[r.milestone.remote_id]: r.rank for r in result.report.milestones}

    def order(self, list_name: str) -> list[str]:
        wanted = next(i for i, x in self.board.lists.items() if x["name"] == list_name)
        names = {i: n for n, i in self.cards.items()}
        cards = [c for c in self.board.cards.values() if c["idList"] == wanted and not c["closed"]]
        return [names[c["id"]] for c in sorted(cards, key=lambda c: c["pos"])]


@pytest.fixture
def sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sync]:
    emulator = TrelloEmulator(key=KEY, token=TOKEN)
    board = emulator.create_board("Design", ("To Do", "In Progress", "Done"))
    with SandboxServer(emulator) as server:
        control = Control(server.base_url)
        cards = seed_board(control, board.id)
        monkeypatch.setenv("T_KEY", KEY)
        monkeypatch.setenv("T_TOKEN", TOKEN)
        path = tmp_path / "bridge.toml"
        store_url = f'[store]\nurl = "sqlite:///{tmp_path / "store.db"}"\n'
        path.write_text(store_url + OKRS + trello_table(server.base_url, board.id))
        config = load_config(path, ConnectorRegistry.default())
        store = Store.open(config)
        try:
            yield Sync(server, emulator, control, board, config, path, store, cards)
        finally:
            store.close()


def seed_board(control: Control, board: str) -> dict[str, str]:
    """Five label milestones with their cards and one task each in "To Do", and "Overdue": a milestone
    in progress past its due date whose only task is done (so it is at risk)."""
    edit = control.edit
    for name, kind in (
        ("Value", "number"),
        ("Effort", "number"),
        ("Value rank", "number"),
        ("Key result", "text"),
    ):
        edit(op="create_custom_field", board=board, name=name, type=kind)
    for name, colour in (("milestone", "black"), ("okr-design", "lime"), ("customer-x", "blue"),
                         ("bridge-ignore", None)):  # fmt: skip
        edit(op="create_label", board=board, name=name, color=colour)
    cards: dict[str, str] = {}
    for name, value in [*MILESTONES.items(), ("Overdue", 5)]:
        edit(op="create_label", board=board, name=f"M:{name}", color="sky")
        labels = [f"M:{name}", "milestone", *(["okr-design"] if name in LINKED else [])]
        where = "In Progress" if name == "Overdue" else "To Do"
        extra = {"due": (datetime.now(UTC) - timedelta(days=3)).isoformat()} if name == "Overdue" else {}
        cards[name] = edit(op="create_card", board=board, list=where, name=name, labels=labels, **extra)["id"]
        edit(op="set_custom_field", card=cards[name], field="Value", value=value)
        edit(op="set_custom_field", card=cards[name], field="Effort", value=3)
    for name in MILESTONES:
        task = f"{name} task"
        cards[task] = edit(op="create_card", board=board, list="To Do", name=task, labels=[f"M:{name}"])["id"]
    cards["Overdue task"] = edit(
        op="create_card", board=board, list="In Progress", name="Overdue task", labels=["M:Overdue"]
    )["id"]
    edit(op="move_card", card=cards["Overdue task"], list="Done")
    return cards


def test_a_cycle_writes_ranks_okrs_links_and_labels_then_nothing_more(sync: Sync) -> None:
    first = sync.cycle()
    (entry,) = first.trackers
    assert entry.push is not None and entry.push.failed == 0 and entry.push.done > 0, entry.push
    ranks = sync.ranks(first)
    assert sorted(ranks, key=ranks.__getitem__)[:5] == ["Beta", "Delta", "Gamma", "Epsilon", "Alpha"]
    for name, rank in ranks.items():
        assert sync.field(name, "Value rank") == rank, name
        assert sync.field(f"{name} task", "Value rank") == rank, "tasks inherit their milestone's rank"
    for name in [*MILESTONES, "Overdue"]:
        linked = name in LINKED
        assert sync.field(name, "Key result") == (KR_TITLE if linked else None), name
        links = [parse_attachment({"name": n, "url": u}) for n, u in sync.attachments(name)]
        assert [(x.url, x.global_id.startswith("milestone-bridge:")) for x in links if x] == (
            [(KR_URL, True)] if linked else []
        ), name
    assert "mb-at-risk" in sync.labels("Overdue")
    assert not any("mb-at-risk" in sync.labels(n) for n in MILESTONES)

    sync.control.send("DELETE", "requests")
    second = sync.cycle()
    assert second.trackers[0].plan is not None and second.trackers[0].plan.writes == []
    assert sync.writes_sent() == [], "the bridge's own writes do not make it write again"


def test_a_user_edit_of_the_rank_field_is_restored_and_theirs_are_kept(sync: Sync) -> None:
    first = sync.cycle()
    rank = sync.ranks(first)["Beta"]
    sync.edit(op="set_custom_field", card=sync.cards["Beta"], field="Value rank", value=rank + 40)
    sync.edit(op="add_label", card=sync.cards["Beta"], label="customer-x")
    sync.edit(op="add_attachment", card=sync.cards["Beta"], url="https://docs.example.com/x", name="Design")
    sync.edit(op="add_attachment", card=sync.cards["Beta"], url=KR_URL, name="Our key result")
    again = sync.cycle()
    plan = again.trackers[0].plan
    assert plan is not None and [(w.field, w.value) for w in plan.writes] == [("rank", rank)]
    assert plan.restores == plan.writes
    assert sync.field("Beta", "Value rank") == rank
    assert "customer-x" in sync.labels("Beta")
    names = [n for n, _ in sync.attachments("Beta")]
    assert "Design" in names and "Our key result" in names
    assert sum(1 for _, u in sync.attachments("Beta") if u == KR_URL) == 2, "no duplicate of the bridge's"


def test_an_opted_out_card_is_never_written(sync: Sync) -> None:
    sync.edit(op="add_label", card=sync.cards["Beta"], label="bridge-ignore")
    first = sync.cycle()
    assert "Beta" in sync.ranks(first)
    assert sync.field("Beta", "Value rank") is None and sync.field("Beta", "Key result") is None
    assert sync.attachments("Beta") == [] and sync.labels("Beta") == {"M:Beta", "milestone", "okr-design",
                                                                        "bridge-ignore"}  # fmt: skip
    assert sync.field("Gamma", "Value rank") is not None, "the others are written"


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
    assert TOKEN not in summary.stdout + summary.stderr and KEY not in summary.stdout + summary.stderr


def test_purge_takes_back_everything_the_bridge_wrote(sync: Sync, run_cli: Any) -> None:
    sync.cycle()
    assert sync.field("Beta", "Value rank") is not None and "mb-at-risk" in sync.labels("Overdue")
    sync.edit(op="add_label", card=sync.cards["Beta"], label="customer-x")
    sync.edit(op="add_attachment", card=sync.cards["Beta"], url="https://docs.example.com/x", name="Design")
    result = run_cli("purge", "--tracker", "t", "--config", str(sync.config_path))
    assert result.exit_code == 0, result.stderr + result.stdout
    for name in sync.cards:
        assert sync.field(name, "Value rank") is None, name
        assert sync.field(name, "Key result") is None, name
        assert not [x for x in sync.labels(name) if x.startswith("mb-")], name
    assert sync.attachments("Beta") == [("Design", "https://docs.example.com/x")]
    assert sync.attachments("Gamma") == []
    assert "customer-x" in sync.labels("Beta")
    with sync.store.read() as conn:
        assert load_written(conn, "t").rows == {}


def test_native_order_follows_the_ranks_with_the_fewest_moves(sync: Sync) -> None:
    sync.reload("native_order = true\n")
    first = sync.cycle()
    ranks = sync.ranks(first)
    rank_of = {**ranks, **{f"{n} task": r for n, r in ranks.items()}}
    order = sync.order("To Do")
    assert [rank_of[n] for n in order] == sorted(rank_of[n] for n in order), order
    assert order.index("Beta") < order.index("Delta") < order.index("Gamma") < order.index("Alpha")
    plan = first.trackers[0].plan
    assert plan is not None
    moves = [w for w in plan.writes if w.kind == "order"]
    assert 0 < len(moves) < len(order)
    sync.control.send("DELETE", "requests")
    again = sync.cycle()
    assert again.trackers[0].plan is not None and again.trackers[0].plan.writes == [], "in order: no move"
    assert sync.writes_sent() == []


def _no_retries(sync: Sync) -> None:
    """One attempt per request, so that a fault on a request is the request's last word."""
    text = sync.config_path.read_text().replace(
        "max_requests_per_second = 1000\n", "max_requests_per_second = 1000\nretries = 1\n", 1
    )
    sync.config_path.write_text(text)
    sync.config = load_config(sync.config_path, ConnectorRegistry.default())


def test_writes_whose_answer_was_lost_are_read_back_and_recorded(sync: Sync) -> None:
    """Trello applies a rank write and an OKR attachment but their answers never arrive (the connection
    closes after the request was applied). The push reads those cards back: both count done, are
    recorded in `written`, and the next cycle neither writes them again nor adds a second attachment."""
    _no_retries(sync)
    sync.control.faults(
        {"kind": "lose", "method": "PUT", "path": "/customField/", "count": 1},
        {"kind": "lose", "method": "POST", "path": "/attachments$", "count": 1},
    )
    first = sync.cycle()
    push = first.trackers[0].push
    assert push is not None and (push.failed, push.read_back, push.read_back_applied) == (0, 2, 2), push
    assert sync.control.get("faults")["injected"].get("lose") == 2
    sync.control.faults()
    sync.control.send("DELETE", "requests")
    second = sync.cycle()
    assert second.trackers[0].plan is not None and second.trackers[0].plan.writes == []
    assert sync.writes_sent() == []
    for name in LINKED:
        assert [u for n, u in sync.attachments(name) if parse_attachment({"name": n, "url": u})] == [KR_URL]


def test_bridge_sync_says_how_many_writes_were_read_back(sync: Sync, run_cli: Any) -> None:
    _no_retries(sync)
    sync.control.faults({"kind": "lose", "method": "PUT", "path": "/customField/", "count": 1},
                        {"kind": "drop", "method": "PUT", "path": "/customField/", "count": 1})  # fmt: skip
    result = run_cli("sync", "--config", str(sync.config_path))
    printed = " ".join(result.stdout.split())
    assert "1 failed (2 got no answer and were read back: 1 made, 1 not)" in printed, result.stdout
    assert "read back, the tracker does not hold it" in printed
    summary = run_cli("sync", "--config", str(sync.config_path), "--json")
    assert json.loads(summary.stdout)["trackers"][0]["writes_read_back"] == 0


def test_a_write_whose_request_never_arrived_is_read_back_as_failed_then_made(sync: Sync) -> None:
    """The connection drops before Trello applied a rank write: read back, the card does not hold it,
    so it fails (with a reason saying so) and the next cycle makes it."""
    _no_retries(sync)
    sync.control.faults({"kind": "drop", "method": "PUT", "path": "/customField/", "count": 1})
    push = sync.cycle().trackers[0].push
    assert push is not None and (push.failed, push.read_back, push.read_back_applied) == (1, 1, 0), push
    assert "the tracker does not hold it" in push.failures[0]
    sync.control.faults()
    again = sync.cycle()
    assert again.trackers[0].push is not None and again.trackers[0].push.failed == 0
    for name, rank in sync.ranks(again).items():
        assert sync.field(name, "Value rank") == rank, name


def test_copies_of_the_bridges_attachment_are_merged_and_a_users_kept(sync: Sync) -> None:
    """A card holding the bridge's OKR attachment twice (two runs racing, or a creation whose answer was
    lost and sent again): the next cycle removes the extra copy; a user's attachment to the same URL
    stays."""
    sync.cycle()
    ((name, url),) = [(n, u) for n, u in sync.attachments("Beta") if parse_attachment({"name": n, "url": u})]
    sync.edit(op="add_attachment", card=sync.cards["Beta"], url=url, name=name)
    sync.edit(op="add_attachment", card=sync.cards["Beta"], url=url, name="Our key result")
    assert len(sync.attachments("Beta")) == 3
    push = sync.cycle().trackers[0].push
    assert push is not None and push.failed == 0 and push.done == 1, push
    assert sorted(sync.attachments("Beta")) == sorted([(name, url), ("Our key result", url)])


def test_the_bridges_own_writes_seen_by_the_pull_plan_nothing_and_read_nothing(sync: Sync) -> None:
    """The pull stores what each card holds (custom fields, labels, link attachments, place), so the
    cycle after a push plans from it: the bridge's own writes and moves, seen again by the pull, plan
    nothing and no card is read back; a user's edit the pull sees is restored without a read either."""
    sync.reload("native_order = true\n")
    first = sync.cycle()
    plan = first.trackers[0].plan
    assert plan is not None and any(w.kind == "order" for w in plan.writes), "cards were moved"
    (entry,) = sync.cycle().trackers
    assert entry.pull is not None and entry.pull.items > 0, "the pull saw the bridge's writes"
    assert entry.plan is not None and entry.plan.writes == []
    assert entry.push is not None and entry.push.read == 0

    rank = sync.ranks(first)["Beta"]
    sync.edit(op="set_custom_field", card=sync.cards["Beta"], field="Value rank", value=rank + 40)
    (edited,) = sync.cycle().trackers
    assert edited.plan is not None and [(w.field, w.value) for w in edited.plan.writes] == [("rank", rank)]
    assert edited.plan.restores == edited.plan.writes and sync.field("Beta", "Value rank") == rank
    assert edited.push is not None and edited.push.read == 0


def test_a_slipped_forecast_labels_its_milestone_once_and_purge_takes_it_back(
    sync: Sync, run_cli: Any
) -> None:
    """A forecast kept ten days ago finished a day later; today's P85 is weeks past it: the milestone's
    card gets `mb-slipping` with the moves as its reason, once, and purge takes it back."""
    first = sync.cycle()
    assert first.report is not None
    by_label = {f"label:{i}": x["name"].removeprefix("M:") for i, x in sync.board.labels.items()}
    found = next(
        f for f in first.report.forecasts if f.high is not None and f.milestone.remote_id in by_label
    )
    name = by_label[found.milestone.remote_id]
    assert not any("mb-slipping" in sync.labels(n) for n in sync.cards)
    earlier = datetime.now(UTC) - timedelta(days=10)
    with sync.store.write() as conn:
        kept = replace(found, p50=earlier, high=earlier + timedelta(days=1))
        forecast_history.record(conn, [kept], now=earlier)
    second = sync.cycle()
    assert [n for n in sync.cards if "mb-slipping" in sync.labels(n)] == [name]
    assert [x["color"] for x in sync.board.labels.values() if x["name"] == "mb-slipping"] == ["purple"]
    (entry,) = second.trackers
    assert entry.plan is not None
    (write,) = [w for w in entry.plan.writes if w.field == "mb-slipping"]
    assert write.value == "purple" and write.reason.startswith("its P85 date moved ")
    assert "more than 20% of the 1 day it had left" in write.reason
    sync.control.send("DELETE", "requests")
    third = sync.cycle()
    assert third.trackers[0].plan is not None and third.trackers[0].plan.writes == []
    assert sync.writes_sent() == [], "a slip already labelled is not written again"
    result = run_cli("purge", "--tracker", "t", "--config", str(sync.config_path))
    assert result.exit_code == 0, result.stderr + result.stdout
    assert not any("mb-slipping" in sync.labels(n) for n in sync.cards)


# --- a milestone reached ----------------------------------------------------------------------------


def _reached_comments(sync: Sync, name: str) -> list[str]:
    card = sync.cards[name]
    return [
        str(a["data"].get("text"))
        for a in sync.board.actions
        if a["type"] == "commentCard"
        and (a["data"].get("card") or {}).get("id") == card
        and "[milestone-bridge:reached:" in str(a["data"].get("text"))
    ]


def test_a_milestone_reached_gets_one_comment_purged_and_again_when_reopened(
    sync: Sync, run_cli: Any
) -> None:
    first = sync.cycle()  # the first cycle: milestones done already are never announced
    assert first.announcements == []
    sync.edit(op="move_card", card=sync.cards["Beta task"], list="Done")
    sync.edit(op="move_card", card=sync.cards["Beta"], list="Done")

    reached = sync.cycle()
    (announcement,) = reached.announcements
    (comment,) = _reached_comments(sync, "Beta")
    assert comment.startswith("Milestone reached: Beta\n"), comment
    assert "Delivered: 1 task done" in comment and f"{KR_TITLE}: 0% before, 62% now" in comment
    assert comment.endswith(f"[milestone-bridge:reached:t:{announcement.subject.remote_id}:1]")

    again = sync.cycle()
    assert again.trackers[0].plan is not None and again.trackers[0].plan.writes == []
    assert len(_reached_comments(sync, "Beta")) == 1, "a second cycle posts nothing more"

    purged = run_cli("purge", "--tracker", "t", "--config", str(sync.config_path))
    assert purged.exit_code == 0, purged.stderr + purged.stdout
    assert _reached_comments(sync, "Beta") == []

    sync.edit(op="move_card", card=sync.cards["Beta"], list="In Progress")  # re-opened
    sync.cycle()
    sync.edit(op="move_card", card=sync.cards["Beta"], list="Done")
    sync.cycle()
    (second,) = _reached_comments(sync, "Beta")
    assert second.startswith("Milestone reached again: Beta (the 2nd time"), second
    assert second.endswith(f"[milestone-bridge:reached:t:{announcement.subject.remote_id}:2]")
    report = run_cli("report", "--json", "--config", str(sync.config_path))
    (row,) = json.loads(report.stdout)["milestones_reached"]
    assert row["name"] == "Beta" and row["completion"] == 2
    assert row["status"] == "announced: comment posted in t"


def test_an_opted_out_milestone_gets_no_comment(sync: Sync) -> None:
    sync.cycle()
    sync.edit(op="add_label", card=sync.cards["Gamma"], label="bridge-ignore")
    sync.edit(op="move_card", card=sync.cards["Gamma task"], list="Done")
    sync.edit(op="move_card", card=sync.cards["Gamma"], list="Done")
    result = sync.cycle()
    assert [a.headline for a in result.announcements] == ["Milestone reached: Gamma"]
    assert _reached_comments(sync, "Gamma") == []


def test_too_many_milestones_in_progress_label_the_lowest_ranked_until_one_stops(
    sync: Sync, run_cli: Any
) -> None:
    """With one milestone in progress allowed, Beta (value 50) joining Overdue (value 5) in progress puts
    `mb-too-many-in-progress` on Overdue, the lower-ranked, once and with the reason; Delta, opted out,
    gets none though it ranks below the limit too; back to one in progress, the label comes off; purge
    takes it off too."""
    sync.config_path.write_text(
        sync.config_path.read_text() + "\n[analytics]\nmax_milestones_in_progress = 1\n"
    )
    sync.config = load_config(sync.config_path, ConnectorRegistry.default())
    sync.cycle()
    assert not any("mb-too-many-in-progress" in sync.labels(n) for n in sync.cards), "one in progress"
    sync.edit(op="move_card", card=sync.cards["Beta"], list="In Progress")
    sync.edit(op="move_card", card=sync.cards["Delta"], list="In Progress")
    sync.edit(op="add_label", card=sync.cards["Delta"], label="bridge-ignore")

    dry = run_cli("sync", "--config", str(sync.config_path), "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert "mb-too-many-in-pr" in dry.stdout and "ranks 3rd of them" in dry.stdout, (
        "the label with its reason"
    )
    assert not any("mb-too-many-in-progress" in sync.labels(n) for n in sync.cards), (
        "a dry run writes nothing"
    )

    second = sync.cycle()
    assert [n for n in sync.cards if "mb-too-many-in-progress" in sync.labels(n)] == ["Overdue"]
    assert [x["color"] for x in sync.board.labels.values() if x["name"] == "mb-too-many-in-progress"] == [
        "blue"
    ]
    (entry,) = second.trackers
    assert entry.plan is not None
    (write,) = [w for w in entry.plan.writes if w.field == "mb-too-many-in-progress"]
    assert write.value == "blue"
    assert (
        write.reason
        == "work of no team has 3 milestones in progress, more than 1; this one ranks 3rd of them"
    )
    explained = run_cli("explain", "Overdue", "--config", str(sync.config_path))
    assert explained.exit_code == 0, explained.stderr
    assert "mb-too-many-in-progress" in explained.stdout and "ranks 3rd of them" in explained.stdout

    sync.control.send("DELETE", "requests")
    third = sync.cycle()
    assert third.trackers[0].plan is not None and third.trackers[0].plan.writes == []
    assert sync.writes_sent() == [], "a label in place is not written again"

    sync.edit(op="move_card", card=sync.cards["Beta"], list="To Do")
    sync.cycle()
    assert "mb-too-many-in-progress" in sync.labels("Overdue"), "Delta, opted out, still counts: 2 of 1"
    sync.edit(op="move_card", card=sync.cards["Delta"], list="To Do")
    fourth = sync.cycle()
    assert not any("mb-too-many-in-progress" in sync.labels(n) for n in sync.cards), "Overdue alone now"
    assert fourth.trackers[0].plan is not None
    assert [(w.field, w.reason) for w in fourth.trackers[0].plan.writes if w.field.startswith("mb-t")] == [
        ("mb-too-many-in-progress", "no longer applies")
    ]
    sync.edit(op="move_card", card=sync.cards["Beta"], list="In Progress")
    sync.cycle()
    assert "mb-too-many-in-progress" in sync.labels("Overdue")
    result = run_cli("purge", "--tracker", "t", "--config", str(sync.config_path))
    assert result.exit_code == 0, result.stderr + result.stdout
    assert not any("mb-too-many-in-progress" in sync.labels(n) for n in sync.cards)
    assert "bridge-ignore" in sync.labels("Delta")
