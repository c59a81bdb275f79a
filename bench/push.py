"""Write-back over a generated organisation in Jira, Trello and Asana: writes and requests per cycle.

    python bench/push.py                  # about 10,000 milestones and tasks across the three trackers
    python bench/push.py --items 1500     # a quicker run
    python bench/push.py --jira-permissions EDIT_ISSUES,BROWSE_PROJECTS   # Jira may not edit quietly
    python bench/push.py --rank-value position --tasks-inherit   # the rank field as it was before
    python bench/push.py --demo           # the demo's organisation: one epic raised to the top

One organisation from `bridge sandbox generate`'s generator, each tracker's seed served by its own
sandbox process. The config writes the rank field, the OKR field, OKR links (Jira remote links, Trello
attachments, Asana goal relationships) and the bottleneck / at-risk labels on every tracker, and native
order on those named by `--native-order` (default: all three; Jira's rank API moves up to 50 issues a
call, Trello takes one `pos` write a card, Asana one Batch action a task).
The bridge runs in this process (`run_cycle`, SQLite store), three cycles:

(a) the first cycle, which writes everything;
(b) a second cycle with nothing changed;
(c) a cycle after k random value changes (`--changes`, default 50) made through the sandboxes' control
    API as a user would (the value field of k random milestones, all trackers together).

Per tracker and in total, per cycle: the items the push read from the tracker (`items_read`: what no
pull page showed, as the pull stores what each item holds), writes done (the bridge's count: one per
field, label, link or move), writes the sandboxes saw (write requests; for Asana, write actions inside
Batch requests too), requests the sandboxes saw, and seconds. For (b) and (c), the items and values
whose desired state changed since the previous cycle (`desired_state` of both cycles' reports); for
native order, the moves made against the items outside the longest run already in order
(`longest_increasing_run`, from the order the sandbox held before the cycle), and whether each container
is in rank order afterwards.

The rank field holds what `--rank-value` says (default `score`; tasks hold none unless
`--tasks-inherit`). With positions, a value change moves its milestone in the portfolio ranking and
shifts the rank of every milestone it passes, and of their tasks when they inherit it: k = 50 changes
change the desired rank of most items. With scores, only the changed milestone's rank field changes;
its new place reaches the tracker as moves (the milestone and its tasks). (c) also gives the edits per
value change, per tracker: rank-field and other non-move writes, and moves.

Per cycle and over the bench, what people were sent (`notices`): the emails Jira would send (each watcher
of an issue, for each edit not sent quietly: the sandbox counts them) and the stories the bridge's writes
added to followed Asana tasks. By default the Jira account may do everything; `--jira-permissions`
narrows it (without Administer Projects edits cannot be silenced, without Bulk Change no bulk edit).

Targets: (b) 0 writes; (c) writes other than moves equal to the values whose desired state changed, and
moves no more than the items outside the longest increasing run; with scores, at most one write other
than moves per value change on every tracker; Jira emails 0 over the bench where the account may silence
edits.

`--demo` measures the demo instead (`bridge demo`'s organisation and config, three sandboxes in this
process): a first cycle, a quiet one, then the Jira epic ranked last is raised to the top (its value to
ten times the highest, its effort to 1, through the REST API as a user would) and the next cycle's
write requests (Asana: Batch requests carrying a write) and edits are counted per sandbox.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import requests

from bridge.analysis_window import analysis_since
from bridge.config import BridgeConfig, load_config
from bridge.connector import ConnectorRegistry
from bridge.domain import Ref, WriteKind
from bridge.store import Store, forecast_history
from bridge.store.snapshot import load_snapshot
from bridge.sync.cycle import CycleResult, run_cycle
from bridge.sync.desired import desired_state
from bridge.sync.plan import Desired, longest_increasing_run, same
from bridge_sandbox.generate import OBJECTIVES, STATUSES, TEAMS, Organisation, build
from bridge_sandbox.generate_asana import milestone_gid, render_asana
from bridge_sandbox.generate_jira import VALUE_FIELD, render_jira
from bridge_sandbox.generate_trello import KEY_RESULTS, milestone_card_id, render_trello

TRACKERS = ("jira", "trello", "asana")
VALUES = (5.0, 8.0, 13.0, 20.0, 40.0, 60.0, 100.0)
KR_URL = "https://okr.example.com/key-results/{}"

# One sandbox in its own process. Asana's write actions inside Batch requests are appended to a file (one
# line each), as the request log counts only the Batch request itself.
SERVE = """
import json, signal, sys, threading
from pathlib import Path
from bridge_sandbox.server import SandboxServer
kind, seed, actions = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
if kind == "jira":
    from bridge_sandbox.jira import JiraEmulator
    emulator = JiraEmulator.from_search(seed, flavour="cloud")
elif kind == "trello":
    from bridge_sandbox.trello import TrelloEmulator
    emulator = TrelloEmulator.from_export(seed)
else:
    from bridge_sandbox.asana import AsanaEmulator
    emulator = AsanaEmulator.from_seed(seed)
    run, log = emulator._run_action, open(actions, "a", encoding="utf-8")
    def counted(request, action):
        if isinstance(action, dict) and str(action.get("method", "")).upper() != "GET":
            log.write(f"{str(action['method']).upper()} {action.get('relative_path')}\\n")
            log.flush()
        return run(request, action)
    emulator._run_action = counted
server = SandboxServer(emulator).start()
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: stop.set())
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()  # the bench is gone
print(json.dumps({"url": server.base_url, **server.emulator.credentials()}), flush=True)
stop.wait()
server.stop()
"""

READ_ROUTES = ("search", "bulkfetch", "/batch")
"""Routes taking POST that only read (the Batch API's write actions are counted from its file)."""


class Sandbox:
    """One tracker's sandbox process and its control API."""

    def __init__(self, kind: str, seed: Path, folder: Path) -> None:
        self.kind = kind
        self.actions = folder / f"{kind}.actions"
        self.actions.touch()
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVE, kind, str(seed), str(self.actions)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.info: dict[str, str] = json.loads(self.process.stdout.readline())
        self.url = self.info["url"]
        self.http = requests.Session()

    def control(self, method: str, action: str, body: Any = None) -> Any:
        answer = self.http.request(method, f"{self.url}/_sandbox/{action}", json=body, timeout=300)
        answer.raise_for_status()
        return answer.json() if answer.content else None

    def edit(self, **change: Any) -> Any:
        return self.control("POST", "edit", change)

    def counters(self) -> tuple[int, Counter[str], int]:
        """Requests so far, write requests by route since the last call, batch write actions so far."""
        log = self.control("GET", "requests")
        self.control("DELETE", "requests")
        writes: Counter[str] = Counter()
        for entry in log["log"]:
            if entry["method"] in ("PUT", "POST", "DELETE") and not any(
                r in entry["route"] for r in READ_ROUTES
            ):
                writes[f"{entry['method']} {entry['route']}"] += 1
        actions = len(self.actions.read_text(encoding="utf-8").splitlines())
        return int(log["total"]), writes, actions

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(60)


# ---- seeds and config ----------------------------------------------------------------------------------


def write_seeds(folder: Path, organisation: Organisation) -> dict[str, Path]:
    paths = {}
    for kind, render in (("jira", render_jira), ("trello", render_trello), ("asana", render_asana)):
        paths[kind] = folder / f"{kind}.json"
        paths[kind].write_text(json.dumps(render(organisation), separators=(",", ":")), encoding="utf-8")
    return paths


def okrs_table() -> str:
    text = "[push]\nmax_change_share = 1.0\nwrite_budget = 10000000\n"
    for objective, title, key_results in OBJECTIVES:
        text += f'\n[[okrs.objectives]]\nid = "{objective}"\ntitle = "{title}"\n'
        for kr, kr_title, *_ in key_results:
            text += (
                f'\n[[okrs.objectives.key_results]]\nid = "{kr}"\ntitle = "{kr_title}"\n'
                f'url = "{KR_URL.format(kr)}"\n'
            )
    return text


def tracker_table(
    kind: str, url: str, seeds: Mapping[str, Path], native_order: bool, rank_value: str, inherit: bool
) -> str:
    statuses = "\n".join(
        f'"{status_id if kind == "jira" else name}" = "{category}"'
        for name, (status_id, category) in STATUSES.items()
    )
    text = f'\n[trackers.{kind}]\nkind = "{kind}"\nurl = "{url}"\nmax_requests_per_second = 100000\n'
    okr_rules = ""
    if kind == "jira":
        text += 'email_env = "BENCH_JIRA_EMAIL"\ntoken_env = "BENCH_JIRA_TOKEN"\nprojects = ["PAY", "MOB"]\n'
        fields = 'value = "Value"\neffort = "Story Points"\n'
        match, kind_of_rule = "project", "label"
        okr_rules = "label"
    elif kind == "trello":
        boards = json.loads(seeds["trello"].read_text(encoding="utf-8"))["boards"]
        listed = ", ".join(f'"{b["id"]}"' for b in boards)
        text += f'api_key_env = "BENCH_TRELLO_KEY"\ntoken_env = "BENCH_TRELLO_TOKEN"\nboards = [{listed}]\n'
        fields = 'value = "Value"\neffort = "Effort"\n'
        match, kind_of_rule = "board", "label"
        okr_rules = "label"
    else:
        seed = json.loads(seeds["asana"].read_text(encoding="utf-8"))
        projects = ", ".join(f'"{p["gid"]}"' for p in seed["projects"])
        workspace = seed["workspaces"][0]["gid"]
        text += f'token_env = "BENCH_ASANA_TOKEN"\nworkspace = "{workspace}"\nprojects = [{projects}]\n'
        statuses += '\n"completed" = "done"'
        fields = 'value = "Customer value"\neffort = "Estimate"\n'
        match, kind_of_rule = "project", "tag"
    text += f"\n[trackers.{kind}.status_map]\n{statuses}\n\n[trackers.{kind}.fields]\n{fields}"
    for team in TEAMS:
        if team.tracker != kind:
            continue
        text += f'\n[[trackers.{kind}.teams]]\nname = "{team.name}"\n{match} = "{team.container}"\n'
        for work_type in team.work_types:
            text += (
                f'\n[[trackers.{kind}.work_types]]\nname = "{work_type}"\n{kind_of_rule} = "{work_type}"\n'
            )
    if okr_rules:
        for _, _, key_results in OBJECTIVES:
            for kr, *_ in key_results:
                text += f'\n[[trackers.{kind}.okr_rules]]\nlabel = "okr-{kr}"\nkey_result = "{kr}"\n'
    if kind == "trello":
        text += f'\n[trackers.{kind}.okrs]\nlist = "{KEY_RESULTS}"\n'
    if kind == "asana":
        text += f"\n[trackers.{kind}.okrs]\ngoals = true\n"
    rank, okr = ("Value Rank", "Key Result") if kind == "jira" else ("Value rank", "Key result")
    text += (
        f'\n[trackers.{kind}.write]\nrank_field = "{rank}"\nokr_field = "{okr}"\nokr_links = true\n'
        f"labels = true\nnative_order = {'true' if native_order else 'false'}\n"
        f'rank_value = "{rank_value}"\ntasks_inherit = {"true" if inherit else "false"}\n'
    )
    return text


# ---- measuring -----------------------------------------------------------------------------------------


def desired_now(store: Store, config: BridgeConfig, result: CycleResult, now: datetime) -> dict[Ref, Desired]:
    """Every tracker's desired state from the cycle's report, over the snapshot the cycle analysed, with
    the milestones whose forecast slipped as the cycle found them (their slipping label is a wish too)."""
    assert result.report is not None
    settings = config.analytics
    snapshot = load_snapshot(store, since=analysis_since(settings, now))
    with store.read() as conn:
        slipping = forecast_history.slipping(conn, now, settings.slip_window, settings.slip_share)
    found: dict[Ref, Desired] = {}
    for kind in TRACKERS:
        found.update(desired_state(result.report, snapshot, kind, config, slipping))
    return found


def value_changes(before: Mapping[Ref, Desired], after: Mapping[Ref, Desired]) -> dict[str, dict[str, int]]:
    """Per tracker: items whose desired fields, labels or links changed, and how many values did (one per
    field, label or link); items whose order key changed are counted apart."""
    found = {kind: {"items": 0, "values": 0, "order_keys": 0} for kind in TRACKERS}
    for ref, wish in after.items():
        old = before.get(ref)
        if old is None:
            continue
        values = sum(
            1
            for name in set(wish.fields) | set(old.fields)
            if not same(wish.fields.get(name), old.fields.get(name))
        )
        values += len(wish.labels ^ old.labels)
        values += len(set(wish.links) ^ set(old.links))
        values += sum(1 for g in set(wish.links) & set(old.links) if not same(wish.links[g], old.links[g]))
        counts = found[ref.source]
        counts["values"] += values
        counts["items"] += 1 if values else 0
        counts["order_keys"] += 1 if wish.order != old.order else 0
    return found


def held_order(kind: str, sandbox: Sandbox) -> dict[str, tuple[str, Any]]:
    """Item (remote id) -> (container, position) as the sandbox holds them: Jira's project and Rank,
    Trello's list and `pos` (open cards; a label milestone is its own card), Asana's section and index."""
    state = sandbox.control("GET", "state")
    found: dict[str, tuple[str, Any]] = {}
    if kind == "jira":
        for issue in state["issues"]:
            if issue["rank"]:
                found[str(issue["id"])] = (issue["fields"]["project"]["key"], str(issue["rank"]))
    elif kind == "trello":
        for board in state["boards"]:
            label_ids = {label["name"]: label["id"] for label in board["labels"]}
            for card in board["cards"]:
                if card["closed"]:
                    continue
                place = (card["idList"], float(card["pos"]))
                found[card["id"]] = place
                milestone = next((n for n in card["labels"] if n.startswith("M:")), None)
                if milestone is not None and "milestone" in card["labels"]:
                    found[f"label:{label_ids[milestone]}"] = place
    else:
        for section in state["sections"]:
            for index, gid in enumerate(section["tasks"]):
                found.setdefault(str(gid), (section["gid"], index))
    return found


def expected_moves(
    kind: str, desired: Mapping[Ref, Desired], held: Mapping[str, tuple[str, Any]]
) -> dict[str, Any]:
    """Items whose place is managed, those outside the longest run already in order (as `order_writes`
    counts them: ties keep their current order), and whether the sandbox holds rank order."""
    containers: dict[str, list[tuple[Any, str, tuple[Any, ...]]]] = {}
    for ref, wish in desired.items():
        if ref.source == kind and wish.order is not None and ref.remote_id in held:
            container, position = held[ref.remote_id]
            containers.setdefault(container, []).append((position, ref.remote_id, wish.order))
    managed = outside = 0
    in_order = True
    for entries in containers.values():
        current = sorted(entries, key=lambda e: (e[0], e[1]))
        wanted = sorted(range(len(current)), key=lambda i: (current[i][2], i))
        place = {i: n for n, i in enumerate(wanted)}
        managed += len(current)
        outside += len(current) - len(longest_increasing_run([place[i] for i in range(len(current))]))
        keys = [e[2] for e in current]
        in_order = in_order and all(a <= b for a, b in pairwise(keys))
    return {"managed": managed, "outside_longest_run": outside, "in_order": in_order}


def notices(sandboxes: Mapping[str, Sandbox]) -> dict[str, int]:
    """What the bridge's writes so far sent people: Jira's notification emails (each watcher of an issue,
    for each edit not sent quietly), and the stories Asana wrote on followed tasks (each in a follower's
    inbox). Trello notifies only a card's members of what they subscribe to; the bridge's writes are
    counted as writes."""
    return {
        "jira_emails": int(sandboxes["jira"].control("GET", "state")["emails"]),
        "asana_stories": int(sandboxes["asana"].control("GET", "state")["api_stories"]),
    }


@contextmanager
def measured(sandboxes: Mapping[str, Sandbox], into: dict[str, Any]) -> Iterator[None]:
    before = {kind: s.counters() for kind, s in sandboxes.items()}
    noticed = notices(sandboxes)
    started = time.perf_counter()
    yield
    into["seconds"] = round(time.perf_counter() - started, 2)
    into["notices"] = {k: v - noticed[k] for k, v in notices(sandboxes).items()}
    for kind, sandbox in sandboxes.items():
        total, writes, actions = sandbox.counters()
        into.setdefault("sandbox", {})[kind] = {
            "requests": total - before[kind][0],
            "write_requests": sum(writes.values()),
            "batch_write_actions": actions - before[kind][2],
            "writes_by_route": dict(writes),
        }


def cycle_figures(result: CycleResult, seen: Mapping[str, Any]) -> dict[str, Any]:
    trackers: dict[str, Any] = {}
    for entry in result.trackers:
        summary = entry.summary()
        plan = entry.plan
        moves = sum(1 for w in plan.writes if w.kind is WriteKind.ORDER) if plan else 0
        slipping = sum(1 for w in plan.writes if w.kind in LABEL_KINDS and w.field == SLIPPING) if plan else 0
        sandbox = seen["sandbox"][entry.tracker]
        trackers[entry.tracker] = {
            "items_pulled": summary["items_pulled"],
            "items_read": entry.push.read if entry.push else 0,
            "writes_planned": summary["writes_planned"],
            "writes_done": summary["writes_done"],
            "writes_failed": summary["writes_failed"],
            "moves": moves,
            "slipping_labels": slipping,
            "sandbox_writes": sandbox["write_requests"] + sandbox["batch_write_actions"],
            "requests": sandbox["requests"],
            "bridge_requests": summary["requests"],
            "error": summary["error"],
            "writes_by_route": sandbox["writes_by_route"],
        }
    keys = ("items_read", "writes_planned", "writes_done", "writes_failed", "moves", "sandbox_writes")
    keys += ("requests",)
    total = {k: sum(t[k] for t in trackers.values()) for k in keys}
    return {"seconds": seen["seconds"], "total": total, "notices": seen["notices"], "trackers": trackers}


def change_values(
    organisation: Organisation, sandboxes: Mapping[str, Sandbox], k: int, rng: random.Random
) -> list[dict[str, Any]]:
    """Set the value field of k random milestones to another value, through each sandbox's control API."""
    jira_keys: dict[int, str] = {}
    counters: dict[str, int] = {}
    for milestone in organisation.for_tracker("jira")[0]:  # epics are numbered first in each project
        project = milestone.team.container
        counters[project] = counters.get(project, 0) + 1
        jira_keys[milestone.number] = f"{project}-{counters[project]}"
    done = []
    for milestone in rng.sample(organisation.milestones, min(k, len(organisation.milestones))):
        value = rng.choice([v for v in VALUES if v != milestone.value])
        tracker = milestone.team.tracker
        if tracker == "jira":
            sandboxes["jira"].edit(op="update", key=jira_keys[milestone.number], fields={VALUE_FIELD: value})
        elif tracker == "trello":
            card = milestone_card_id(milestone)
            sandboxes["trello"].edit(op="set_custom_field", card=card, field="Value", value=value)
        else:
            task = milestone_gid(milestone.number)
            sandboxes["asana"].edit(op="set_custom_field", task=task, field="Customer value", value=value)
        done.append({"tracker": tracker, "milestone": milestone.title, "from": milestone.value, "to": value})
        milestone.value = value
    return done


LABEL_KINDS = (WriteKind.LABEL_ADD, WriteKind.LABEL_REMOVE)
SLIPPING = "mb-slipping"
"""The slipping label as the bench's config names it (the default prefix and name)."""


def per_value_change(figures: Mapping[str, Any], edits: list[dict[str, Any]]) -> dict[str, Any]:
    """Edits per value change, per tracker: a change in one tracker costs writes only there."""
    found: dict[str, Any] = {}
    for kind, entry in figures["trackers"].items():
        count = sum(1 for e in edits if e["tracker"] == kind)
        # slipping labels are the forecasts' word on the milestones the changes pushed later, not the
        # changes' own writes: counted apart
        other = entry["writes_done"] - entry["moves"] - entry["slipping_labels"]
        found[kind] = {
            "value_changes": count,
            "edits": entry["writes_done"],
            "writes_other_than_moves": other,
            "moves": entry["moves"],
            "slipping_labels": entry["slipping_labels"],
            "edits_per_change": round(entry["writes_done"] / count, 1) if count else None,
            "writes_other_than_moves_per_change": round(other / count, 2) if count else None,
        }
    total = sum(t["writes_done"] for t in figures["trackers"].values())
    found["all"] = {"value_changes": len(edits), "edits": total,
                    "edits_per_change": round(total / len(edits), 1) if edits else None}  # fmt: skip
    return found


def run(
    items: int,
    seed: int,
    changes: int,
    native: set[str],
    jira_permissions: list[str] | None = None,
    rank_value: str = "score",
    inherit: bool = False,
) -> dict[str, Any]:
    per_tracker = max(30, round(items / len(TRACKERS) / 1.04))  # a milestone for about 25 tasks
    now = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        folder = Path(tmp)
        started = time.perf_counter()
        organisation = build(seed, per_tracker, now)
        seeds = write_seeds(folder, organisation)
        generate_seconds = time.perf_counter() - started
        started = time.perf_counter()
        sandboxes: dict[str, Sandbox] = {}
        for kind in TRACKERS:
            sandboxes[kind] = Sandbox(kind, seeds[kind], folder)
            stack.callback(sandboxes[kind].stop)
        serve_seconds = time.perf_counter() - started
        sandboxes["jira"].edit(op="add_custom_field", name="Value Rank", kind="number")
        sandboxes["jira"].edit(op="add_custom_field", name="Key Result", kind="string")
        if jira_permissions is not None:
            sandboxes["jira"].edit(op="set_permissions", permissions=jira_permissions)
        info = {kind: s.info for kind, s in sandboxes.items()}
        os.environ.update(
            BENCH_JIRA_EMAIL=info["jira"]["email"],
            BENCH_JIRA_TOKEN=info["jira"]["token"],
            BENCH_TRELLO_KEY=info["trello"]["key"],
            BENCH_TRELLO_TOKEN=info["trello"]["token"],
            BENCH_ASANA_TOKEN=info["asana"]["token"],
        )
        path = folder / "bridge.toml"
        path.write_text(
            f'[store]\nurl = "sqlite:///{folder / "bench.db"}"\n\n'
            + okrs_table()
            + "".join(
                tracker_table(k, sandboxes[k].url, seeds, k in native, rank_value, inherit) for k in TRACKERS
            ),
            encoding="utf-8",
        )
        subprocess.run([sys.executable, "-m", "bridge.cli", "db", "upgrade", "--config", str(path)],
                       check=True, capture_output=True)  # fmt: skip
        config = load_config(path, ConnectorRegistry.default())
        store = Store.open(config)
        stack.callback(store.close)

        phases: dict[str, Any] = {}
        desired: dict[str, dict[Ref, Desired]] = {}
        edits: list[dict[str, Any]] = []
        for phase in ("first", "no_change", "after_changes"):
            if phase == "after_changes":
                started = time.perf_counter()
                edits = change_values(organisation, sandboxes, changes, random.Random(seed))
                edit_seconds = time.perf_counter() - started
            held = {kind: held_order(kind, sandboxes[kind]) for kind in sorted(native)}
            seen: dict[str, Any] = {}
            cycle_now = datetime.now(UTC)
            with measured(sandboxes, seen):
                result = run_cycle(store, config, now=cycle_now)
            figures = cycle_figures(result, seen)
            desired[phase] = desired_now(store, config, result, cycle_now)
            figures["items"] = {k: sum(1 for r in desired[phase] if r.source == k) for k in TRACKERS}
            for kind in sorted(native):
                expected = expected_moves(kind, desired[phase], held[kind])
                after = expected_moves(kind, desired[phase], held_order(kind, sandboxes[kind]))
                figures["trackers"][kind]["native_order"] = {
                    "moves": figures["trackers"][kind]["moves"],
                    "items_managed": expected["managed"],
                    "items_outside_longest_run": expected["outside_longest_run"],
                    "in_order_after": after["in_order"],
                }
            if phase != "first":
                previous = "first" if phase == "no_change" else "no_change"
                changed = value_changes(desired[previous], desired[phase])
                for kind, counts in changed.items():
                    entry = figures["trackers"][kind]
                    entry["desired_changed"] = counts
                    entry["writes_other_than_moves"] = entry["writes_done"] - entry["moves"]
                figures["total"]["desired_items_changed"] = sum(c["items"] for c in changed.values())
                figures["total"]["desired_values_changed"] = sum(c["values"] for c in changed.values())
            if phase == "after_changes":
                figures["value_edits"] = {"count": len(edits), "seconds": round(edit_seconds, 2)}
                figures["per_value_change"] = per_value_change(figures, edits)
            phases[phase] = figures
        total_items = sum(phases["first"]["items"].values())

    second = phases["no_change"]["total"]
    third = phases["after_changes"]
    other = third["total"]["writes_done"] - third["total"]["moves"]
    meets = {
        "no_change_writes_0": second["writes_done"] == 0 and second["sandbox_writes"] == 0,
        "changes_writes_equal_values_changed": other == third["total"]["desired_values_changed"],
        "no_failures": all(p["total"]["writes_failed"] == 0 for p in phases.values()),
    }
    if rank_value == "score":
        meets["at_most_one_write_other_than_moves_per_change"] = all(
            t["writes_other_than_moves"] <= t["value_changes"]
            for kind, t in third["per_value_change"].items()
            if kind != "all"
        )
    if native:
        orders = [
            t["native_order"] for p in phases.values() for t in p["trackers"].values() if "native_order" in t
        ]
        meets["moves_at_most_outside_longest_run"] = all(
            o["moves"] <= o["items_outside_longest_run"] for o in orders
        )
        meets["in_order_after_each_cycle"] = all(o["in_order_after"] for o in orders)
    emails = sum(p["notices"]["jira_emails"] for p in phases.values())
    quiet = jira_permissions is None or bool({"ADMINISTER", "ADMINISTER_PROJECTS"} & set(jira_permissions))
    if quiet:
        meets["jira_emails_0"] = emails == 0
    return {
        "benchmark": "push",
        "items": total_items,
        "per_tracker_generated": per_tracker,
        "native_order": sorted(native),
        "rank_value": rank_value,
        "tasks_inherit": inherit,
        "value_changes": changes,
        "setup_seconds": {"generate": round(generate_seconds, 2), "serve": round(serve_seconds, 2)},
        "cycles": phases,
        "changed_milestones": edits,
        "jira_permissions": "all" if jira_permissions is None else jira_permissions,
        "notices": {
            "jira_emails": emails,
            "asana_stories_on_followed_tasks": sum(p["notices"]["asana_stories"] for p in phases.values()),
        },
        "targets": {
            "no_change_writes": 0,
            "after_changes_writes_other_than_moves": "= values whose desired state changed",
            "after_changes_moves": "<= items outside the longest increasing run",
            "jira_emails": "0 where the account may suppress them (Administer Projects)",
        },
        "meets_targets": meets,
        "all_targets_met": all(meets.values()),
    }


# ---- the demo: one epic raised to the top --------------------------------------------------------------


def demo_raise(seed: int, rank_value: str, inherit: bool) -> dict[str, Any]:
    """Write requests and edits of the sync after raising the demo's last-ranked Jira epic to the top."""
    from bridge.demo import CONFIG_NAME, STORE_NAME, render_config, start_sandbox
    from bridge_sandbox.generate_jira import EFFORT_FIELD

    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        folder = Path(tmp)
        sandbox = start_sandbox(seed)
        stack.callback(sandbox.stop)
        os.environ.update(sandbox.secrets)
        asana_writes = _count_asana_writes(sandbox.servers["asana"].emulator)
        text = render_config(sandbox, folder / STORE_NAME).replace(
            'rank_value = "score"\n',
            f'rank_value = "{rank_value}"\ntasks_inherit = {"true" if inherit else "false"}\n',
        )
        path = folder / CONFIG_NAME
        path.write_text(text, encoding="utf-8")
        config = load_config(path, ConnectorRegistry.default())
        store = Store.open(config)
        stack.callback(store.close)
        cycles = [run_cycle(store, config, now=datetime.now(UTC)) for _ in range(2)]
        report = cycles[-1].report
        assert report is not None
        jira = [r for r in report.milestones if r.milestone.source == "jira" and r.score is not None]
        top = max(r.score or 0.0 for r in report.milestones)
        epic = jira[-1]
        emulator = sandbox.servers["jira"].emulator
        answer = requests.put(
            f"{sandbox.url('jira')}/rest/api/2/issue/{epic.key}",
            json={"fields": {VALUE_FIELD: round(top * 10 + 1), EFFORT_FIELD: 1}},
            auth=(emulator.email, emulator.token),
            timeout=30,
        )
        answer.raise_for_status()
        marks = {name: server.emulator.requests.count for name, server in sandbox.servers.items()}
        asana_writes.clear()
        result = run_cycle(store, config, now=datetime.now(UTC))
        assert result.report is not None
        trackers: dict[str, Any] = {}
        for entry in result.trackers:
            server = sandbox.servers[entry.tracker]
            log = [e for e in server.emulator.requests.snapshot()["log"] if e["n"] > marks[entry.tracker]]
            direct = Counter(
                f"{e['method']} {e['route']}"
                for e in log
                if e["method"] in ("PUT", "POST", "DELETE") and not any(r in e["route"] for r in READ_ROUTES)
            )
            batches = len(asana_writes) if entry.tracker == "asana" else 0
            summary = entry.summary()
            plan = entry.plan
            trackers[entry.tracker] = {
                "write_requests": sum(direct.values()) + batches,
                "edits": summary["writes_done"],
                "moves": sum(1 for w in plan.writes if w.kind is WriteKind.ORDER) if plan else 0,
                "by_route": dict(direct) | ({"POST /batch (carrying writes)": batches} if batches else {}),
            }
    return {
        "benchmark": "push --demo",
        "rank_value": rank_value,
        "tasks_inherit": inherit,
        "raised": {"epic": epic.key, "rank_before": epic.rank, "rank_after": result.report.milestones[0].key},
        "write_requests": sum(t["write_requests"] for t in trackers.values()),
        "edits": sum(t["edits"] for t in trackers.values()),
        "trackers": trackers,
    }


def _count_asana_writes(emulator: Any) -> set[int]:
    """The numbers of the Batch requests that carry a write action, as the emulator runs them."""
    found: set[int] = set()
    run_action = emulator._run_action

    def counted(request: Any, action: Any) -> Any:
        if isinstance(action, dict) and str(action.get("method", "")).upper() != "GET":
            found.add(request.number)
        return run_action(request, action)

    emulator._run_action = counted
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--items", type=int, default=10_000, help="milestones and tasks, all trackers (about)"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--changes", type=int, default=50, help="random value changes before cycle (c)")
    parser.add_argument(
        "--native-order",
        default="jira,trello,asana",
        help="trackers whose native order is managed: jira,trello,asana or ''",
    )
    parser.add_argument(
        "--jira-permissions",
        default=None,
        help="the Jira account's permissions, comma-separated (default: all); e.g. EDIT_ISSUES for an "
        "account that may neither silence edits nor bulk edit",
    )
    parser.add_argument("--rank-value", choices=("score", "position", "band"), default="score")
    parser.add_argument("--tasks-inherit", action="store_true", help="tasks hold their milestone's rank")
    parser.add_argument("--demo", action="store_true", help="measure the demo: one epic raised to the top")
    args = parser.parse_args()
    permissions = (
        None if args.jira_permissions is None else [p for p in args.jira_permissions.split(",") if p]
    )
    native = {t.strip() for t in args.native_order.split(",") if t.strip()}
    if native - set(TRACKERS):
        parser.error(f"--native-order: unknown trackers {sorted(native - set(TRACKERS))}")
    if args.demo:
        found = demo_raise(args.seed, args.rank_value, args.tasks_inherit)
    else:
        found = run(
            args.items, args.seed, args.changes, native, permissions, args.rank_value, args.tasks_inherit
        )
    json.dump(found, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
