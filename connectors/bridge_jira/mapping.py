"""Jira issue JSON -> `bridge.domain` objects, by the tracker's mapping. Pure: no I/O.

An issue is a milestone (an epic, an issue of the configured type), a key result or objective (the
configured OKR issue types), or a task. Histories become status changes keyed by the history id, so a
re-read history is de-duplicated. Blockers come from the issue's own inward "Blocks" links, so each
issue reports all of its blockers and none of another issue's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any
from zoneinfo import ZoneInfo

from bridge.config import FIELD_KEYS
from bridge.domain import (
    Dependency,
    ItemState,
    KeyResult,
    KeyResultLink,
    LinkOrigin,
    Milestone,
    Objective,
    Ref,
    SkippedItem,
    StatusCategory,
    StatusChange,
    StatusName,
    Task,
    unchecked_constructor,
)
from bridge.errors import UserError
from bridge.flow_facts import FlowFacts, facts_of, from_micros, steps_of
from bridge.mapping import (
    Facts,
    end_of_day,
    key_results_for,
    number,
    resolve_field,
    status_category,
    team_for,
    work_type_for,
)
from bridge_jira.config import JiraTrackerConfig

JIRA_CATEGORY = {
    "new": StatusCategory.TODO,
    "indeterminate": StatusCategory.IN_PROGRESS,
    "done": StatusCategory.DONE,
}


class MalformedIssue(ValueError):
    """An issue the mapping cannot read; it is skipped and counted, its page still lands."""


def parse_time(text: Any) -> datetime | None:
    """Jira's `2024-11-26T14:42:25.824-0500` (or ISO 8601 with a colon) as aware UTC."""
    if text is None or text == "":
        return None
    if not isinstance(text, str):
        raise MalformedIssue(f"timestamp {text!r} is not a string")
    try:  # the common case: Python reads Jira's `-0500` offsets itself
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = _lenient_time(text)
    if parsed.tzinfo is None:
        raise MalformedIssue(f"timestamp {text!r} has no offset")
    return parsed.astimezone(UTC)


def _lenient_time(text: str) -> datetime:
    """`text` read with a `Z`, surrounding space or an offset without a colon allowed."""
    value = text.strip()
    if len(value) >= 5 and value[-5] in "+-" and value[-3] != ":":
        value = f"{value[:-2]}:{value[-2:]}"
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedIssue(f"timestamp {text!r} is not ISO 8601") from None


def configured_field(
    tracker: str, where: str, wanted: str | None, known: Sequence[tuple[str, str]]
) -> str | None:
    """The id of the field that config key `where` names by id or name (None when the key is unset); a
    name the site has no field for is the user's to fix."""
    found = resolve_field(wanted, known)
    if wanted is not None and found is None:
        raise UserError(f"trackers.{tracker}.{where}: Jira has no field {wanted!r} (see `bridge discover`)")
    return found


@dataclass
class Mapped:
    """What one page of issues turns into."""

    milestones: list[Milestone] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    changes: list[StatusChange] = field(default_factory=list)
    dependencies: list[Dependency] = field(default_factory=list)
    objectives: list[Objective] = field(default_factory=list)
    key_results: list[KeyResult] = field(default_factory=list)
    links: list[KeyResultLink] = field(default_factory=list)
    skipped: list[SkippedItem] = field(default_factory=list)
    flow_facts: dict[str, FlowFacts] = field(default_factory=dict)
    """The flow facts of the tasks with history, by issue id (see `RemotePage.flow_facts`)."""


@dataclass
class JiraMapping:
    """The tracker's mapping with field names resolved to ids."""

    source: str
    config: JiraTrackerConfig
    site: str
    zone: ZoneInfo
    field_names: dict[str, str]
    """Custom field id -> name."""
    value_field: str | None = None
    effort_field: str | None = None
    due_field: str | None = None
    okr_target_field: str | None = None
    okr_current_field: str | None = None
    _categories: dict[tuple[str | None, str | None], StatusCategory | None] = field(
        default_factory=dict, init=False, repr=False
    )
    status_names: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    """Status id -> display name: the site's statuses as the pull reads them first (`GET status`), then as
    the issues read show them: an issue's current status names it as it is now; a history's move names it
    as it was then, so that fills only a status neither the site's list nor an issue names."""

    def _status_category(self, status_id: str | None, name: str | None) -> StatusCategory | None:
        """`status_category`, remembered: a site has a few dozen statuses and millions of moves."""
        key = (status_id, name)
        try:
            return self._categories[key]
        except KeyError:
            found = self._categories[key] = status_category(self.config, status_id, name)
            return found

    def map_issues(self, issues: list[dict[str, Any]]) -> Mapped:
        out = Mapped()
        for raw in issues:
            key = str(raw.get("key") or raw.get("id") or "?") if isinstance(raw, dict) else "?"
            try:
                self._map_issue(raw, out)
            except (MalformedIssue, KeyError, TypeError, ValueError, AttributeError) as exc:
                out.skipped.append(SkippedItem(self.source, key, f"{type(exc).__name__}: {exc}"))
        return out

    # ---- one issue ------------------------------------------------------------------------------------

    def _map_issue(self, raw: dict[str, Any], out: Mapped) -> None:
        issue_id, key = str(raw["id"]), str(raw["key"])
        fields = raw.get("fields")
        if not isinstance(fields, dict):
            raise MalformedIssue("fields is not an object")
        type_name = str(_name(fields.get("issuetype")))
        facts = self._facts(fields, type_name)
        if self._map_okr(issue_id, key, fields, type_name, out):
            return
        # Everything is read before anything is added, so a skipped issue leaves nothing behind.
        if self._is_milestone(fields, type_name):
            milestone = self._milestone(issue_id, key, fields, facts)
            links = self._links(issue_id, fields, facts)
            out.milestones.append(milestone)
            out.links.extend(links)
            return
        if self.config.tasks.issue_types and type_name not in self.config.tasks.issue_types:
            return
        task, changes, flow_facts = self._task(issue_id, key, raw, fields, facts)
        blockers = self._blockers(issue_id, fields)
        out.tasks.append(task)
        out.changes.extend(changes)
        out.dependencies.extend(blockers)
        if flow_facts is not None:
            out.flow_facts[issue_id] = flow_facts

    def _map_okr(self, issue_id: str, key: str, fields: dict[str, Any], type_name: str, out: Mapped) -> bool:
        """Add the issue as a key result or an objective when its type is one of the OKR types."""
        okrs, kind = self.config.okrs, type_name.casefold()
        if okrs is None:
            return False
        if kind == okrs.key_result_type.casefold():
            out.key_results.append(self._key_result(issue_id, key, fields))
            return True
        if okrs.objective_type and kind == okrs.objective_type.casefold():
            title = str(fields.get("summary") or key)
            out.objectives.append(Objective(self.source, issue_id, title, url=self._url(key)))
            return True
        return False

    def _is_milestone(self, fields: dict[str, Any], type_name: str) -> bool:
        source = self.config.milestones.source
        if source == "epic":
            level = (fields.get("issuetype") or {}).get("hierarchyLevel")
            return type_name.casefold() == "epic" or level == 1
        if source == "issue_type":
            return type_name.casefold() == str(self.config.milestones.issue_type).casefold()
        return False  # fix versions are milestones of their own, read from the project's versions

    def _facts(self, fields: dict[str, Any], type_name: str) -> Facts:
        facts = Facts()
        project = fields.get("project") or {}
        facts.add("project", project.get("key"), project.get("name"), project.get("id"))
        facts.add("issue_type", type_name)
        facts.add("label", *(fields.get("labels") or []))
        facts.add("component", *(_name(c) for c in fields.get("components") or []))
        facts.add("epic", *self._epic_keys(fields))
        for field_id, value in fields.items():
            if field_id.startswith("customfield_"):
                facts.fields[field_id] = value
                name = self.field_names.get(field_id)
                if name:
                    facts.fields[name] = value
        return facts

    def _epic_keys(self, fields: dict[str, Any]) -> list[str]:
        keys = []
        parent = fields.get("parent")
        if isinstance(parent, dict) and parent.get("key"):
            keys.append(str(parent["key"]))
        link_field = self.config.tasks.epic_link_field
        if link_field and fields.get(link_field):
            keys.append(str(fields[link_field]))
        return keys

    def _url(self, key: str) -> str:
        return f"{self.site}/browse/{key}"

    def _category(self, status: Any, *, fallback: bool) -> tuple[str, StatusCategory]:
        if not isinstance(status, dict) or not status.get("id"):
            raise MalformedIssue("status is missing")
        status_id, name = str(status["id"]), str(status.get("name") or "")
        if name:
            self.status_names[status_id] = name
        category = self._status_category(status_id, name)
        if category is None and fallback:
            category = JIRA_CATEGORY.get(
                str((status.get("statusCategory") or {}).get("key")), StatusCategory.TODO
            )
        if category is None:
            raise MalformedIssue(f"status {name!r} (id {status_id}) is not in status_map")
        return status_id, category

    def _milestone(self, issue_id: str, key: str, fields: dict[str, Any], facts: Facts) -> Milestone:
        raw_status, category = self._category(fields.get("status"), fallback=True)
        due_value = fields.get(self.due_field) if self.due_field else fields.get("duedate")
        return Milestone(
            source=self.source,
            remote_id=issue_id,
            key=key,
            title=str(fields.get("summary") or key),
            team=team_for(self.config, facts),
            value=number(fields.get(self.value_field)) if self.value_field else None,
            effort=number(fields.get(self.effort_field)) if self.effort_field else None,
            due=self._due(due_value),
            raw_status=raw_status,
            category=category,
            created=parse_time(fields.get("created")),
            updated=parse_time(fields.get("updated")),
            url=self._url(key),
            watchers=watch_count(fields),
            description=plain_text(fields.get("description")),
            labels=tuple(str(label) for label in fields.get("labels") or []),
        )

    def _due(self, value: Any) -> datetime | None:
        if value is None or value == "":
            return None
        text = str(value)
        if len(text) > 10:
            return parse_time(text)
        return end_of_day(text, self.zone)

    def _task(
        self, issue_id: str, key: str, raw: dict[str, Any], fields: dict[str, Any], facts: Facts
    ) -> tuple[Task, list[StatusChange], FlowFacts | None]:
        raw_status, category = self._category(fields.get("status"), fallback=False)
        changes = self._changes(issue_id, raw)
        # The flow facts the store keeps give the task's start and finish too: one pass over the history.
        flow_facts = facts_of(steps_of(changes))
        started = done = None
        if flow_facts is not None:
            if flow_facts.first_start is not None:
                started = from_micros(flow_facts.first_start)
            if category is StatusCategory.DONE and flow_facts.flow is not None:
                done = from_micros(flow_facts.flow[1])
        task = Task(
            source=self.source,
            remote_id=issue_id,
            key=key,
            title=str(fields.get("summary") or key),
            milestone_id=self._milestone_of(fields),
            team=team_for(self.config, facts),
            work_type=work_type_for(self.config, facts),
            raw_status=raw_status,
            category=category,
            created=parse_time(fields.get("created")),
            updated=parse_time(fields.get("updated")),
            started=started,
            done=done,
            url=self._url(key),
            labels=tuple(str(label) for label in fields.get("labels") or []),
            watchers=watch_count(fields),
        )
        return task, changes, flow_facts

    def _milestone_of(self, fields: dict[str, Any]) -> str | None:
        attach = self.config.tasks.attach
        if attach == "parent":
            parent = fields.get("parent")
            return str(parent["id"]) if isinstance(parent, dict) and parent.get("id") else None
        if attach == "epic_link":
            link = fields.get(str(self.config.tasks.epic_link_field))
            return f"key:{link}" if link else None
        versions = fields.get("fixVersions") or []
        return f"version:{versions[0]['id']}" if versions else None

    def _changes(self, issue_id: str, raw: dict[str, Any]) -> list[StatusChange]:
        histories = (raw.get("changelog") or {}).get("histories") or []
        changes = []
        # the loop over every status move of a site (about ten an issue): names bound once, statuses'
        # categories remembered, ids made text inline, each history's time read once, by the standard
        # library's own parser where Jira's text allows (`parse_time` reads the rest, or says what is wrong)
        source, category_of, categories = self.source, self._status_category, self._categories
        names = self.status_names
        missing, build_change = _MISSING, _build_change
        for history in histories:
            at: datetime | None = None
            for item in history.get("items") or ():
                if item.get("field") != "status" and item.get("fieldId") != "status":
                    continue
                to_id, to_name = item.get("to"), item.get("toString")
                if to_id is not None and type(to_id) is not str:
                    to_id = str(to_id)
                if to_name is not None and type(to_name) is not str:
                    to_name = str(to_name)
                to_category = categories.get((to_id, to_name), missing)
                if to_category is missing:
                    to_category = category_of(to_id, to_name)
                if to_category is None:
                    continue  # a move into a status the mapping does not know tells nothing about flow
                if at is None:
                    at = _history_time(history)
                from_id, from_name = item.get("from"), item.get("fromString")
                if from_id is not None and type(from_id) is not str:
                    from_id = str(from_id)
                if from_name is not None and type(from_name) is not str:
                    from_name = str(from_name)
                # a status neither the site's list nor an issue names is named as a move shows it
                if from_id and from_name and from_id not in names:
                    names[from_id] = from_name
                if to_id and to_name and to_id not in names:
                    names[to_id] = to_name
                from_category = categories.get((from_id, from_name), missing)
                if from_category is missing:
                    from_category = category_of(from_id, from_name)
                # built without `__init__`: `at` is aware UTC already (what `__post_init__` checks)
                changes.append(
                    build_change(
                        source,
                        f"{history['id']}:status",
                        issue_id,
                        at,
                        from_id or from_name,
                        to_id or str(to_name),
                        from_category,
                        to_category,
                    )
                )
        changes.sort(key=_change_order)
        return changes

    def statuses(self) -> list[StatusName]:
        """Every status the site lists and the issues read so far are or were in, by name."""
        return [StatusName(self.source, i, name) for i, name in sorted(self.status_names.items())]

    def _blockers(self, issue_id: str, fields: dict[str, Any]) -> list[Dependency]:
        found = []
        for link in fields.get("issuelinks") or []:
            link_type = link.get("type") or {}
            if str(link_type.get("name", "")).casefold() != "blocks":
                continue
            blocker = link.get("inwardIssue")
            if isinstance(blocker, dict) and blocker.get("id"):
                found.append(Dependency(self.source, str(blocker["id"]), issue_id))
        return found

    def _links(self, issue_id: str, fields: dict[str, Any], facts: Facts) -> list[KeyResultLink]:
        milestone = Ref(self.source, issue_id)
        links = [
            KeyResultLink(milestone, _kr_ref(target), LinkOrigin.RULE)
            for target in key_results_for(self.config, facts)
        ]
        okrs = self.config.okrs
        if okrs is None:
            return links
        wanted = okrs.link_type.casefold()
        for link in fields.get("issuelinks") or []:
            link_type = link.get("type") or {}
            names = {str(link_type.get(k, "")).casefold() for k in ("name", "inward", "outward")}
            other = link.get("outwardIssue") or link.get("inwardIssue") or {}
            other_type = str(_name((other.get("fields") or {}).get("issuetype"))).casefold()
            if wanted in names and other.get("id") and other_type == okrs.key_result_type.casefold():
                links.append(KeyResultLink(milestone, Ref(self.source, str(other["id"])), LinkOrigin.TRACKER))
        return links

    def _key_result(self, issue_id: str, key: str, fields: dict[str, Any]) -> KeyResult:
        parent = fields.get("parent") or {}
        return KeyResult(
            source=self.source,
            remote_id=issue_id,
            objective_id=str(parent.get("id") or ""),
            title=str(fields.get("summary") or issue_id),
            target=number(fields.get(self.okr_target_field)) if self.okr_target_field else None,
            current=number(fields.get(self.okr_current_field)) if self.okr_current_field else None,
            url=self._url(key),
        )


def _kr_ref(target: str) -> Ref:
    from bridge.config import CONFIG_SOURCE

    if ":" in target:
        source, remote_id = target.split(":", 1)
        return Ref(source, remote_id)
    return Ref(CONFIG_SOURCE, target)


_change_order = attrgetter("at", "remote_id")
"""A status change's (time, id): the order of an item's history."""

_MISSING: Any = object()

_build_change: Callable[..., StatusChange] = unchecked_constructor(StatusChange)
"""A status change without `__init__` and its check (a site has millions; `_history_time` gives aware
UTC): 200,000 moves built in 0.18 s instead of 0.49 s."""


def _history_time(history: dict[str, Any]) -> datetime:
    """When a history happened, as aware UTC: Jira's usual `2024-11-26T14:42:25.824-0500` by
    `datetime.fromisoformat` directly; anything else as `parse_time` reads it (or refuses it)."""
    created: Any = history.get("created")
    try:
        parsed: datetime | None = datetime.fromisoformat(created)
    except (TypeError, ValueError):
        parsed = None
    if parsed is not None and parsed.tzinfo is not None:
        return parsed.astimezone(UTC)
    at = parse_time(created)
    if at is None:
        raise MalformedIssue(f"history {history.get('id')} has no time")
    return at


def _name(value: Any) -> Any:
    if isinstance(value, dict):
        return value.get("name") or value.get("value") or value.get("key")
    return value


def watch_count(fields: dict[str, Any]) -> int | None:
    """How many people watch the issue (each gets an email for an edit that does not suppress it)."""
    watches = fields.get("watches")
    count = watches.get("watchCount") if isinstance(watches, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) and count >= 0 else None


def plain_text(value: Any) -> str | None:
    """A description as plain text: Data Center's string as it is, Cloud's Atlassian Document Format
    flattened (text nodes joined, one line per paragraph, heading or list item)."""
    if value is None or isinstance(value, str):
        return value or None
    parts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for child in node:
                walk(child)
            return
        if not isinstance(node, dict):
            return
        if node.get("type") == "text" and isinstance(node.get("text"), str):
            parts.append(node["text"])
        elif node.get("type") == "hardBreak":
            parts.append("\n")
        walk(node.get("content"))
        if node.get("type") in _BLOCKS:
            parts.append("\n")

    walk(value)
    text = "".join(parts).strip()
    return text or None


_BLOCKS = frozenset({"paragraph", "heading", "listItem", "blockquote", "codeBlock", "tableCell"})


LEXORANK_TYPE = "com.pyxis.greenhopper.jira:gh-lexo-rank"


@dataclass(frozen=True)
class HeldFields:
    """The fields of an issue holding what the bridge manages: the `write` table's rank and OKR fields,
    the labels, the project (where the bridge orders items) and the Rank field (their place in it).

    Both a pull page (which fetches these fields too, so the push need not read the issues again) and
    the writer's `read_state` turn an issue into an `ItemState` with `state`.
    """

    managed: dict[str, str]
    """Logical field (`rank`, `okr`, `forecast_p50`...) -> Jira field id, for the fields the config says
    the bridge manages."""
    rank_order_field: str | None

    @classmethod
    def resolve(cls, name: str, config: JiraTrackerConfig, fields: Sequence[Any]) -> HeldFields:
        """The fields resolved from the site's field list (`GET field`); a `write` field the site does
        not have is the user's to fix (`UserError`)."""
        described = [f for f in fields if isinstance(f, dict) and f.get("id")]
        pairs = [(str(f["id"]), str(f.get("name", f["id"]))) for f in described]
        managed: dict[str, str] = {}
        for logical, wanted in config.write.managed_fields().items():
            found = configured_field(name, f"write.{FIELD_KEYS[logical]}", wanted, pairs)
            if found is not None:
                managed[logical] = found
        lexorank = (str(f["id"]) for f in described if (f.get("schema") or {}).get("custom") == LEXORANK_TYPE)
        return cls(managed, next(lexorank, None) or resolve_field("Rank", pairs))

    def names(self) -> list[str]:
        """The field ids to ask for."""
        return sorted({*self.managed.values(), "labels", "project", *filter(None, [self.rank_order_field])})

    def state(self, ref: Ref, issue: dict[str, Any]) -> ItemState:
        """What `issue` (as search or bulk fetch return it) holds; its links are not among its fields."""
        raw_fields = issue.get("fields") if isinstance(issue.get("fields"), dict) else {}
        assert isinstance(raw_fields, dict)
        values = {logical: _plain(raw_fields.get(field_id)) for logical, field_id in self.managed.items()}
        labels = frozenset(str(label) for label in raw_fields.get("labels") or [])
        project = raw_fields.get("project")
        container = str(project.get("key")) if isinstance(project, dict) and project.get("key") else None
        rank = raw_fields.get(self.rank_order_field) if self.rank_order_field else None
        return ItemState(
            item=ref,
            key=str(issue.get("key") or ref.remote_id),
            fields=values,
            labels=labels,
            container=container,
            position=str(rank) if rank else None,
        )


def _plain(value: Any) -> Any:
    """A field's value as the plan compares it: numbers, text and dates (`YYYY-MM-DD`, as a date picker
    holds them) as they are, options by their value."""
    if isinstance(value, dict):
        return value.get("value") or value.get("name") or value.get("id")
    return value
