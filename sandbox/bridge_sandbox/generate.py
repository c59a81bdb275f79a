"""A deterministic generated organisation, written as one seed file per tracker in its vendor's format.

`bridge sandbox generate --seed S --issues N --out DIR` writes `jira.json` (a search response with
`expand=changelog`), `trello.json` (board exports) and `asana.json` (Asana API-shaped JSON). The same
seed, size and `--now` give the same files byte for byte.

The organisation: six teams, two per tracker, objectives with key results, milestones with values,
efforts and due dates, and tasks whose work types have cycle times that differ by team, so that each
team has one real bottleneck (a work type about 2.5 times slower than its others, which also blocks
later work). `N` is the number of work items per tracker. Histories run over the 120 days before `now`
with rework loops and waiting spells (about ten status changes an item on average), blocking
dependencies, and the awkward cases a sync must survive: unicode and very long titles, missing values
and due dates, a few very long histories (past the 100 entries Jira Cloud embeds), archived and deleted
items, and bursts of several changes within one minute.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from bridge_sandbox.themes import PLANNED, delivery

HISTORY_DAYS = 120

# Raw workflow shared by all trackers (Jira status ids, Trello list names, Asana section names).
STATUSES: dict[str, tuple[str, str]] = {
    "To Do": ("10000", "todo"),
    "In Progress": ("3", "in_progress"),
    "In Review": ("10003", "in_progress"),
    "Blocked": ("10002", "waiting"),
    "Done": ("10001", "done"),
}


@dataclass(frozen=True)
class TeamPlan:
    name: str
    tracker: str
    container: str
    """Jira project key, Trello board name or Asana project name."""
    work_types: dict[str, float]
    """Work type -> median cycle time in days."""
    bottleneck: str


TEAMS = (
    TeamPlan(
        "payments",
        "jira",
        "PAY",
        {"backend": 3.0, "frontend": 2.5, "security-review": 7.5, "qa": 2.0},
        "security-review",
    ),
    TeamPlan(
        "mobile", "jira", "MOB", {"ios": 3.0, "android": 3.0, "release": 8.0, "design-qa": 2.0}, "release"
    ),
    TeamPlan(
        "design",
        "trello",
        "Design",
        {"research": 2.0, "visual": 2.5, "prototype": 6.5, "copy": 1.5},
        "prototype",
    ),
    TeamPlan(
        "content", "trello", "Content", {"article": 2.0, "video": 3.0, "legal-review": 8.0}, "legal-review"
    ),
    TeamPlan(
        "growth",
        "asana",
        "Growth",
        {"experiment": 3.0, "analytics": 2.0, "data-request": 7.0},
        "data-request",
    ),
    TeamPlan(
        "data", "asana", "Data platform", {"pipeline": 3.0, "dashboard": 2.0, "migration": 7.5}, "migration"
    ),
)

OBJECTIVES = (
    (
        "O1",
        "Make checkout effortless",
        [
            ("KR1.1", "Raise checkout conversion from 61% to 70%", 61, 70, 64),
            ("KR1.2", "Cut failed card payments by half", 0, 50, 20),
        ],
    ),
    (
        "O2",
        "Ship a mobile experience people love",
        [
            ("KR2.1", "App store rating of 4.6 or better", 3.9, 4.6, 4.1),
            ("KR2.2", "Crash-free sessions above 99.5%", 98.0, 99.5, 98.9),
        ],
    ),
    (
        "O3",
        "Grow through content and insight",
        [
            ("KR3.1", "Double organic sign-ups", 0, 100, 35),
            ("KR3.2", "Every team decides with a live dashboard", 0, 12, 5),
        ],
    ),
)

TITLE_WORDS = (
    "checkout",
    "card",
    "wallet",
    "refund",
    "onboarding",
    "search",
    "profile",
    "invoice",
    "export",
    "sync",
    "login",
    "cart",
    "receipt",
    "banner",
    "pricing",
    "dashboard",
    "pipeline",
    "report",
    "notification",
    "consent",
)
UNICODE_TITLES = (
    "Café checkout: naïve rounding ☕",
    "Zahlung fehlgeschlagen – Übersicht",  # noqa: RUF001 - unicode on purpose
    "支付失败的重试逻辑",
    "Émoji 🚀 in receipts",
    "Ödeme sayfası düzeni",  # noqa: RUF001 - unicode on purpose
)


@dataclass
class Change:
    at: datetime
    status: str


@dataclass
class TaskPlan:
    number: int
    team: TeamPlan
    work_type: str
    title: str
    created: datetime
    changes: list[Change]
    milestone: int | None
    labels: list[str] = field(default_factory=list)
    blocked_by: list[int] = field(default_factory=list)
    archived: bool = False
    deleted: bool = False

    @property
    def status(self) -> str:
        return self.changes[-1].status if self.changes else "To Do"

    @property
    def updated(self) -> datetime:
        return self.changes[-1].at if self.changes else self.created


@dataclass
class MilestonePlan:
    number: int
    team: TeamPlan
    title: str
    value: float | None
    effort: float | None
    due: date | None
    key_result: str | None
    created: datetime
    status: str = "To Do"
    description: str = ""


@dataclass
class Organisation:
    seed: int
    now: datetime
    teams: tuple[TeamPlan, ...]
    milestones: list[MilestonePlan]
    tasks: list[TaskPlan]

    def for_tracker(self, tracker: str) -> tuple[list[MilestonePlan], list[TaskPlan]]:
        return (
            [m for m in self.milestones if m.team.tracker == tracker],
            [t for t in self.tasks if t.team.tracker == tracker],
        )


def build(seed: int, per_tracker: int, now: datetime) -> Organisation:
    """The organisation for a seed: `per_tracker` work items in each tracker."""
    rng = random.Random(seed)
    milestones: list[MilestonePlan] = []
    tasks: list[TaskPlan] = []
    key_results = [kr[0] for _, _, krs in OBJECTIVES for kr in krs]
    for team in TEAMS:
        count = per_tracker // 2 + (per_tracker % 2 if team.name in ("payments", "design", "growth") else 0)
        team_milestones = _milestones(rng, team, max(1, count // 25), now, key_results, len(milestones))
        milestones.extend(team_milestones)
        for _ in range(count):
            tasks.append(_task(rng, team, len(tasks) + 1, team_milestones, now))
    _add_dependencies(rng, tasks)
    _add_awkward_cases(rng, tasks, milestones, now)
    by_milestone: dict[int, list[TaskPlan]] = {}
    for task in tasks:
        if task.milestone is not None:
            by_milestone.setdefault(task.milestone, []).append(task)
    for milestone in milestones:
        milestone.status = _milestone_status(by_milestone.get(milestone.number, []))
    milestones.extend(_planned(now, len(milestones)))
    return Organisation(seed, now, TEAMS, milestones, tasks)


def _planned(now: datetime, offset: int) -> list[MilestonePlan]:
    """Each team's planned next deliveries (see `themes.PLANNED`): no tasks yet and no key result, so
    `bridge okr draft` has planned work to draft from. They take no draws from the seed's stream, so the
    rest of the organisation is the same with or without them."""
    plans: list[MilestonePlan] = []
    for team in TEAMS:
        for index, (title, description, value) in enumerate(PLANNED[team.name]):
            plans.append(
                MilestonePlan(
                    number=offset + len(plans) + 1,
                    team=team,
                    title=title,
                    value=value,
                    effort=(3.0, 5.0)[index % 2],
                    due=(now + timedelta(days=45 + 15 * index)).date(),
                    key_result=None,
                    created=now - timedelta(days=14 - index),
                    description=description,
                )
            )
    return plans


def _milestones(
    rng: random.Random, team: TeamPlan, count: int, now: datetime, key_results: list[str], offset: int
) -> list[MilestonePlan]:
    plans = []
    for i in range(count):
        created = now - timedelta(days=rng.uniform(60, HISTORY_DAYS + 30))
        _words(rng)  # the words the titles once had: drawn still, so a seed gives the same organisation
        title, description = delivery(team.name, i)
        plans.append(
            MilestonePlan(
                number=offset + i + 1,
                team=team,
                title=title,
                description=description,
                value=None if rng.random() < 0.08 else float(rng.choice((5, 8, 13, 20, 40, 60, 100))),
                effort=None if rng.random() < 0.1 else float(rng.choice((1, 2, 3, 5, 8, 13))),
                due=None if rng.random() < 0.15 else (now + timedelta(days=rng.uniform(-20, 90))).date(),
                key_result=None if rng.random() < 0.2 else rng.choice(key_results),
                created=created,
            )
        )
    return plans


def _words(rng: random.Random) -> str:
    return f"{rng.choice(TITLE_WORDS)} {rng.choice(TITLE_WORDS)}"


def _task(
    rng: random.Random, team: TeamPlan, number: int, milestones: list[MilestonePlan], now: datetime
) -> TaskPlan:
    work_type = rng.choice(list(team.work_types))
    created = now - timedelta(days=rng.uniform(0, HISTORY_DAYS), seconds=rng.uniform(0, 86400))
    title = f"{rng.choice(TITLE_WORDS).title()} {rng.choice(TITLE_WORDS)} ({work_type}) #{number}"
    milestone = rng.choice(milestones).number if milestones and rng.random() > 0.05 else None
    changes = _history(rng, created, team.work_types[work_type], now)
    return TaskPlan(number, team, work_type, title, created, changes, milestone, labels=[work_type])


def _history(rng: random.Random, created: datetime, median_days: float, now: datetime) -> list[Change]:
    """To Do -> In Progress -> (review / rework / blocked spells) -> Done, cut off at `now`."""
    at = created + timedelta(days=rng.expovariate(1 / 3))
    total = timedelta(days=median_days * math.exp(rng.gauss(0, 0.5)))
    reworks, blocks = _poisson(rng, 2.5), _poisson(rng, 1.5)
    steps = ["In Progress"]
    for _ in range(reworks):
        steps += ["In Review", "In Progress"]
    for _ in range(blocks):
        position = rng.randrange(1, len(steps) + 1)
        steps[position:position] = ["Blocked", "In Progress"]
    steps += ["In Review", "Done"]
    steps = [s for i, s in enumerate(steps) if i == 0 or s != steps[i - 1]]
    weights = [rng.uniform(0.5, 1.5) * (2.0 if s == "Blocked" else 1.0) for s in steps]
    scale = total / sum(weights[:-1]) if len(weights) > 1 else total
    changes = []
    for status, weight in zip(steps, weights, strict=True):
        if at >= now:
            break
        changes.append(Change(at, status))
        at += scale * weight
    return changes


def _poisson(rng: random.Random, mean: float) -> int:
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _add_dependencies(rng: random.Random, tasks: list[TaskPlan]) -> None:
    """Bottleneck work blocks later work in its team: that is what makes it a bottleneck."""
    by_team: dict[str, list[TaskPlan]] = {}
    for task in tasks:
        by_team.setdefault(task.team.name, []).append(task)
    for team_tasks in by_team.values():
        blockers = [t for t in team_tasks if t.work_type == t.team.bottleneck]
        for task in team_tasks:
            chance = 0.3 if task.work_type != task.team.bottleneck else 0.05
            if blockers and rng.random() < chance:
                blocker = rng.choice(blockers)
                if blocker.number != task.number and blocker.created < task.created:
                    task.blocked_by.append(blocker.number)


def _add_awkward_cases(
    rng: random.Random, tasks: list[TaskPlan], milestones: list[MilestonePlan], now: datetime
) -> None:
    for tracker in ("jira", "trello", "asana"):
        mine = [t for t in tasks if t.team.tracker == tracker]
        if not mine:
            continue
        for task, title in zip(
            rng.sample(mine, min(len(mine), len(UNICODE_TITLES))), UNICODE_TITLES, strict=False
        ):
            task.title = title
        rng.choice(mine).title = "Very long title " + "x" * 2000
        for task in rng.sample(mine, max(1, len(mine) // 200)):
            task.archived = True
        for task in rng.sample(mine, max(1, len(mine) // 300)):
            task.deleted = True
        for task in rng.sample(mine, max(1, len(mine) // 100)):
            _burst(rng, task, now)
    for task in [t for t in tasks if t.team.tracker == "jira"][:3]:
        _long_history(task, now)


def _burst(rng: random.Random, task: TaskPlan, now: datetime) -> None:
    """Several changes within one minute, as when someone drags a card back and forth."""
    if not task.changes:
        return
    start = min(task.changes[-1].at + timedelta(minutes=5), now - timedelta(minutes=2))
    final = task.status
    for i, status in enumerate(("In Review", "In Progress", "In Review", final)):
        task.changes.append(Change(start + timedelta(seconds=5 * (i + 1) + rng.random()), status))
    task.changes.sort(key=lambda c: c.at)


def _long_history(task: TaskPlan, now: datetime) -> None:
    """Past the 100 histories Jira Cloud embeds in a search result."""
    start = task.created + timedelta(hours=1)
    span = (now - start) / 160
    task.changes = [Change(start + span * i, ("In Progress", "In Review")[i % 2]) for i in range(150)]
    task.changes.append(Change(start + span * 151, "Done"))


def _milestone_status(tasks: list[TaskPlan]) -> str:
    live = [t for t in tasks if not t.deleted]
    if live and all(t.status == "Done" for t in live):
        return "Done"
    if any(t.status != "To Do" for t in live):
        return "In Progress"
    return "To Do"
