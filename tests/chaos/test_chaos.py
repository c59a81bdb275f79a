"""Chaos: twenty `bridge sync` cycles against Jira, Trello and Asana sandboxes while the trackers misbehave
(429 storms with and without Retry-After, 5xx bursts, answers slower than the client waits, dropped
connections, malformed items), users keep editing (creating, moving, relabelling, linking, deleting), and
the bridge is SIGKILLed at random points and run again. Then the faults stop, a few clean cycles run, and:

- the store equals each sandbox (every live item with its category, title, parent and labels; deleted
  items marked deleted; nothing extra; every status change);
- every tracker holds exactly the ranks, OKR fields, links and labels the store's analysis wants;
- no user label or link is lost or duplicated, and nothing of the bridge's is duplicated;
- a final cycle plans no write;
- no process crashed with a traceback that is not a recorded tracker failure;
- the hostile text in the titles users give new items (escape sequences, C1 controls, bidirectional
  overrides, NUL, markup) reaches no run's output raw, and lands in the store as written (NUL as U+FFFD);
- the sentinel credentials appear in no output, no report, no stored row and nothing sent to a tracker
  (other than Trello's own `key` and `token` query parameters and the auth headers).

The seed is fixed (`BRIDGE_CHAOS_SEED` overrides it and is printed); a table of faults injected and
survived, SIGKILLs, restarts and user edits is printed and written to `$BRIDGE_TEST_ARTIFACTS` (default
`<repo>/test-artifacts`) as chaos.json and chaos.txt.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bridge.analysis_window import analysis_since
from bridge.config import BridgeConfig, load_config
from bridge.connector import ConnectorRegistry
from bridge.store import Store, forecast_history
from bridge.store.models import MilestoneRow, StatusChangeRow, TaskRow
from bridge.store.snapshot import load_snapshot
from bridge.sync.cycle import CycleResult, run_cycle
from bridge.sync.desired import desired_state
from bridge.sync.plan import same
from bridge.written import LINK_ID_PREFIX, native_link
from bridge_sandbox.asana import AsanaEmulator
from bridge_sandbox.generate import STATUSES, build
from bridge_sandbox.generate_jira import render_jira
from bridge_sandbox.jira import JiraEmulator
from bridge_sandbox.server import Emulator, RequestLog, SandboxServer
from bridge_sandbox.trello import Board, TrelloEmulator
from bridge_trello.push import parse_attachment
from tests.chaos.test_hostile_text import FORBIDDEN, HIDDEN, HOSTILE
from tests.chaos.test_hostile_text import stored as stored_title
from tests.contract.test_asana_pull import asana_truth
from tests.contract.test_jira_pull import EMAIL, jira_table, jira_truth
from tests.contract.test_trello_pull import trello_truth
from tests.sandbox.conftest import Control
from tests.secrets import SecretScan
from tests.system import test_sync_asana as asana
from tests.system import test_sync_trello as trello
from tests.system.test_sync_portfolio import WRITE as JIRA_WRITE

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(400)]

ROOT = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("BRIDGE_CHAOS_SEED", "20260601"))
CYCLES = 20
KILLS = 5
"""Cycles (chosen by the seed) on which a first run is SIGKILLed part-way and the cycle run again."""
QUIET_CYCLES = 3
TRACKERS = ("jira", "trello", "asana")
PREFIX = "mb-"
TIMEOUT = 1.0
RETRIES = 3
"""Attempts per request in the chaos config; a `429-storm` outlasts them."""
"""The trackers' client timeout (seconds); a `slow` fault answers later than this."""
USER_LABELS = ("customer-x", "team-a", "later", "mb")
"""Labels users add and remove: none carries the bridge's prefix (`mb` alone does not)."""
FAULTS = ("429+retry-after", "429-storm", "5xx", "slow", "drop", "malformed")
"""The rotation: one kind a cycle, on one tracker (see `faulted`), so every tracker meets every kind."""
RUN_TIMEOUT = 90


def faulted(cycle: int) -> str:
    """The tracker a cycle's fault hits: over 18 cycles every (tracker, kind) pair comes up once."""
    return TRACKERS[(cycle // len(FAULTS) + cycle) % len(TRACKERS)]


def fault_rules(kind: str, start: int, rng: random.Random) -> list[dict[str, Any]]:
    """The rules of one cycle's fault on one tracker, firing from request `start` on."""
    if kind == "429+retry-after":
        return [{"kind": "429", "after": start, "count": 2, "retry_after": 1, "label": kind}]
    if kind == "429-storm":
        # More 429s in a row (without Retry-After) than the tracker's `retries`: the tracker fails this
        # cycle, the others go on, and the next cycle catches up.
        return [{"kind": "429", "after": start, "count": RETRIES + 1, "retry_after": None, "label": kind}]
    if kind == "5xx":
        status = rng.choice([500, 502, 503, 504])
        return [{"kind": "5xx", "after": start, "count": 2, "status": status, "label": kind}]
    if kind == "slow":
        return [{"kind": "slow", "after": start, "count": 1, "delay": TIMEOUT + 0.6, "label": kind}]
    if kind == "drop":
        return [{"kind": "drop", "after": start, "count": 2, "label": kind}]
    return [{"kind": "malformed", "after": start, "count": 1, "method": "GET", "label": kind}]


# ---- the world: three sandboxes, a config, sentinel credentials -------------------------------------


@dataclass
class World:
    tmp: Path
    config_path: Path
    config: BridgeConfig
    env: dict[str, str]
    sentinels: dict[str, str]
    servers: dict[str, SandboxServer]
    controls: dict[str, Control]
    jira: JiraEmulator
    trello: TrelloEmulator
    board: Board
    asana: AsanaEmulator
    recordings: dict[str, Path]

    @property
    def store_path(self) -> Path:
        return self.tmp / "store.db"

    def emulator(self, tracker: str) -> Emulator:
        return self.servers[tracker].emulator

    def requests(self) -> int:
        return sum(server.emulator.requests.count for server in self.servers.values())

    def writes(self) -> int:
        """Write requests the sandboxes have served (Asana's writes inside Batch requests not counted)."""
        return sum(
            count
            for server in self.servers.values()
            for route, count in server.emulator.requests.by_route().items()
            if is_write(route)
        )


READ_POSTS = ("/search/jql", "/search", "/bulkfetch", "/batch")


def is_write(route: str) -> bool:
    """Whether a sandbox route (`METHOD template`) changes the tracker."""
    method, _, template = route.partition(" ")
    if method in ("PUT", "DELETE"):
        return True
    return method == "POST" and not template.endswith(READ_POSTS)


def _tracker_options(table: str) -> str:
    return table.replace(
        "max_requests_per_second = 1000\n",
        f'max_requests_per_second = 1000\ntimeout = "{TIMEOUT}s"\ncensus_interval = "1s"\n'
        f"retries = {RETRIES}\n",
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("chaos")
    sentinels = {
        "JIRA_TOKEN": f"sentinel-{uuid.uuid4()}",
        "TRELLO_KEY": f"sentinel-{uuid.uuid4().hex}",
        "TRELLO_TOKEN": f"sentinel-{uuid.uuid4().hex}{uuid.uuid4().hex}",
        "ASANA_TOKEN": f"sentinel-{uuid.uuid4()}",
    }
    env = {"JIRA_EMAIL": EMAIL, **sentinels}
    seed = render_jira(build(seed=SEED % 1000, per_tracker=40, now=datetime(2026, 6, 1, tzinfo=UTC)))
    jira = JiraEmulator.from_search(seed, flavour="cloud", token=sentinels["JIRA_TOKEN"])
    jira.add_custom_field("Value Rank", "number")
    jira.add_custom_field("Key Result", "string")
    trello_emulator = TrelloEmulator(key=sentinels["TRELLO_KEY"], token=sentinels["TRELLO_TOKEN"])
    board = trello_emulator.create_board("Design", ("To Do", "In Progress", "Done"))
    asana_emulator = AsanaEmulator.from_seed(
        asana.asana_seed(datetime.now(UTC)), token=sentinels["ASANA_TOKEN"]
    )
    emulators: dict[str, Emulator] = {"jira": jira, "trello": trello_emulator, "asana": asana_emulator}
    recordings = {name: tmp / f"requests-{name}.jsonl" for name in TRACKERS}
    with ExitStack() as stack:
        for name, emulator in emulators.items():
            handle = stack.enter_context(recordings[name].open("w", encoding="utf-8"))
            # Trello takes its key and token in the query: only those are blanked in its recording.
            allowed = frozenset({"key", "token"}) if name == "trello" else frozenset()
            emulator.requests = RequestLog(handle, label=name, redact=allowed)
        servers = {name: stack.enter_context(SandboxServer(emulators[name])) for name in TRACKERS}
        controls = {name: Control(server.base_url) for name, server in servers.items()}
        trello.seed_board(controls["trello"], board.id)
        for label in USER_LABELS:
            if not any(x["name"] == label for x in board.labels.values()):
                controls["trello"].edit(op="create_label", board=board.id, name=label, color="green")
        jira_part = (
            jira_table(servers["jira"].base_url)
            .replace("[trackers.t", "[trackers.jira")
            .replace('"T_EMAIL"', '"JIRA_EMAIL"')
            .replace('"T_TOKEN"', '"JIRA_TOKEN"')
        )
        path = tmp / "bridge.toml"
        path.write_text(
            f'[store]\nurl = "sqlite:///{tmp / "store.db"}"\n'
            "\n[analytics]\nbootstrap_runs = 200\nforecast_runs = 200\n"
            + trello.OKRS
            + _tracker_options(jira_part)
            + JIRA_WRITE
            + _tracker_options(trello.trello_table(servers["trello"].base_url, board.id, "trello"))
            + _tracker_options(asana.asana_table(servers["asana"].base_url, "asana"))
        )
        config = load_config(path, ConnectorRegistry.default())
        yield World(tmp, path, config, env, sentinels, servers, controls, jira, trello_emulator, board,
                    asana_emulator, recordings)  # fmt: skip


# ---- what a tracker holds, read straight from the emulators -----------------------------------------


@dataclass
class Item:
    kind: str
    """`milestone` or `task`"""
    labels: list[str]
    """Every label or tag, in the tracker's order, duplicates kept."""
    links: list[str]
    """Every link the item carries: Jira remote links and Trello attachments as `global id|url`, Asana
    goal relationships as the goal's gid."""


def held(world: World, tracker: str) -> dict[str, Item]:
    """Remote id -> what the item carries, for every live item (milestones by their remote id)."""
    found: dict[str, Item] = {}
    emulator = world.emulator(tracker)
    with emulator.lock:
        if tracker == "jira":
            for issue in list(world.jira.issues.values()):
                kind = "milestone" if issue.fields["issuetype"]["name"] == "Epic" else "task"
                links = [f"{link.get('globalId')}|{link['object']['url']}" for link in issue.remote_links]
                found[issue.id] = Item(kind, list(issue.fields.get("labels") or []), links)
        elif tracker == "trello":
            board = world.board
            for card in list(board.cards.values()):
                names = [board.labels[i]["name"] for i in card["idLabels"] if i in board.labels]
                links = []
                for attachment in card["attachments"]:
                    parsed = parse_attachment({"name": attachment["name"], "url": attachment["url"]})
                    gid = parsed.global_id if parsed is not None else "user"
                    links.append(f"{gid}|{attachment['url']}")
                found[card["id"]] = Item("task", names, links)
        else:
            state = world.asana.state
            relations = list(state.relationships.values())
            for task in list(state.tasks.values()):
                kind = "milestone" if task.subtype == "milestone" else "task"
                names = [state.tags[t]["name"] for t in task.tags]
                goals = [r["supported_goal"] for r in relations if r["supporting_resource"] == task.gid]
                found[task.gid] = Item(kind, names, goals)
    return found


def user_part(tracker: str, item: Item) -> tuple[Counter[str], Counter[str]]:
    """The user's labels and links on an item (everything without the bridge's marks)."""
    labels = Counter(label for label in item.labels if not label.startswith(PREFIX))
    if tracker == "asana":
        links = Counter(item.links)
    else:
        links = Counter(link for link in item.links if not link.startswith(LINK_ID_PREFIX))
    return labels, links


# ---- users ------------------------------------------------------------------------------------------


@dataclass
class Users:
    """People editing the trackers through the sandboxes' control API, and what they expect to find."""

    world: World
    labels: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)
    """(tracker, item) -> the labels users put there (and did not take off)."""
    links: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)
    deleted: set[tuple[str, str]] = field(default_factory=set)
    edits: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(tracker, op) -> how many."""
    failures: list[str] = field(default_factory=list)
    serial: int = 0

    def start(self) -> None:
        for tracker in TRACKERS:
            for item_id, item in held(self.world, tracker).items():
                self.labels[(tracker, item_id)], self.links[(tracker, item_id)] = user_part(tracker, item)

    def edit_some(self, rng: random.Random, count: int) -> None:
        for _ in range(count):
            tracker = rng.choice(TRACKERS)
            op = rng.choice(("create", "move", "move", "label", "label", "unlabel", "link", "delete"))
            try:
                done = getattr(self, f"_{op}")(tracker, rng)
            except Exception as exc:  # an edit the sandbox refused is a bug in this test or the sandbox
                self.failures.append(f"{tracker} {op}: {exc}")
                continue
            if done:
                self.edits[(tracker, op)] += 1

    def _items(self, tracker: str, kind: str | None = None) -> list[str]:
        items = held(self.world, tracker)
        if tracker == "trello":
            milestone_cards = {
                c["id"] for c in self.world.board.cards.values() if _milestone_card(self.world, c)
            }
            return sorted(i for i in items if kind is None or (kind == "milestone") == (i in milestone_cards))
        return sorted(i for i, x in items.items() if kind is None or x.kind == kind)

    def _create(self, tracker: str, rng: random.Random) -> bool:
        self.serial += 1
        # Users write whatever they like: every other new title carries hostile text (escape sequences, C1
        # controls, bidirectional overrides, NUL, markup), which must reach no terminal and land intact.
        name = f"Chaos task {self.serial}" + (f" {HOSTILE[self.serial % 7]}" if self.serial % 2 else "")
        labels: Counter[str] = Counter()
        control = self.world.controls[tracker]
        if tracker == "jira":
            made = control.edit(op="create_issue", project=rng.choice(["PAY", "MOB"]), type="Story",
                                summary=name)  # fmt: skip
            item_id = str(made["id"])
        elif tracker == "trello":
            milestone = rng.choice(list(trello.MILESTONES))
            made = control.edit(op="create_card", board=self.world.board.id, list="To Do", name=name,
                                labels=[f"M:{milestone}"])  # fmt: skip
            item_id = str(made["id"])
            labels = Counter({f"M:{milestone}": 1})
        else:
            made = control.edit(op="create_task", project=asana.ROADMAP, section=asana.TODO, name=name)
            item_id = str(made["gid"])
        self.labels[(tracker, item_id)], self.links[(tracker, item_id)] = labels, Counter()
        return True

    def _move(self, tracker: str, rng: random.Random) -> bool:
        control = self.world.controls[tracker]
        if tracker == "jira":
            item = rng.choice(self._items(tracker))
            with self.world.jira.lock:  # the statuses the seed's workflow has
                known = sorted(s["name"] for s in self.world.jira.statuses.values() if s["name"] in STATUSES)
            control.edit(op="transition", key=item, status=rng.choice(known))
        elif tracker == "trello":
            item = rng.choice(self._items(tracker))
            control.edit(op="move_card", card=item, list=rng.choice(["To Do", "In Progress", "Done"]))
        else:
            item = rng.choice(self._items(tracker))
            control.edit(op="move_task", task=item, section=rng.choice([asana.TODO, asana.DOING, asana.DONE]))
        return True

    def _label(self, tracker: str, rng: random.Random) -> bool:
        item = rng.choice(self._items(tracker))
        label = rng.choice(USER_LABELS)
        if self.labels[(tracker, item)][label]:
            return False  # a person does not add a label an item has
        self._set_label(tracker, item, label, add=True)
        self.labels[(tracker, item)][label] += 1
        return True

    def _unlabel(self, tracker: str, rng: random.Random) -> bool:
        choices = [(key, label) for key, labels in self.labels.items() if key[0] == tracker
                   for label in labels if label in USER_LABELS and key not in self.deleted]  # fmt: skip
        if not choices:
            return False
        (_, item), label = rng.choice(sorted(choices))
        self._set_label(tracker, item, label, add=False)
        del self.labels[(tracker, item)][label]
        return True

    def _set_label(self, tracker: str, item: str, label: str, *, add: bool) -> None:
        control = self.world.controls[tracker]
        if tracker == "jira":
            control.edit(op="update", key=item, update={"labels": [{"add" if add else "remove": label}]})
        elif tracker == "trello":
            control.edit(op="add_label" if add else "remove_label", card=item, label=label)
        else:
            control.edit(op="add_tag" if add else "remove_tag", task=item, tag=label)

    def _link(self, tracker: str, rng: random.Random) -> bool:
        control = self.world.controls[tracker]
        self.serial += 1
        if tracker == "asana":
            item = rng.choice(self._items(tracker, "milestone"))
            goal = rng.choice([asana.OTHER_KR, asana.OBJECTIVE])
            if self.links[(tracker, item)][goal]:
                return False
            control.edit(op="add_supporting", goal=goal, supporting=item)
            self.links[(tracker, item)][goal] += 1
            return True
        item = rng.choice(self._items(tracker))
        url = f"https://docs.example.com/chaos/{self.serial}"
        if rng.random() < 0.25:  # the key result's own page, which the bridge may link too
            url = trello.KR_URL if tracker == "trello" else "https://okr.example.com/kr/7"
        if tracker == "jira":
            gid = f"user:chaos-{self.serial}"
            control.edit(op="add_remote_link", key=item, globalId=gid, object={"url": url, "title": "Doc"})
        else:
            gid = "user"
            control.edit(op="add_attachment", card=item, url=url, name=f"Doc {self.serial}")
        self.links[(tracker, item)][f"{gid}|{url}"] += 1
        return True

    def _delete(self, tracker: str, rng: random.Random) -> bool:
        tasks = self._items(tracker, "task")
        if len(tasks) < 5:
            return False
        item = rng.choice(tasks)
        control = self.world.controls[tracker]
        if tracker == "jira":
            control.edit(op="delete", key=item)
        elif tracker == "trello":
            control.edit(op="delete_card", card=item)
        else:
            control.edit(op="delete_task", task=item)
        self.deleted.add((tracker, item))
        return True


def _milestone_card(world: World, card: dict[str, Any]) -> bool:
    names = [world.board.labels[i]["name"] for i in card["idLabels"] if i in world.board.labels]
    return any(n.startswith("M:") for n in names) and "milestone" in names


# ---- running the bridge -----------------------------------------------------------------------------


@dataclass
class Run:
    cycle: int
    purpose: str
    """`chaos`, `killed`, `restart` or `clean`"""
    code: int | None
    stdout: str
    stderr: str
    seconds: float
    killed_at: int | None = None
    """Requests the sandboxes (all three) had served in this run when SIGKILL was sent."""
    writes_at_kill: int | None = None
    """Of those, the write requests: more than 0 means the run was killed part-way through its push."""
    requests: int = 0
    """Requests the sandboxes served in this run."""

    def summary(self) -> dict[str, Any] | None:
        try:
            found = json.loads(self.stdout)
        except ValueError:
            return None
        return found if isinstance(found, dict) else None


def run_bridge(
    world: World, cycle: int, purpose: str, *, kill_after: tuple[str, int] | None = None,
    users: Users | None = None,
    rng: random.Random | None = None,
) -> Run:  # fmt: skip
    """`bridge sync --json` as a subprocess. With `kill_after` it is SIGKILLed as soon as the sandboxes
    have served that many of its requests (`("requests", n)`), of its write requests (`("writes", n)`,
    which lands the kill inside the push), or either n requests or its first write (`("requests or first
    write", n)`); with `users`, people edit while it runs."""
    out_path = world.tmp / f"run-{cycle:02d}-{purpose}.out"
    err_path = world.tmp / f"run-{cycle:02d}-{purpose}.err"
    command = [sys.executable, "-m", "bridge.cli", "sync", "--config", str(world.config_path), "--json"]
    env = {**os.environ, **world.env}
    started = time.monotonic()
    killed_at = writes_at_kill = None
    editor = None
    if users is not None and rng is not None:
        editor = threading.Thread(target=_edit_meanwhile, args=(users, random.Random(rng.random())))
    first, first_writes = world.requests(), world.writes()
    with out_path.open("w") as out, err_path.open("w") as err:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=err)
        if editor is not None:
            editor.start()
        while process.poll() is None:
            if time.monotonic() - started > RUN_TIMEOUT:
                process.kill()
                process.wait()
                raise AssertionError(f"cycle {cycle} ({purpose}) ran for more than {RUN_TIMEOUT}s")
            if kill_after is not None:
                what, threshold = kill_after
                requests, writes = world.requests() - first, world.writes() - first_writes
                if (
                    (what == "writes" and writes >= threshold)
                    or (what.startswith("requests") and requests >= threshold)
                    or (what == "requests or first write" and writes >= 1)
                ):
                    process.send_signal(signal.SIGKILL)
                    process.wait()
                    killed_at, writes_at_kill = world.requests() - first, world.writes() - first_writes
                    break
            time.sleep(0.005)
        if editor is not None:
            editor.join()
    return Run(cycle, purpose, process.returncode, out_path.read_text(), err_path.read_text(),
               time.monotonic() - started, killed_at, writes_at_kill, world.requests() - first)  # fmt: skip


def _edit_meanwhile(users: Users, rng: random.Random) -> None:
    """People go on editing while the bridge runs."""
    time.sleep(rng.uniform(0.05, 0.8))
    users.edit_some(rng, rng.randint(1, 3))


def _collect_fired(world: World, fired: dict[str, Counter[str]]) -> None:
    """Add what the current fault rules fired to `fired` (tracker -> kind label -> count); called once
    per set of rules, just before it is replaced."""
    for tracker in TRACKERS:
        for rule in world.controls[tracker].get("faults")["rules"]:
            if rule.get("label") and rule.get("fired"):
                fired[tracker][rule["label"]] += int(rule["fired"])


def quiet(run: Run) -> bool:
    """A run that finished cleanly and planned no write anywhere."""
    summary = run.summary()
    if run.code != 0 or summary is None:
        return False
    return all(not t.get("error") and t.get("writes_planned") == 0 for t in summary.get("trackers", []))


def crashed(run: Run) -> str | None:
    """Why a run counts as a crash (not a recorded tracker failure), or None."""
    if "Traceback (most recent call last)" in run.stderr:
        return "a traceback"
    if run.code not in (0, 1):
        return f"exit code {run.code}"
    summary = run.summary()
    if summary is None:
        return "no JSON summary on stdout"
    if run.code == 1 and not any(t.get("error") for t in summary.get("trackers", [])):
        return "exit code 1 with no tracker failure recorded in the summary"
    return None


@dataclass
class Chaos:
    world: World
    users: Users
    runs: list[Run]
    faults: dict[str, Counter[str]]
    """Tracker -> fault kind -> faults fired, as the test's own rules counted them."""
    injected: dict[str, dict[str, int]]
    """Tracker -> fault kind -> faults injected, as each sandbox counted them."""
    cycle_errors: dict[str, Counter[str]]
    """Tracker -> fault kind -> cycles whose summary recorded a failure of that tracker."""
    final: CycleResult | str
    """The final in-process cycle, or why it raised."""
    final_now: datetime
    report_json: str
    seconds: float
    table: str = ""


@pytest.fixture(scope="module")
def chaos(world: World) -> Iterator[Chaos]:
    started = time.monotonic()
    rng = random.Random(SEED)
    print(f"\nchaos seed: {SEED} (set BRIDGE_CHAOS_SEED to replay another)")
    users = Users(world)
    users.start()
    runs: list[Run] = []
    fired: dict[str, Counter[str]] = {t: Counter() for t in TRACKERS}
    cycle_errors: dict[str, Counter[str]] = {t: Counter() for t in TRACKERS}
    # The first cycle (the big initial push) is always killed inside its push; the others at a random
    # request in the first half of a run as long as the last one, or at their first write if sooner.
    kill_cycles = {0, *rng.sample(range(1, CYCLES), KILLS - 1)}
    typical = 0
    for cycle in range(CYCLES):
        kind = FAULTS[cycle % len(FAULTS)]
        _collect_fired(world, fired)
        for tracker in TRACKERS:
            start = world.emulator(tracker).requests.count + rng.randint(1, 4)
            rules = fault_rules(kind, start, rng) if tracker == faulted(cycle) else []
            world.controls[tracker].faults(*rules)
        users.edit_some(rng, rng.randint(2, 5))
        if cycle in kill_cycles:
            if cycle == 0:
                kill = ("writes", rng.randint(5, 60))
            else:
                kill = ("requests or first write", rng.randint(1, max(1, typical // 2)))
            runs.append(run_bridge(world, cycle, "killed", kill_after=kill))
        during = rng.random() < 0.5
        run = run_bridge(world, cycle, "restart" if cycle in kill_cycles else "chaos",
                         users=users if during else None, rng=rng)  # fmt: skip
        runs.append(run)
        typical = run.requests
        summary = run.summary() or {}
        for entry in summary.get("trackers", []):
            if entry.get("error"):
                cycle_errors[entry["tracker"]][kind] += 1
    _collect_fired(world, fired)
    injected = {t: world.controls[t].get("faults")["injected"] for t in TRACKERS}
    for tracker in TRACKERS:
        world.controls[tracker].send("DELETE", "faults")
    for number in range(QUIET_CYCLES):
        run = run_bridge(world, CYCLES + number, "clean")
        runs.append(run)
        if quiet(run):
            break
    with pytest.MonkeyPatch.context() as patch:
        for name, value in world.env.items():
            patch.setenv(name, value)
        store = Store.open(world.config)
        now = datetime.now(UTC)
        try:
            # forced: it plans even where the stored analysis was already written back whole (a
            # quiet cycle skips the plan then), so the plan itself is seen to be empty
            final: CycleResult | str = run_cycle(store, world.config, now=now, force=True)
        except Exception as exc:  # reported by the tests that need the final cycle
            final = f"the final cycle raised {type(exc).__name__}: {exc}"
        finally:
            store.close()
    report = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "report", "--json", "--config", str(world.config_path)],
        env={**os.environ, **world.env}, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False,
    )  # fmt: skip
    report_json = report.stdout + report.stderr
    chaos = Chaos(world, users, runs, fired, injected, cycle_errors, final, now, report_json,
                  time.monotonic() - started)  # fmt: skip
    chaos.table = write_table(chaos, report.returncode)
    print(chaos.table)
    yield chaos


def write_table(chaos: Chaos, report_code: int) -> str:
    """The table of faults, kills and edits; written to the test artifacts as text and JSON."""
    lines = [f"chaos: seed {SEED}, {CYCLES} cycles, {len(chaos.runs)} bridge runs, {chaos.seconds:.1f}s"]
    head = f"{'tracker':<8}" + "".join(f"{k:>17}" for k in FAULTS) + f"{'total':>8}{'sandbox':>9}"
    lines += ["", "faults injected (cycles whose summary recorded a failure of the tracker)", head]
    for tracker in TRACKERS:
        cells = "".join(
            f"{f'{chaos.faults[tracker][k]} ({chaos.cycle_errors[tracker][k]})':>17}" for k in FAULTS
        )
        total = sum(chaos.faults[tracker].values())
        lines.append(f"{tracker:<8}{cells}{total:>8}{sum(chaos.injected[tracker].values()):>9}")
    killed = [r for r in chaos.runs if r.purpose == "killed"]
    sigkilled = [r for r in killed if r.killed_at is not None]
    restarts = [r for r in chaos.runs if r.purpose == "restart"]
    lines += [
        "",
        f"SIGKILLs: {len(sigkilled)} of {len(killed)} planned (the rest finished first); "
        + ", ".join(
            f"cycle {r.cycle} after {r.killed_at} requests ({r.writes_at_kill} writes)" for r in sigkilled
        ),
        f"killed inside a push (after at least one write): {sum(1 for r in sigkilled if r.writes_at_kill)}",
        f"restarts: {len(restarts)}, exit codes {dict(Counter(r.code for r in restarts))}",
        f"runs: {dict(Counter(r.purpose for r in chaos.runs))}, exit codes "
        f"{dict(Counter(r.code for r in chaos.runs if r.purpose != 'killed'))}",
        f"clean cycles to quiet: {sum(1 for r in chaos.runs if r.purpose == 'clean')}",
        "",
        "user edits",
        f"{'tracker':<8}"
        + "".join(f"{op:>9}" for op in ("create", "move", "label", "unlabel", "link", "delete")),
    ]
    for tracker in TRACKERS:
        lines.append(
            f"{tracker:<8}"
            + "".join(
                f"{chaos.users.edits[(tracker, op)]:>9}"
                for op in ("create", "move", "label", "unlabel", "link", "delete")
            )
        )
    lines.append(f"edits refused by a sandbox: {len(chaos.users.failures)}")
    lines.append(f"`bridge report --json` exit code: {report_code}")
    text = "\n".join(lines)
    folder = Path(os.environ.get("BRIDGE_TEST_ARTIFACTS") or ROOT / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "chaos.txt").write_text(text + "\n")
    data = {
        "seed": SEED,
        "cycles": CYCLES,
        "seconds": round(chaos.seconds, 1),
        "faults_fired": {t: dict(chaos.faults[t]) for t in TRACKERS},
        "faults_injected_by_sandbox": chaos.injected,
        "cycles_with_tracker_failure": {t: dict(chaos.cycle_errors[t]) for t in TRACKERS},
        "sigkills": [
            {"cycle": r.cycle, "at_request": r.killed_at, "writes_before": r.writes_at_kill}
            for r in sigkilled
        ],
        "kills_planned": len(killed),
        "restarts": [{"cycle": r.cycle, "code": r.code} for r in restarts],
        "runs": [
            {
                "cycle": r.cycle,
                "purpose": r.purpose,
                "code": r.code,
                "seconds": round(r.seconds, 2),
                "requests": r.requests,
            }
            for r in chaos.runs
        ],
        "user_edits": {t: {op: n for (tr, op), n in chaos.users.edits.items() if tr == t} for t in TRACKERS},
        "edit_failures": chaos.users.failures,
    }
    (folder / "chaos.json").write_text(json.dumps(data, indent=2) + "\n")
    return text


# ---- the checks -------------------------------------------------------------------------------------


def test_faults_were_injected_on_every_tracker_and_every_kind(chaos: Chaos) -> None:
    for tracker in TRACKERS:
        fired = chaos.faults[tracker]
        assert sum(fired.values()) == sum(chaos.injected[tracker].values()), tracker
        missing = [k for k in FAULTS if not fired[k]]
        assert not missing, f"{tracker}: no {missing} fault fired"
    assert any(r.killed_at is not None for r in chaos.runs), "no run was SIGKILLed"
    assert any(r.writes_at_kill for r in chaos.runs), "no run was SIGKILLed inside its push"
    storms = sum(chaos.cycle_errors[t]["429-storm"] for t in TRACKERS)
    assert storms > 0, "no 429 storm outlasted the retries, so no tracker failed and recovered"
    assert not chaos.users.failures, chaos.users.failures
    assert sum(chaos.users.edits.values()) >= CYCLES * 2


def test_no_run_crashed(chaos: Chaos) -> None:
    crashes = [
        f"cycle {r.cycle} ({r.purpose}): {why}\n{r.stderr[-3000:]}"
        for r in chaos.runs
        if r.purpose != "killed" or r.killed_at is None
        for why in [crashed(r)]
        if why is not None
    ]
    assert not crashes, "\n\n".join(crashes)
    killed = [r for r in chaos.runs if r.killed_at is not None]
    assert all(r.code == -signal.SIGKILL for r in killed)


def test_hostile_titles_reach_no_terminal_raw(chaos: Chaos) -> None:
    made = sum(n for (_, op), n in chaos.users.edits.items() if op == "create")
    assert made >= 2, "users created items with hostile titles"
    problems = []
    for run in chaos.runs:
        for stream, text in (("stdout", run.stdout), ("stderr", run.stderr)):
            found = sorted(set(FORBIDDEN.findall(text.replace("\t", ""))))
            if found or any(hidden in text for hidden in HIDDEN):
                problems.append(f"cycle {run.cycle} ({run.purpose}) {stream}: {found!r}")
    assert not problems, "\n".join(problems[:20])


def test_the_faults_are_ridden_out_and_the_last_cycles_are_quiet(chaos: Chaos) -> None:
    clean = [r for r in chaos.runs if r.purpose == "clean"]
    assert quiet(clean[-1]), clean[-1].stdout + clean[-1].stderr[-3000:]
    final = final_cycle(chaos)
    assert final.ok, [t.error for t in final.trackers]
    for entry in final.trackers:
        plan = entry.plan
        assert plan is not None, entry.tracker
        assert plan.writes == [] and plan.deferred == [], (entry.tracker, plan.writes[:10])


def final_cycle(chaos: Chaos) -> CycleResult:
    if isinstance(chaos.final, str):
        pytest.fail(chaos.final)
    return chaos.final


def stored(world: World, tracker: str) -> dict[str, Any]:
    store = Store.open(world.config)
    try:
        with store.read() as conn:
            milestones = [r for r in conn.execute(select(MilestoneRow.__table__)) if r.source == tracker]  # type: ignore[attr-defined]
            tasks = [r for r in conn.execute(select(TaskRow.__table__)) if r.source == tracker]  # type: ignore[attr-defined]
            changes = [r for r in conn.execute(select(StatusChangeRow.__table__)) if r.source == tracker]  # type: ignore[attr-defined]
    finally:
        store.close()
    return {"milestones": milestones, "tasks": tasks, "changes": changes}


def truth_of(world: World, tracker: str) -> tuple[Any, dict[str, tuple[str, list[str], str | None]]]:
    """The contract's truth, and task id -> (title, sorted labels, parent) as the tracker holds them."""
    tasks: dict[str, tuple[str, list[str], str | None]] = {}
    emulator = world.emulator(tracker)
    with emulator.lock:
        if tracker == "jira":
            truth = jira_truth(emulator)
            for issue in world.jira.issues.values():
                parent = issue.fields.get("parent")
                tasks[issue.id] = (
                    issue.fields["summary"],
                    sorted(issue.fields.get("labels") or []),
                    str(parent["id"]) if isinstance(parent, dict) and parent.get("id") else None,
                )
        elif tracker == "trello":
            truth = trello_truth(emulator)
            board = world.board
            for card in board.cards.values():
                names = [board.labels[i]["name"] for i in card["idLabels"] if i in board.labels]
                milestone = next(
                    (i for i in card["idLabels"] if board.labels[i]["name"].startswith("M:")), None
                )
                tasks[card["id"]] = (card["name"], sorted(names), f"label:{milestone}" if milestone else None)
        else:
            truth = asana_truth(emulator)
            state = world.asana.state
            for task in state.tasks.values():
                tasks[task.gid] = (task.name, sorted(state.tags[t]["name"] for t in task.tags), None)
    return truth, tasks


@pytest.mark.parametrize("tracker", TRACKERS)
def test_the_store_equals_each_sandbox(chaos: Chaos, tracker: str) -> None:
    world = chaos.world
    truth, tasks = truth_of(world, tracker)
    rows = stored(world, tracker)
    live_milestones = {r.remote_id: r.category for r in rows["milestones"] if not r.deleted}
    live_tasks = {r.remote_id: r for r in rows["tasks"] if not r.deleted}
    assert live_milestones == truth.milestones
    assert {i: r.category for i, r in live_tasks.items()} == truth.tasks
    for item_id, row in live_tasks.items():
        title, labels, parent = tasks[item_id]
        assert row.title == stored_title(title), item_id
        assert sorted(row.labels or []) == labels, item_id
        if tracker != "asana":
            assert row.milestone_id == parent, item_id
    changes = {r.remote_id for r in rows["changes"] if r.item_id in live_tasks}
    assert changes == truth.status_changes
    every = {r.remote_id: r for r in [*rows["milestones"], *rows["tasks"]]}
    for source, item_id in chaos.users.deleted:
        if source == tracker and item_id in every:
            assert every[item_id].deleted, f"{item_id} was deleted in {tracker}"


@pytest.mark.parametrize("tracker", TRACKERS)
def test_each_tracker_holds_exactly_what_the_store_wants(chaos: Chaos, tracker: str) -> None:
    world = chaos.world
    report = final_cycle(chaos).report
    assert report is not None
    config = world.config
    settings = config.analytics
    store = Store.open(config)
    try:
        snapshot = load_snapshot(
            store,
            since=analysis_since(settings, chaos.final_now),
        )
        with store.read() as conn:  # the milestones whose forecast slipped, as the final cycle found
            slipping = forecast_history.slipping(
                conn, chaos.final_now, settings.slip_window, settings.slip_share
            )
    finally:
        store.close()
    desired = desired_state(report, snapshot, tracker, config, slipping)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in world.env.items():
            patch.setenv(name, value)
        settings_t = config.tracker(tracker)
        connector = (
            ConnectorRegistry.default()
            .load(settings_t.kind)
            .open(tracker, settings_t, config.require_secrets(tracker))
        )
        try:
            states = connector.read_state(sorted(desired, key=lambda r: r.remote_id))
        finally:
            connector.close()
    problems = []
    for ref, wish in sorted(desired.items(), key=lambda pair: pair[0].remote_id):
        state = states.get(ref)
        if state is None:
            problems.append(f"{ref}: the tracker does not have it")
            continue
        for name, value in wish.fields.items():
            if not same(value, state.fields.get(name)):
                problems.append(f"{ref} {name}: holds {state.fields.get(name)!r}, wanted {value!r}")
        ours = {label for label in state.labels if label.startswith(PREFIX)}
        if ours != set(wish.labels):
            problems.append(f"{ref} labels: holds {sorted(ours)}, wanted {sorted(wish.labels)}")
        for gid, target in wish.links.items():
            if gid not in state.links or (target.url and state.links[gid].url != target.url):
                problems.append(f"{ref} link {gid}: missing")
        for gid in set(state.links) - set(wish.links):
            goal = gid.rsplit(":", 1)[-1]
            users_own = native_link(tracker, gid) and chaos.users.links.get((tracker, ref.remote_id), {}).get(
                goal
            )
            if not users_own:
                problems.append(f"{ref} link {gid}: held, not wanted")
    assert not problems, "\n".join(problems[:40])


@pytest.mark.parametrize("tracker", TRACKERS)
def test_no_user_label_or_link_is_lost_or_duplicated(chaos: Chaos, tracker: str) -> None:
    users = chaos.users
    problems = []
    for item_id, item in held(chaos.world, tracker).items():
        labels, links = user_part(tracker, item)
        expected_labels = users.labels.get((tracker, item_id), Counter())
        expected_links = users.links.get((tracker, item_id), Counter())
        if labels != expected_labels:
            problems.append(f"{item_id} labels: holds {dict(labels)}, users put {dict(expected_labels)}")
        if tracker != "asana" and links != expected_links:
            problems.append(f"{item_id} links: holds {dict(links)}, users put {dict(expected_links)}")
        if tracker == "asana":
            lost = expected_links - links
            if lost:
                problems.append(f"{item_id} goals: lost {dict(lost)}")
        dupes = [x for x, n in Counter(item.labels).items() if n > 1]
        dupes += [x for x, n in Counter(item.links).items() if n > 1]
        if dupes:
            problems.append(f"{item_id}: duplicated {dupes}")
    assert not problems, "\n".join(problems[:40])


def test_the_sentinel_credentials_leak_nowhere(chaos: Chaos) -> None:
    world = chaos.world
    scan = SecretScan(set(world.sentinels.values()))
    probe = SecretScan(scan.sentinels)
    probe.text("probe", f"x{world.sentinels['ASANA_TOKEN']}x")
    assert list(probe.found) == [world.sentinels["ASANA_TOKEN"]], "the scan finds what it looks for"
    for run in chaos.runs:
        scan.text(f"cycle {run.cycle} {run.purpose} stdout", run.stdout)
        scan.text(f"cycle {run.cycle} {run.purpose} stderr", run.stderr)
    scan.text("bridge report --json", chaos.report_json)
    tables = scan.sqlite(world.store_path)
    assert tables.get("task") and tables.get("written"), tables
    requests = 0
    for tracker, path in world.recordings.items():
        lines = path.read_text().splitlines()
        requests += len(lines)
        assert lines and all(json.loads(line)["emulator"] == tracker for line in lines[:5])
        scan.path(path)
    assert requests > 500, "the recordings hold the requests"
    trello_queries = [
        json.loads(line)["query"] for line in world.recordings["trello"].read_text().splitlines()
    ]
    assert all(q.get("key") == "***" and q.get("token") == "***" for q in trello_queries[:20])
    bodies = [json.loads(line)["body"] for line in world.recordings["jira"].read_text().splitlines()]
    assert any(body for body in bodies), "request bodies are recorded (and scanned)"
    assert not scan.found, scan.report()
