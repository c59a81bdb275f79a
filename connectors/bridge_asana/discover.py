"""What an Asana workspace has that a mapping refers to: the workspace and its projects, each project's
sections (the raw statuses), task subtypes, tags, custom fields (gid, name, type) and what the `[okrs]`
part needs (goals and time periods).

Every listing goes through the Batch API, ten to a request, with its pages followed. With a config, the
configured workspace and projects are described; from flags alone (no config yet), every workspace the
token sees and their projects, the sections and fields of at most `DETAILED_PROJECTS` of them.
Goals, time periods and workspace custom fields need paid plans or scopes some tokens lack: a refusal
there is reported, not fatal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bridge.connector import DiscoveredField, Discovery
from bridge_asana.config import AsanaTrackerConfig
from bridge_asana.mapping import COMPLETED, record_gid
from bridge_asana.session import PAGE_LIMIT, Action, AsanaSession

TASK_SUBTYPES = ("default_task", "milestone", "approval")
"""Every `resource_subtype` an Asana task can have (asana.yaml, TaskBase)."""
DETAILED_PROJECTS = 50
"""From flags alone: sections and fields of this many projects at most (a config names the rest)."""
SHOWN_OPTIONS = 8
OPTIONAL = (402, 403, 404)
"""Answers meaning "this workspace or token has no such feature" for goals, time periods, field lists."""
PROJECT_FIELDS = ("name", "archived")
FIELD_FIELDS = ("name", "type", "resource_subtype", "precision", "enum_options.name", "enum_options.enabled")
SETTING_FIELDS = tuple(f"custom_field.{name}" for name in FIELD_FIELDS)
PERIOD_FIELDS = ("display_name", "period", "start_on", "end_on")
GOAL_FIELDS = ("name", "time_period.display_name")
SAMPLE_FIELDS = ("resource_subtype", "num_subtasks")


@dataclass
class _Workspace:
    gid: str
    name: str
    projects: list[tuple[str, str]] = field(default_factory=list)
    """(gid, name) of the projects described, archived ones marked."""
    missing: bool = False
    """A configured workspace the token cannot read."""


def discover(session: AsanaSession, config: AsanaTrackerConfig) -> Discovery:
    # Opened from flags, the config is not validated and has no workspace and no projects.
    configured_workspace = getattr(config, "workspace", None)
    configured_projects = list(getattr(config, "projects", None) or [])
    extra: dict[str, Any] = {}

    workspaces = _workspaces(session, configured_workspace)
    listings = _workspace_listings(session, workspaces, list_projects=not configured_projects)
    if configured_projects:
        workspaces[0].projects = _configured_projects(session, configured_projects)
    projects = [project for workspace in workspaces for project in workspace.projects]
    detailed = projects if configured_projects else projects[:DETAILED_PROJECTS]
    if len(detailed) < len(projects):
        extra["projects_detailed"] = (
            f"sections and fields of the first {len(detailed)} of {len(projects)} projects; "
            "name projects in the config to see theirs"
        )
    statuses, fields = _project_details(session, detailed)
    statuses.append((COMPLETED, "any task marked complete, whatever its section"))
    for workspace in workspaces:
        for custom in listings[workspace.gid].custom_fields or []:
            gid = record_gid(custom)
            if gid and gid not in fields:
                fields[gid] = _field(custom, on_project=False)
    samples = session.collect(
        [Action("/tasks", {"project": gid}, SAMPLE_FIELDS, limit=PAGE_LIMIT) for gid, _ in detailed],
        absent=(403, 404),
        follow=False,
    )
    subtypes, sampled = _sample(samples)
    if sampled:
        extra["task_subtypes_sampled"] = sampled
    extra.update(_okr_notes(workspaces, listings, several_workspaces=len(workspaces) > 1))

    return Discovery(
        containers=_containers(workspaces),
        statuses=statuses,
        item_types=sorted({*TASK_SUBTYPES, *subtypes}, key=_subtype_order),
        labels=sorted(
            {
                str(tag.get("name"))
                for workspace in workspaces
                for tag in listings[workspace.gid].tags or []
                if isinstance(tag, dict) and tag.get("name")
            }
        ),
        fields=sorted(fields.values(), key=lambda f: (f.name.casefold(), f.id)),
        extra=extra,
    )


def _project_details(
    session: AsanaSession, projects: Sequence[tuple[str, str]]
) -> tuple[list[tuple[str, str]], dict[str, DiscoveredField]]:
    """The projects' sections (as statuses, named with their project when there are several) and the
    custom fields set on them, by gid."""
    per_project = session.collect(
        [
            action
            for gid, _ in projects
            for action in (
                Action(f"/projects/{gid}/sections", fields=("name",), limit=PAGE_LIMIT),
                Action(f"/projects/{gid}/custom_field_settings", fields=SETTING_FIELDS, limit=PAGE_LIMIT),
            )
        ],
        absent=(403, 404),
    )
    several = len(projects) > 1
    statuses: list[tuple[str, str]] = []
    fields: dict[str, DiscoveredField] = {}
    for index, (_, project_name) in enumerate(projects):
        sections, settings = per_project[2 * index] or [], per_project[2 * index + 1] or []
        for section in sections:
            if record_gid(section):
                name = str(section.get("name") or "")
                statuses.append((str(section["gid"]), f"{project_name} / {name}" if several else name))
        for setting in settings:
            custom = setting.get("custom_field") if isinstance(setting, dict) else None
            if isinstance(custom, dict) and record_gid(custom):
                fields.setdefault(str(custom["gid"]), _field(custom, on_project=True))
    return statuses, fields


# ---- workspaces and projects --------------------------------------------------------------------------


def _workspaces(session: AsanaSession, configured: str | None) -> list[_Workspace]:
    if configured:
        (found,) = session.batch([Action(f"/workspaces/{configured}", fields=("name",))], absent=(403, 404))
        if found is None:  # not listed among the containers, so `bridge check --online` names it
            return [_Workspace(configured, configured, missing=True)]
        record = found.get("data") if isinstance(found, dict) else None
        name = str(record.get("name") or configured) if isinstance(record, dict) else configured
        return [_Workspace(configured, name)]
    (listed,) = session.collect([Action("/workspaces", fields=("name",), limit=PAGE_LIMIT)])
    return [_Workspace(str(w["gid"]), str(w.get("name") or w["gid"])) for w in listed or [] if record_gid(w)]


@dataclass
class _Listings:
    projects: list[Any] | None
    tags: list[Any] | None
    custom_fields: list[Any] | None
    time_periods: list[Any] | None
    goals: list[Any] | None


def _workspace_listings(
    session: AsanaSession, workspaces: Sequence[_Workspace], *, list_projects: bool
) -> dict[str, _Listings]:
    """Each workspace's projects (when no project is configured), tags, fields, time periods, goals."""
    actions: list[Action] = []
    readable = [workspace for workspace in workspaces if not workspace.missing]
    for workspace in readable:
        gid = workspace.gid
        if list_projects:
            actions.append(Action("/projects", {"workspace": gid}, PROJECT_FIELDS, limit=PAGE_LIMIT))
        actions += [
            Action(f"/workspaces/{gid}/tags", fields=("name",), limit=PAGE_LIMIT),
            Action(f"/workspaces/{gid}/custom_fields", fields=FIELD_FIELDS, limit=PAGE_LIMIT),
            Action("/time_periods", {"workspace": gid}, PERIOD_FIELDS, limit=PAGE_LIMIT),
            Action("/goals", {"workspace": gid}, GOAL_FIELDS, limit=PAGE_LIMIT),
        ]
    found = iter(session.collect(actions, absent=OPTIONAL))
    listings = {w.gid: _Listings(None, None, None, None, None) for w in workspaces if w.missing}
    for workspace in readable:
        projects = next(found) if list_projects else None
        listings[workspace.gid] = _Listings(projects, next(found), next(found), next(found), next(found))
        if projects is not None:
            workspace.projects = sorted(
                (_project(p) for p in projects if record_gid(p)), key=lambda p: p[1].casefold()
            )
    return listings


def _configured_projects(session: AsanaSession, gids: Sequence[str]) -> list[tuple[str, str]]:
    bodies = session.batches([Action(f"/projects/{gid}", fields=PROJECT_FIELDS) for gid in gids])
    found = []
    for gid, body in zip(gids, bodies, strict=True):
        record = body.get("data") if isinstance(body, dict) else None
        found.append(_project(record) if isinstance(record, dict) else (gid, gid))
    return found


def _project(record: Mapping[str, Any]) -> tuple[str, str]:
    name = str(record.get("name") or record["gid"])
    return str(record["gid"]), f"{name} (archived)" if record.get("archived") else name


def _containers(workspaces: Sequence[_Workspace]) -> list[tuple[str, str]]:
    several = len(workspaces) > 1
    containers: list[tuple[str, str]] = []
    for workspace in workspaces:
        if not workspace.missing:
            containers.append((workspace.gid, f"workspace: {workspace.name}"))
        for gid, name in workspace.projects:
            containers.append((gid, f"project: {workspace.name} / {name}" if several else f"project: {name}"))
    return containers


# ---- fields, subtypes, goals --------------------------------------------------------------------------


def _field(custom: Mapping[str, Any], *, on_project: bool) -> DiscoveredField:
    kind = str(custom.get("resource_subtype") or custom.get("type") or "unknown")
    detail = ""
    if kind in ("enum", "multi_enum"):
        options = [
            str(o.get("name") or "")
            for o in custom.get("enum_options") or []
            if isinstance(o, dict) and o.get("enabled", True)
        ]
        shown = ", ".join(options[:SHOWN_OPTIONS]) + (", ..." if len(options) > SHOWN_OPTIONS else "")
        detail = f", {len(options)} option{'' if len(options) == 1 else 's'}" + (
            f": {shown}" if options else ""
        )
    elif kind == "number" and custom.get("precision") is not None:
        detail = f", precision {custom['precision']}"
    where = "" if on_project else "; on none of the projects listed"
    name = str(custom.get("name") or custom["gid"])
    return DiscoveredField(str(custom["gid"]), name, f"{kind}{detail}{where}")


def _sample(samples: Sequence[list[Any] | None]) -> tuple[Counter[str], str | None]:
    """The task subtypes seen in the first page of each project, and a note of them (None: no task)."""
    subtypes: Counter[str] = Counter()
    with_subtasks = sampled = 0
    for tasks in samples:
        for task in tasks or []:
            if not isinstance(task, dict):
                continue
            sampled += 1
            subtypes[str(task.get("resource_subtype") or "default_task")] += 1
            if int(task.get("num_subtasks") or 0) > 0:
                with_subtasks += 1
    for subtype in TASK_SUBTYPES:
        subtypes.setdefault(subtype, 0)
    if not sampled:
        return subtypes, None
    found = ", ".join(f"{name} {subtypes[name]}" for name in sorted(subtypes, key=_subtype_order))
    note = (
        f"{found} (first {PAGE_LIMIT} tasks of each project, {sampled} in all; {with_subtasks} with subtasks)"
    )
    return subtypes, note


def _subtype_order(name: str) -> tuple[int, str]:
    return (TASK_SUBTYPES.index(name) if name in TASK_SUBTYPES else len(TASK_SUBTYPES), name)


def _okr_notes(
    workspaces: Sequence[_Workspace], listings: Mapping[str, _Listings], *, several_workspaces: bool
) -> dict[str, str]:
    """Goals per time period and the time periods (gid for `okrs.time_period`), per workspace."""
    notes: dict[str, str] = {}
    for workspace in workspaces:
        suffix = f" ({workspace.name})" if several_workspaces else ""
        listing = listings[workspace.gid]
        if listing.goals is None:
            notes[f"goals{suffix}"] = "not readable with this token or plan"
        else:
            by_period = Counter(
                str(
                    ((goal.get("time_period") or {}) if isinstance(goal, dict) else {}).get("display_name")
                    or "no time period"
                )
                for goal in listing.goals
            )
            counts = ", ".join(f"{name} {count}" for name, count in sorted(by_period.items()))
            notes[f"goals{suffix}"] = f"{len(listing.goals)}" + (f" ({counts})" if counts else "")
        if listing.time_periods is None:
            notes[f"time_periods{suffix}"] = "not readable with this token or plan"
        else:
            periods = [
                f"{p['gid']} {p.get('display_name') or p.get('period') or ''} "
                f"({p.get('start_on') or '?'} to {p.get('end_on') or '?'})"
                for p in listing.time_periods
                if isinstance(p, dict) and record_gid(p)
            ]
            notes[f"time_periods{suffix}"] = "; ".join(periods) or "none"
    return notes
