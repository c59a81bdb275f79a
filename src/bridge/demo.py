"""`bridge demo`: the whole bridge against the sandbox trackers, in one command.

It generates one organisation (six teams: two in Jira, two on Trello boards, two in Asana projects, with
objectives, milestones and four months of history in which each team has one slow kind of work), serves
it from the three sandbox emulators on 127.0.0.1, writes a config for them into a folder (credentials by
environment variable, an SQLite store beside it, write-back switched on), runs one whole cycle and prints
what the analysis found and what was written back into each tracker. With `--serve` the daemon and its
status page then run against the sandboxes until Ctrl-C.
"""

from __future__ import annotations

import os
import secrets
import shlex
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from rich.console import Console

from bridge.domain import display_name
from bridge.errors import UserError
from bridge.text import plural
from bridge.text import terminal_markup as safe
from bridge.written import COMMENT_MARKER_PREFIX

if TYPE_CHECKING:
    # The emulators load only when a demo starts (see `start_sandbox`), not with every command.
    from bridge_sandbox.server import SandboxServer

PER_TRACKER = 150
"""Work items per tracker: three milestones per team, enough finished work to judge bottlenecks."""

CONFIG_NAME = "bridge.toml"
STORE_NAME = "bridge.db"
MARKER = "# Written by `bridge demo`"

JIRA_EMAIL = "demo@example.com"
ENV = {
    "jira_email": "BRIDGE_DEMO_JIRA_EMAIL",
    "jira_token": "BRIDGE_DEMO_JIRA_TOKEN",
    "trello_key": "BRIDGE_DEMO_TRELLO_KEY",
    "trello_token": "BRIDGE_DEMO_TRELLO_TOKEN",
    "asana_token": "BRIDGE_DEMO_ASANA_TOKEN",
}
"""The variables the config names for each credential; the demo sets them in its own environment."""

ASANA_OBJECTIVE = "O3"
"""The objective kept as an Asana goal (with its key results as sub-goals); the others live in the config."""
OKR_URL = "https://okr.example.com"
TRACKERS = ("jira", "trello", "asana")
RANK_FIELD, OKR_FIELD = "Value Rank", "Key Result"
"""The Jira custom fields the demo adds for the bridge to write (Trello and Asana seeds have their own)."""


@dataclass
class Sandbox:
    """The three emulators, seeded with one organisation and served on 127.0.0.1."""

    servers: dict[str, SandboxServer]
    secrets: dict[str, str]
    """Variable name -> value, as the config names them."""
    jira_projects: list[str]
    trello_boards: dict[str, str]
    """Board name -> id."""
    asana_workspace: str
    asana_projects: dict[str, str]
    """Project name -> gid."""
    asana_key_results: dict[str, str]
    """Key result id (KR3.1) -> its goal's gid."""
    teams: list[tuple[str, str, str, str]]
    """(team, tracker, container, its slow work type)."""

    def url(self, tracker: str) -> str:
        return self.servers[tracker].base_url

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()


def start_sandbox(
    seed: int, per_tracker: int = PER_TRACKER, now: datetime | None = None, record: IO[str] | None = None
) -> Sandbox:
    """Generate the organisation, seed the emulators with it and start serving them.

    The credentials are the ones already in the environment under the config's variable names, else new
    random ones. With `record`, every request the emulators serve is appended to it as a JSON line."""
    from bridge_sandbox.asana import AsanaEmulator
    from bridge_sandbox.generate import build
    from bridge_sandbox.generate_asana import render_asana
    from bridge_sandbox.generate_jira import render_jira
    from bridge_sandbox.generate_trello import render_trello
    from bridge_sandbox.jira import JiraEmulator
    from bridge_sandbox.server import RequestLog, SandboxServer
    from bridge_sandbox.trello import TrelloEmulator

    moment = (now or datetime.now(UTC)).replace(microsecond=0) - timedelta(minutes=5)
    organisation = build(seed=seed, per_tracker=per_tracker, now=moment)
    made = {
        ENV["jira_email"]: JIRA_EMAIL,
        ENV["jira_token"]: secrets.token_urlsafe(18),
        ENV["trello_key"]: secrets.token_hex(16),
        ENV["trello_token"]: secrets.token_hex(32),
        ENV["asana_token"]: "2/" + secrets.token_hex(20),
    }
    values = {name: os.environ.get(name) or value for name, value in made.items()}
    jira_seed = render_jira(organisation)
    jira = JiraEmulator.from_search(
        jira_seed, flavour="cloud", email=JIRA_EMAIL, token=values[ENV["jira_token"]]
    )
    jira.add_custom_field(RANK_FIELD, "number")
    jira.add_custom_field(OKR_FIELD, "string")
    trello_seed = _without_key_result_cards(render_trello(organisation))
    trello = TrelloEmulator.from_export(
        trello_seed, key=values[ENV["trello_key"]], token=values[ENV["trello_token"]]
    )
    asana_seed, key_results = _one_asana_objective(render_asana(organisation))
    asana = AsanaEmulator.from_seed(asana_seed, token=values[ENV["asana_token"]])
    servers: dict[str, SandboxServer] = {}
    try:
        for name, emulator in (("jira", jira), ("trello", trello), ("asana", asana)):
            if record is not None:
                emulator.requests = RequestLog(record, label=name)
            servers[name] = SandboxServer(emulator).start()
    except BaseException:
        for server in servers.values():
            server.stop()
        raise
    teams = [(t.name, t.tracker, t.container, t.bottleneck) for t in organisation.teams]
    return Sandbox(
        servers=servers,
        secrets=values,
        jira_projects=list(dict.fromkeys(t.container for t in organisation.teams if t.tracker == "jira")),
        trello_boards={b["name"]: b["id"] for b in trello_seed["boards"]},
        asana_workspace=asana_seed["workspaces"][0]["gid"],
        asana_projects={p["name"]: p["gid"] for p in asana_seed["projects"]},
        asana_key_results=key_results,
        teams=teams,
    )


def _without_key_result_cards(seed: dict[str, Any]) -> dict[str, Any]:
    """The boards without their "Key Results" list: the demo keeps its key results in the config."""
    from bridge_sandbox.generate_trello import KEY_RESULTS

    for board in seed["boards"]:
        lists = {lst["id"] for lst in board["lists"] if lst["name"] == KEY_RESULTS}
        gone = {card["id"] for card in board["cards"] if card["idList"] in lists}
        board["lists"] = [lst for lst in board["lists"] if lst["id"] not in lists]
        board["cards"] = [card for card in board["cards"] if card["id"] not in gone]
        board["actions"] = [
            a for a in board["actions"] if a.get("data", {}).get("card", {}).get("id") not in gone
        ]
    return seed


def _one_asana_objective(seed: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The seed with one objective left as Asana goals; returns it and that objective's key-result goals."""
    from bridge_sandbox.generate import OBJECTIVES

    _, title, key_results = next(o for o in OBJECTIVES if o[0] == ASANA_OBJECTIVE)
    goals = {g["name"]: g["gid"] for g in seed["goals"]}
    objective = goals[title]
    found = {kr_id: goals[kr_title] for kr_id, kr_title, *_ in key_results}
    keep = {objective, *found.values()}
    seed["goals"] = [g for g in seed["goals"] if g["gid"] in keep]
    seed["goal_relationships"] = [r for r in seed["goal_relationships"] if r["supported_goal"]["gid"] in keep]
    return seed, found


# ---- the config --------------------------------------------------------------------------------------


def _q(value: str) -> str:
    """A TOML basic string."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _status_map() -> str:
    from bridge_sandbox.generate import STATUSES

    return "\n".join(f"{_q(name)} = {_q(category)}" for name, (_, category) in STATUSES.items())


def _okrs() -> str:
    from bridge_sandbox.generate import OBJECTIVES

    # The year's end, as the Asana goal's time period: every key result then has a status.
    lines: list[str] = ["[okrs]", f'period_end = "{datetime.now(UTC).year}-12-31"', ""]
    for objective_id, title, key_results in OBJECTIVES:
        if objective_id == ASANA_OBJECTIVE:
            continue
        lines += [
            "[[okrs.objectives]]",
            f"id = {_q(objective_id)}",
            f"title = {_q(title)}",
            f"url = {_q(f'{OKR_URL}/objectives/{objective_id}')}",
            "",
        ]
        for kr_id, kr_title, start, target, current in key_results:
            lines += [
                "[[okrs.objectives.key_results]]",
                f"id = {_q(kr_id)}",
                f"title = {_q(kr_title)}",
                f"start = {float(start)}",
                f"target = {float(target)}",
                f"current = {float(current)}",
                f"url = {_q(f'{OKR_URL}/key-results/{kr_id}')}",
                "",
            ]
    return "\n".join(lines)


def _okr_rules(name: str, key: str, sandbox: Sandbox) -> str:
    """Milestones labelled `okr-<key result>` move that key result (in the config, or an Asana goal)."""
    from bridge_sandbox.generate import OBJECTIVES

    lines: list[str] = []
    for objective_id, _, key_results in OBJECTIVES:
        for kr_id, *_ in key_results:
            target = kr_id if objective_id != ASANA_OBJECTIVE else f"asana:{sandbox.asana_key_results[kr_id]}"
            lines += [
                f"[[trackers.{name}.okr_rules]]",
                f"{key} = {_q('okr-' + kr_id)}",
                f"key_result = {_q(target)}",
                "",
            ]
    return "\n".join(lines)


def _teams_and_work_types(name: str, tracker: str, key: str, match: str) -> str:
    from bridge_sandbox.generate import TEAMS

    lines: list[str] = []
    mine = [t for t in TEAMS if t.tracker == tracker]
    for team in mine:
        lines += [
            f"[[trackers.{name}.teams]]",
            f"name = {_q(team.name)}",
            f"{key} = {_q(team.container)}",
            "",
        ]
    for work_type in dict.fromkeys(w for t in mine for w in t.work_types):
        lines += [
            f"[[trackers.{name}.work_types]]",
            f"name = {_q(work_type)}",
            f"{match} = {_q(work_type)}",
            "",
        ]
    return "\n".join(lines)


def render_config(sandbox: Sandbox, store: Path) -> str:
    """The demo's config: the three sandboxes, write-back on, credentials named by variable."""
    jira, trello, asana = (sandbox.url(t) for t in TRACKERS)
    projects = ", ".join(_q(p) for p in sandbox.jira_projects)
    boards = ", ".join(_q(b) for b in sandbox.trello_boards.values())
    asana_projects = ", ".join(_q(p) for p in sandbox.asana_projects.values())
    statuses = _status_map()
    return f"""{MARKER} against its sandbox trackers (they run only while the demo does).
# Credentials are not in this file: it names the variables that hold them.

[store]
url = {_q("sqlite:///" + store.as_posix())}

[schedule]
interval = "1m"
jitter = "5s"

[daemon]
http_host = "127.0.0.1"
http_port = 0
shutdown_timeout = "10s"

[analytics]
rank_strategy = "wsjf"
rank_scope = "portfolio"
bootstrap_runs = 1000
forecast_runs = 1000

[push]
write_budget = 5000
max_change_share = 1.0

{_okrs()}
# ---- Jira: projects PAY and MOB; milestones are epics ----------------------------------------------
[trackers.jira]
kind = "jira"
url = {_q(jira)}
flavour = "cloud"
email_env = {_q(ENV["jira_email"])}
token_env = {_q(ENV["jira_token"])}
projects = [{projects}]
jql = "labels != archived"
max_requests_per_second = 1000
lag = "1m"

[trackers.jira.status_map]
{statuses}

[trackers.jira.fields]
value = "Value"
effort = "Story Points"

[trackers.jira.write]
rank_field = {_q(RANK_FIELD)}
rank_value = "score"
okr_field = {_q(OKR_FIELD)}
okr_links = true
labels = true
native_order = true

{_teams_and_work_types("jira", "jira", "project", "label")}
{_okr_rules("jira", "label", sandbox)}
# ---- Trello: boards Design and Content; milestones are "M:" labels, each with a card ------------------
[trackers.trello]
kind = "trello"
url = {_q(trello)}
api_key_env = {_q(ENV["trello_key"])}
token_env = {_q(ENV["trello_token"])}
boards = [{boards}]
max_requests_per_second = 1000
lag = "1m"

[trackers.trello.status_map]
{statuses}

[trackers.trello.fields]
value = "Value"
effort = "Effort"

[trackers.trello.write]
rank_field = "Value rank"
rank_value = "score"
okr_field = "Key result"
okr_links = true
labels = true

{_teams_and_work_types("trello", "trello", "board", "label")}
{_okr_rules("trello", "label", sandbox)}
# ---- Asana: projects Growth and Data platform; milestones are milestone tasks; goals are OKRs ----------
[trackers.asana]
kind = "asana"
url = {_q(asana)}
token_env = {_q(ENV["asana_token"])}
workspace = {_q(sandbox.asana_workspace)}
projects = [{asana_projects}]
max_requests_per_second = 1000
lag = "1m"

[trackers.asana.status_map]
{statuses}
"completed" = "done"

[trackers.asana.fields]
value = "Customer value"
effort = "Estimate"

[trackers.asana.okrs]
goals = true

[trackers.asana.write]
rank_field = "Value rank"
rank_value = "score"
okr_field = "Key result"
okr_links = true
labels = true

{_teams_and_work_types("asana", "asana", "project", "tag")}"""


def prepare_dir(directory: Path | None) -> Path:
    """The demo's folder: a new temporary one, or DIR (which may hold an earlier demo's files only)."""
    if directory is None:
        return Path(tempfile.mkdtemp(prefix="bridge-demo-"))
    directory = directory.expanduser().resolve()
    if directory.exists() and not directory.is_dir():
        raise UserError(f"--dir {directory} is a file, not a folder")
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / CONFIG_NAME
    if config.exists() and not config.read_text(encoding="utf-8").startswith(MARKER):
        raise UserError(f"{config} exists and was not written by `bridge demo`: choose another --dir")
    store = directory / STORE_NAME
    if store.exists() and not config.exists():
        raise UserError(f"{store} exists and was not made by `bridge demo`: choose another --dir")
    for leftover in (store, store.with_name(STORE_NAME + "-wal"), store.with_name(STORE_NAME + "-shm")):
        leftover.unlink(missing_ok=True)
    return directory


# ---- the run -----------------------------------------------------------------------------------------


@dataclass
class DemoRun:
    """What one demo did: its folder, config, sandbox and the cycle's result."""

    directory: Path
    config_path: Path
    sandbox: Sandbox
    result: Any
    seconds: float
    later: LaterThatDay | None = None
    """The second cycle, after one milestone was reached and another given more work."""


LATER = timedelta(hours=2)
"""How far the sandboxes' clocks move on between the demo's two cycles."""
MIN_ADDED = 4
"""Tasks added, at least, to the milestone that is given more work (as many as it had open, if more)."""


@dataclass
class LaterThatDay:
    """The demo's second act: in the sandboxes, a team finishes a milestone's last tasks and the milestone,
    another team finds more work in one of theirs; then the bridge's next cycle."""

    reached: str
    """The milestone reached, as people read it."""
    reached_ref: Any
    finished: int
    """Its open tasks finished."""
    grown: str
    """The milestone given more work."""
    grown_ref: Any
    added: int
    result: Any


def later_that_day(
    sandbox: Sandbox, store: Any, config: Any, report: Any, now: datetime
) -> LaterThatDay | None:
    """Two hours on: the Jira team with the fewest tasks left on an epic finishes it; the other Jira team
    adds tasks to one of its epics. Then one more cycle. None when the organisation has no such epics."""
    from bridge.sync.cycle import run_cycle

    jira: Any = sandbox.servers["jira"].emulator
    candidates = sorted(
        (f for f in report.forecasts if f.milestone.source == "jira" and f.high is not None and f.remaining),
        key=lambda f: (f.remaining, f.key),
    )
    reached = candidates[0] if candidates else None
    grown = next((f for f in candidates if reached is not None and f.team != reached.team), None)
    if reached is None or grown is None:
        return None
    for server in sandbox.servers.values():
        server.emulator.clock.advance(LATER.total_seconds())
    with jira.lock:
        open_tasks = [
            issue.key
            for issue in jira.issues.values()
            if (issue.fields.get("parent") or {}).get("key") == reached.key
            and issue.fields["status"]["statusCategory"]["key"] != "done"
        ]
        for key in sorted(open_tasks):
            jira.edit({"op": "transition", "key": key, "status": "Done"})
        jira.edit({"op": "transition", "key": reached.key, "status": "Done"})
        added = max(MIN_ADDED, grown.remaining)
        for n in range(added):
            jira.edit(
                {
                    "op": "create_issue",
                    "project": grown.key.split("-")[0],
                    "summary": f"Follow-up work {n + 1}",
                    "fields": {"parent": {"key": grown.key}},
                }
            )
    result = run_cycle(store, config, now=now + LATER)
    return LaterThatDay(
        reached.name or reached.key,
        reached.milestone,
        len(open_tasks),
        grown.name or grown.key,
        grown.milestone,
        added,
        result,
    )


@contextmanager
def demo(
    directory: Path | None, *, seed: int, per_tracker: int = PER_TRACKER, record: Path | None = None
) -> Iterator[DemoRun]:
    """Start the sandbox, write the config, run one cycle; the sandbox runs until the block ends.

    With `record`, every request the sandbox trackers serve is appended to that file as a JSON line."""
    from bridge.config import load_config
    from bridge.connector import ConnectorRegistry
    from bridge.http import install_redaction
    from bridge.store import Store
    from bridge.sync.cycle import run_cycle

    started = time.monotonic()
    install_redaction()
    folder = prepare_dir(directory)
    with ExitStack() as stack:
        recording = stack.enter_context(record.open("a", encoding="utf-8")) if record else None
        sandbox = start_sandbox(seed, per_tracker, record=recording)
        stack.callback(sandbox.stop)
        os.environ.update(sandbox.secrets)
        config_path = folder / CONFIG_NAME
        config_path.write_text(render_config(sandbox, folder / STORE_NAME), encoding="utf-8")
        config_path.chmod(0o600)  # it names where the credentials come from: its owner's alone
        config = load_config(config_path, ConnectorRegistry.default())
        store = Store.open(config)
        try:
            now = datetime.now(UTC)
            result = run_cycle(store, config, now=now)
            later = None
            if result.ok and result.report is not None:
                later = later_that_day(sandbox, store, config, result.report, now)
        finally:
            store.close()
        yield DemoRun(folder, config_path, sandbox, result, time.monotonic() - started, later)


def print_run(
    run: DemoRun, console: Console, print_cycle: Callable[[Any], None], *, serving: bool = False
) -> None:
    """Everything the demo shows after its cycle: findings, writes, and where to look.

    `serving`: the sandboxes stay up after this (`--serve`), so their URLs are printed; otherwise they
    stop when the demo ends and no URL of theirs is shown."""
    report = run.result.report
    sandbox = run.sandbox
    console.print("[bold]Milestone Bridge demo[/bold]")
    console.print(f"folder: {safe(str(run.directory))}")
    lifetime = "serving until Ctrl-C" if serving else "stopped when the demo ends; --serve keeps them up"
    console.print(f"sandbox trackers (local emulators of the vendors' APIs, {lifetime}):")
    for tracker in TRACKERS:
        teams = ", ".join(
            f"{team} ({container})" for team, where, container, _ in sandbox.teams if where == tracker
        )
        where = f"{sandbox.url(tracker)}  " if serving else ""
        console.print(f"  {tracker:<7} {where}teams: {safe(teams)}")
    console.print()
    _section(console, "One cycle: pull, analyse, write back")
    print_cycle(run.result)
    if report is None:
        console.print("[red]the cycle stopped before the analysis[/red]")
        return
    _print_milestones(console, report)
    _print_okrs(console, report)
    _print_bottlenecks(console, report)
    _print_at_risk(console, report)
    _print_writes(console, run)
    _print_later(console, run, print_cycle)
    _print_where(console, run, serving=serving)


def _section(console: Console, title: str) -> None:
    console.print(f"[bold underline]{safe(title)}[/bold underline]")


TOP = 5


def _print_milestones(console: Console, report: Any) -> None:
    console.print()
    _section(console, f"Top milestones by value ({len(report.milestones)} open, ranked across all trackers)")
    for rank in report.milestones[:TOP]:
        linked = "; ".join(
            _short(report.key_result_title(kr), 50)
            for kr in sorted(report.links.get(rank.milestone, {}), key=str)
        )
        why = rank.explanation
        name = _name(rank.milestone, rank.key, rank.title)
        console.print(f"  #{rank.rank} {safe(name)} [dim]({safe(rank.team)})[/dim]")
        console.print(f"      why: {safe(why)}; key results: {safe(linked or 'none')}")


def _print_okrs(console: Console, report: Any) -> None:
    console.print()
    _section(console, "Objectives and key results")
    for objective in report.okrs:
        console.print(f"  {safe(objective.title)}: {_percent(objective.progress)}")
        for kr in objective.key_results:
            moved_by = plural(len(kr.milestones), "milestone")
            status = f", {kr.status.words}" if kr.status is not None else ""
            console.print(
                f"    - {safe(kr.title)}: {_percent(kr.progress)}{status}, moved by {moved_by}; "
                f"[dim]{safe(kr.explanation)}[/dim]"
            )
    if report.suggestions:
        console.print(
            f"  {plural(len(report.suggestions), 'suggested link')} for milestones without a key result "
            "(`bridge okr suggest`)"
        )


def _print_bottlenecks(console: Console, report: Any) -> None:
    console.print()
    found = sorted((v for v in report.bottlenecks if v.bottleneck), key=lambda v: (-v.weight, v.team))
    _section(console, f"Bottlenecks ({len(found)} of {len(report.bottlenecks)} team work types)")
    for verdict in found:
        console.print(
            f"  [bold red]{safe(verdict.team)} / {safe(verdict.work_type)}[/bold red]: {safe(verdict.reason)}"
        )
        for line in verdict.evidence:
            console.print(f"      - {safe(line)}")
    if not found:
        console.print("  none found")


def _print_at_risk(console: Console, report: Any) -> None:
    console.print()
    risky = [f for f in report.forecasts if f.at_risk]
    titles = {r.milestone: r.title for r in report.milestones}
    # of the open milestones: a milestone without tasks has no forecast, so "of N forecast" overstated N
    forecast = sum(1 for f in report.forecasts if f.p50 is not None)
    _section(
        console,
        f"At-risk milestones ({len(risky)} of {len(report.forecasts)} open, {forecast} with a forecast)",
    )
    for found in risky:
        name = _name(found.milestone, found.key, titles.get(found.milestone, ""))
        console.print(
            f"  {safe(name)} [dim]({safe(found.team)})[/dim]: due {_day(found.due)}, "
            f"{plural(found.remaining, 'open task')}, likely done {_day(found.p50)} "
            f"(85%: {_day(found.high)}), chance by due {_percent(found.chance_by_due)}"
        )
    if not risky:
        console.print("  none")


def write_counts(entry: Any) -> Counter[str]:
    """A tracker's planned writes by what they change (rank field, OKR field, link, label, order)."""
    from bridge.domain import WriteKind

    counts: Counter[str] = Counter()
    plan = entry.plan
    for write in plan.writes if plan is not None else ():
        counts[_write_kind(write, WriteKind)] += 1
    return counts


ORDER_KIND = "order"
"""A move in a tracker's own order (Jira's rank, a Trello position, an Asana section order)."""

FIELD_KINDS = {
    "rank": "rank field",
    "okr": "OKR field",
    "status_update": "key-result status update",
    "kr_status": "key-result status field",
}
"""How the demo names a write to a field the bridge manages; other fields are "<name> field"."""


def _write_kind(write: Any, kinds: Any) -> str:
    if write.kind is kinds.FIELD:
        return FIELD_KINDS.get(write.field, f"{write.field} field")
    if write.kind is kinds.LABEL_ADD:
        return f"label {write.field}"
    if write.kind is kinds.LABEL_REMOVE:
        return f"label {write.field} removed"
    if write.kind is kinds.LINK:
        return "OKR link"
    if write.kind is kinds.COMMENT:
        return "comment"
    return ORDER_KIND


def counted(count: int, kind: str) -> str:
    """`6 rank fields`, `label mb-ageing added to 1 item`: how many writes of one kind (`_write_kind`)."""
    if kind.startswith("label "):
        removed = kind.endswith(" removed")
        label = kind.removeprefix("label ").removesuffix(" removed")
        return f"label {label} {'removed from' if removed else 'added to'} {plural(count, 'item')}"
    if kind == ORDER_KIND:
        return plural(count, "move", "moves") + " in the tracker's own order"
    return plural(count, kind)


def _print_writes(console: Console, run: DemoRun) -> None:
    from bridge.domain import WriteKind

    console.print()
    _section(console, "Written back into each tracker")
    for entry in run.result.trackers:
        push = entry.push
        if push is None:
            console.print(f"  {entry.tracker}: nothing written ({safe(entry.error or entry.note or '')})")
            continue
        counts = write_counts(entry)
        parts = ", ".join(counted(n, kind) for kind, n in sorted(counts.items()))
        console.print(
            f"  {entry.tracker}: {push.done} writes done, {push.failed} failed: {safe(parts or 'none')}"
        )
        shown: set[str] = set()
        for write in push.plan.writes:
            kind = _write_kind(write, WriteKind)
            if kind in shown or len(shown) >= 4:
                continue
            shown.add(kind)
            key = push.keys.get(write.item, str(write.item))
            console.print(f"      e.g. {safe(key)}: {safe(_describe(write, WriteKind, push.keys))}")


def _print_later(console: Console, run: DemoRun, print_cycle: Callable[[Any], None]) -> None:
    """The second act: what happened in the sandboxes, then what the bridge wrote about those two."""
    from bridge.domain import WriteKind

    later = run.later
    if later is None:
        return
    hours = int(LATER.total_seconds() // 3600)
    console.print()
    _section(console, f"{hours} hours later: one milestone reached, another given more work")
    last = "its last open task" if later.finished == 1 else f"its last {later.finished} open tasks"
    console.print(f"  in Jira, {safe(later.reached)}: {last} and the epic itself were moved to Done")
    console.print(f"  in Jira, {safe(later.grown)}: {plural(later.added, 'task')} added")
    print_cycle(later.result)
    shown = 0
    for entry in later.result.trackers:
        push = entry.push
        for write in push.plan.writes if push is not None else ():
            if write.item not in (later.reached_ref, later.grown_ref) or write.kind is WriteKind.ORDER:
                continue
            name = later.reached if write.item == later.reached_ref else later.grown
            shown += 1
            if write.kind is WriteKind.COMMENT and write.value is not None:
                console.print(f"  {safe(name)}: comment posted:")
                for line in _comment_lines(str(write.value)):
                    console.print(f"      | {safe(line)}")
                continue
            console.print(f"  {safe(name)}: {safe(_describe(write, WriteKind, push.keys))}")
    if not shown:
        console.print("  nothing written on those two")


def _describe(write: Any, kinds: Any, names: Mapping[Any, str]) -> str:
    if write.kind is kinds.FIELD and write.field == "status_update":
        # the goal's status update says its status and why (the reason starts with the status)
        words = str(write.value).replace("_", " ")
        return f"status update posted: {write.reason or words}"
    if write.kind is kinds.FIELD:
        why = f" ({write.reason})" if write.reason and write.field == "rank" else ""
        field = FIELD_KINDS.get(write.field, f"{write.field} field")
        if write.value is None:
            return f"{field} cleared{why}"
        return f"{field} = {write.value}{why}"
    if write.kind is kinds.LABEL_ADD:
        return f"label {write.field} added" + (f" ({write.reason})" if write.reason else "")
    if write.kind is kinds.LABEL_REMOVE:
        return f"label {write.field} removed"
    if write.kind is kinds.LINK:
        return (
            f"link to {write.value.title} <{write.value.url}>" if write.value is not None else "link removed"
        )
    if write.kind is kinds.COMMENT:
        if write.value is None:
            return "the bridge's comment deleted"
        return "comment posted: " + " / ".join(_comment_lines(str(write.value)))
    if write.kind is not kinds.ORDER:
        return f"{write.field} = {write.value}"
    after, before = write.value
    return f"moved after {names.get(after, after)}" if after else f"moved before {names.get(before, before)}"


def _comment_lines(text: str) -> list[str]:
    """A comment's lines as the demo shows them: without its link (the sandbox's address, which stops with
    the demo) and without the bridge's marker line."""
    return [
        line
        for line in text.splitlines()
        if line.strip() and not line.startswith(("Link: ", COMMENT_MARKER_PREFIX))
    ]


def item_urls(run: DemoRun, limit: int = 2) -> dict[str, list[str]]:
    """A few API URLs per tracker of milestones the cycle ranked (they need the tracker's credentials)."""
    report = run.result.report
    urls: dict[str, list[str]] = {t: [] for t in TRACKERS}
    for rank in report.milestones if report is not None else ():
        source, remote = rank.milestone.source, rank.milestone.remote_id
        if source not in urls or len(urls[source]) >= limit:
            continue
        base = run.sandbox.url(source)
        if source == "jira":
            urls[source].append(f"{base}/rest/api/3/issue/{rank.key}")
        elif source == "trello":
            card = _trello_card(run.sandbox, remote)
            if card is not None:
                urls[source].append(f"{base}/1/cards/{card}?customFieldItems=true")
        else:
            urls[source].append(f"{base}/api/1.0/tasks/{remote}")
    return urls


def _trello_card(sandbox: Sandbox, remote_id: str) -> str | None:
    """The card of a Trello milestone (`label:<id>`, or a card's own id)."""
    if not remote_id.startswith("label:"):
        return remote_id
    label_id = remote_id.removeprefix("label:")
    emulator: Any = sandbox.servers["trello"].emulator
    for board in emulator.boards.values():
        label = board.labels.get(label_id)
        if label is None:
            continue
        name = str(label["name"]).removeprefix("M:")
        return next((card_id for card_id, c in board.cards.items() if c["name"] == name), None)
    return None


def _print_where(console: Console, run: DemoRun, *, serving: bool) -> None:
    console.print()
    _section(console, "Where to look")
    console.print(f"  config: {safe(str(run.config_path))} (no secrets: it names the variables)")
    console.print(f"  store:  {safe(str(run.directory / STORE_NAME))}")
    if serving:
        for tracker, urls in item_urls(run).items():
            console.print(f"  {tracker} items: " + safe(", ".join(urls) or "-"))
            console.print(
                f"  {tracker} whole state, no credentials: {run.sandbox.url(tracker)}/_sandbox/state"
            )
    config = _shell_quote(str(run.config_path))
    example = _shell_quote(_explain_example(run.result.report))
    console.print(f"  the report, from the store alone:  bridge report --config {config}")
    console.print(f"  the report as a web page:          bridge report --config {config} --html report.html")
    console.print(f"  why an item has its rank:           bridge explain {example} --config {config}")
    okrs = run.result.report.okrs if run.result.report is not None else ()
    key_result = next((kr.title for objective in okrs for kr in objective.key_results), None)
    if key_result is not None:
        command = f"bridge explain {_shell_quote(key_result)} --config {config}"
        console.print(f"  where a key result stands:          {safe(command)}")
    if not serving:
        console.print(
            "  the sandbox trackers' pages, the daemon and its status page: "
            f"bridge demo --serve --dir {_shell_quote(str(run.directory))}"
        )


def _explain_example(report: Any) -> str:
    """An item `bridge explain` takes: a milestone's key where it has one people use, else its title."""
    ranks = report.milestones if report is not None else ()
    for rank in ranks:
        if display_name(rank.key, rank.title).startswith(f"{rank.key} "):
            return str(rank.key)
    return str(ranks[0].title) if ranks else "ITEM"


def _shell_quote(text: str) -> str:
    return shlex.quote(text)


def _name(ref: Any, key: str, title: str) -> str:
    """How a milestone reads: its tracker, then its key and title as `bridge.domain.display_name` has it."""
    return f"[{ref.source}] {display_name(key, _short(title))}"


def _short(title: str, width: int = 60) -> str:
    return title if len(title) <= width else title[: width - 1] + "…"


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _day(value: datetime | None) -> str:
    return value.date().isoformat() if value is not None else "-"


# ---- --serve -----------------------------------------------------------------------------------------


def serve(run: DemoRun, announce: Callable[[str], None]) -> None:
    """Run the daemon and its status page against the sandbox until SIGTERM or Ctrl-C."""
    from bridge.config import load_config
    from bridge.connector import ConnectorRegistry
    from bridge.daemon.service import serve as serve_daemon
    from bridge.store import Store

    config = load_config(run.config_path, ConnectorRegistry.default())
    store = Store.open(config)
    try:
        serve_daemon(config, store, lambda _daemon, url: announce(url))
    finally:
        store.close()
