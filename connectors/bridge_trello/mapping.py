"""Trello cards, lists, labels and actions as the bridge's milestones, tasks and status changes (pure).

A card's status is its list: the raw status is the list id, matched against `status_map` by id or name.
Milestones are either labels (`milestones.source = "label_prefix"`: a label `M:<name>`, remote id
`label:<label id>`, with value, effort and due date read from the milestone's own card when the board
has one) or the cards of one list (`source = "list"`, remote id the card id). A task joins a milestone
through the milestone's label (`tasks.attach = "label"`), or by carrying an attachment that links to the
milestone's card (`"attachment"`). History comes from the board's actions: `createCard` (the first list)
and `updateCard` with `listBefore`/`listAfter`, each keyed by its action id.

Key results (`[okrs] list`): every card of that list, archived ones included as archived tasks are, is a
key result (remote id the card id), with target and current from the `target_field` / `current_field`
custom fields when configured. The card's first label that is neither a milestone label nor the
`milestone` mark names its objective, whose remote id is `objective:<label name>`: one objective per
name across the tracker's boards, so boards that share an objective label share the objective. A card
moved into that list from a task list leaves a deleted task behind (it is no task any more).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from bridge.config import CONFIG_SOURCE
from bridge.domain import (
    KeyResult,
    KeyResultLink,
    LinkOrigin,
    Milestone,
    Objective,
    Ref,
    SkippedItem,
    StatusCategory,
    StatusChange,
    Task,
    flow_times,
)
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
from bridge_trello.config import TrelloTrackerConfig

LABEL_ID = "label:"
OBJECTIVE_ID = "objective:"
"""Objectives from key result cards' labels are keyed by the label's name: `objective:<name>`."""
MILESTONE_MARK = "milestone"
"""A label that marks a card as its milestone's own card (alongside the milestone's label)."""
HISTORY_TYPES = frozenset({"createCard", "updateCard"})
READ_ERRORS = (KeyError, TypeError, ValueError, AttributeError)
CARD_LINK = re.compile(r"trello\.com/c/([A-Za-z0-9]{8})\b")
"""A link to a card: its short link, as in `https://trello.com/c/kP9xQ2rT/12-title`."""
BULLETS = "-*+• \t>"
History = Mapping[str, Sequence[Mapping[str, Any]]]
"""Card id -> the card's actions."""


class MalformedCard(ValueError):
    """A card lacks what the bridge needs (its id, name or list)."""


@dataclass(frozen=True)
class BoardInfo:
    """What a board's setup read gives: its lists, labels and custom fields (id -> name)."""

    id: str
    name: str
    lists: Mapping[str, str]
    labels: Mapping[str, str]
    fields: Mapping[str, str]
    options: Mapping[str, str] = field(default_factory=dict)
    """Option id -> text, for `list` custom fields."""


@dataclass
class Mapped:
    """One page's worth of mapped cards."""

    milestones: list[Milestone] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    changes: list[StatusChange] = field(default_factory=list)
    skipped: list[SkippedItem] = field(default_factory=list)
    list_milestones: dict[str, list[str]] = field(default_factory=dict)
    """Milestone cards of `source = "list"` seen here: card id -> [name, short link]."""
    objectives: list[Objective] = field(default_factory=list)
    key_results: list[KeyResult] = field(default_factory=list)
    links: list[KeyResultLink] = field(default_factory=list)
    """The milestones' key results by `okr_rules`, matched on the milestone's card."""
    blockers: dict[str, list[str]] = field(default_factory=dict)
    """Task card id -> the short links of the cards it names as its blockers (`dependencies.phrases`)."""


def parse_time(value: Any) -> datetime | None:
    """Trello's `2026-05-01T10:00:00.000Z` as aware UTC; None when absent."""
    if not value:
        return None
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def id_time(object_id: str) -> datetime | None:
    """When a Trello ObjectId was made (its first 8 hex digits are Unix seconds)."""
    try:
        return datetime.fromtimestamp(int(object_id[:8], 16), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None


def card_of(action: Mapping[str, Any]) -> str | None:
    """The id of the card an action is about, if any."""
    data = action.get("data")
    card = data.get("card") if isinstance(data, dict) else None
    card_id = card.get("id") if isinstance(card, dict) else None
    return str(card_id) if card_id else None


class TrelloMapping:
    """Maps one board's records; built once per board per cycle from its setup read."""

    def __init__(self, source: str, config: TrelloTrackerConfig, board: BoardInfo) -> None:
        self.source = source
        self.config = config
        self.board = board
        pairs = sorted(board.fields.items())
        self.value_field = resolve_field(config.fields.value, pairs)
        self.effort_field = resolve_field(config.fields.effort, pairs)
        self.due_field = resolve_field(config.fields.due, pairs)
        prefix = config.milestones.label_prefix
        self.by_label = (
            {i: n[len(prefix) :] for i, n in board.labels.items() if n.startswith(prefix)}
            if config.milestones.source == "label_prefix"
            else {}
        )
        okrs = config.okrs
        self.okr_list = okrs.list.casefold() if okrs is not None else None
        self.okr_lists = {
            i for i, n in board.lists.items() if self.okr_list and n.casefold() == self.okr_list
        }
        self.target_field = resolve_field(okrs.target_field, pairs) if okrs is not None else None
        self.current_field = resolve_field(okrs.current_field, pairs) if okrs is not None else None
        wanted = (config.milestones.list or "").casefold()
        self.milestone_lists = {i for i, n in board.lists.items() if wanted and n.casefold() == wanted}

    # ---- what a card is -------------------------------------------------------------------------------

    def is_key_result(self, card: Mapping[str, Any]) -> bool:
        return str(card.get("idList")) in self.okr_lists

    def milestone_label(self, card: Mapping[str, Any]) -> str | None:
        """The id of the first milestone label the card carries (label_prefix source)."""
        return next((i for i in _strings(card.get("idLabels")) if i in self.by_label), None)

    def is_milestone_card(self, card: Mapping[str, Any]) -> bool:
        if self.config.milestones.source == "list":
            return str(card.get("idList")) in self.milestone_lists
        label = self.milestone_label(card)
        if label is None:
            return False
        names = {self.board.labels.get(i, "").casefold() for i in _strings(card.get("idLabels"))}
        return (
            MILESTONE_MARK in names or str(card.get("name", "")).casefold() == self.by_label[label].casefold()
        )

    def is_task_card(self, card: Mapping[str, Any]) -> bool:
        """Whether a card of this board is a task: in a mapped list, no milestone's card nor key result."""
        try:
            _check(card)
            return (
                not (self.is_key_result(card) or self.is_milestone_card(card))
                and self._status(card) is not None
            )
        except READ_ERRORS:
            return False

    # ---- mapping ----------------------------------------------------------------------------------------

    def map_cards(
        self,
        cards: Sequence[Any],
        history: History,
        known: Mapping[str, Sequence[str]],
        *,
        labels: Iterable[str] = (),
    ) -> Mapped:
        """Milestones, tasks and their status changes from `cards`; `history` is each card's actions.

        `known` is the list source's milestone cards (id -> [name, short link]) from earlier reads;
        `labels` names milestone labels to emit even when their card is not among `cards`.
        """
        mapped = Mapped()
        milestone_cards: dict[str, Mapping[str, Any]] = {}
        tasks: list[dict[str, Any]] = []
        key_results: list[dict[str, Any]] = []
        for card in cards:
            try:
                self._sort(card, mapped, milestone_cards, tasks, key_results)
            except READ_ERRORS as exc:
                mapped.skipped.append(self._skip(card, exc))
        self._map_key_results(key_results, history, mapped)
        self._map_label_milestones(
            {*labels, *milestone_cards} if self.by_label else set(), milestone_cards, mapped
        )
        self._map_tasks(tasks, history, {**known, **mapped.list_milestones}, mapped)
        return mapped

    def _map_tasks(
        self,
        cards: Sequence[dict[str, Any]],
        history: History,
        known: Mapping[str, Sequence[str]],
        mapped: Mapped,
    ) -> None:
        """Task cards with their status changes; `known` is every list milestone (id -> [name, link])."""
        for card in cards:
            try:
                task, changes = self._task(card, history.get(str(card["id"]), ()), known)
            except READ_ERRORS as exc:
                mapped.skipped.append(self._skip(card, exc))
                continue
            mapped.tasks.append(task)
            mapped.changes.extend(changes)
            mapped.blockers[task.remote_id] = [
                short for short in blocker_links(card, self.config.dependencies.phrases) if short != task.key
            ]

    def _map_key_results(self, cards: Sequence[Mapping[str, Any]], history: History, mapped: Mapped) -> None:
        """The OKR list's cards as key results, their objectives (one per name), and the deleted task a
        card leaves behind when it came from a task list."""
        objectives: dict[str, Objective] = {}
        for card in cards:
            try:
                key_result, objective = self.key_result(card)
                left = self.former_task(card, history.get(str(card["id"]), ()))
            except READ_ERRORS as exc:
                mapped.skipped.append(self._skip(card, exc))
                continue
            mapped.key_results.append(key_result)
            if objective is not None:
                objectives.setdefault(objective.remote_id, objective)
            if left is not None:
                mapped.tasks.append(left)
        mapped.objectives.extend(objectives[k] for k in sorted(objectives))

    def _map_label_milestones(
        self, labels: Iterable[str], cards: Mapping[str, Mapping[str, Any]], mapped: Mapped
    ) -> None:
        """Each milestone label of `labels` as a milestone, with its own card from `cards` if it has one."""
        for label in sorted(labels):
            if label not in self.by_label:
                continue
            card = cards.get(label)
            try:
                milestone = self.label_milestone(label, card)
            except READ_ERRORS as exc:  # the label stays a milestone; its unreadable card is skipped
                mapped.skipped.append(self._skip(card, exc))
                milestone, card = self.label_milestone(label, None), None
            mapped.milestones.append(milestone)
            mapped.links.extend(self.rule_links(LABEL_ID + label, card or {"idLabels": [label]}))

    def _sort(
        self,
        card: Any,
        mapped: Mapped,
        milestone_cards: dict[str, Mapping[str, Any]],
        tasks: list[dict[str, Any]],
        key_results: list[dict[str, Any]],
    ) -> None:
        """File a card as a milestone's card, a list milestone, a task, or a key result."""
        _check(card)
        if self.is_key_result(card):
            key_results.append(card)
            return
        if self.is_milestone_card(card):
            if self.config.milestones.source == "list":
                mapped.milestones.append(self.list_milestone(card))
                mapped.list_milestones[card["id"]] = [card["name"], str(card.get("shortLink") or "")]
                mapped.links.extend(self.rule_links(str(card["id"]), card))
            else:
                label = self.milestone_label(card)
                assert label is not None
                milestone_cards.setdefault(label, card)
            return
        if self._status(card) is None:
            raise MalformedCard(
                f"list {self.board.lists.get(card['idList'], card['idList'])!r} is not in status_map"
            )
        tasks.append(card)

    def _skip(self, card: Any, exc: Exception) -> SkippedItem:
        key = "?"
        if isinstance(card, dict):
            key = str(card.get("shortLink") or card.get("id") or card.get("name") or "?")
        return SkippedItem(self.source, key, f"{type(exc).__name__}: {exc}")

    def _status(self, card: Mapping[str, Any]) -> StatusCategory | None:
        list_id = str(card["idList"])
        return status_category(self.config, list_id, self.board.lists.get(list_id))

    # ---- milestones ---------------------------------------------------------------------------------

    def label_milestone(self, label: str, card: Mapping[str, Any] | None) -> Milestone:
        """A milestone label, with the numbers, date and list of its own card when there is one."""
        title = self.by_label[label]
        if card is None:
            return Milestone(self.source, LABEL_ID + label, key=title, title=title, team=self.config.team)
        # The card lends its list, numbers and dates; the label stays the identity (cards come and go).
        return replace(self.list_milestone(card), remote_id=LABEL_ID + label, key=title, title=title)

    def list_milestone(self, card: Mapping[str, Any]) -> Milestone:
        """A card as a milestone: its list is the status, custom fields give value, effort, due."""
        facts = self.facts(card)
        due_value = facts.fields.get(self.due_field) if self.due_field else card.get("due")
        return Milestone(
            source=self.source,
            remote_id=str(card["id"]),
            key=str(card.get("shortLink") or card["id"]),
            title=str(card["name"]),
            team=team_for(self.config, facts),
            value=number(facts.fields.get(self.value_field)) if self.value_field else None,
            effort=number(facts.fields.get(self.effort_field)) if self.effort_field else None,
            due=_due(due_value),
            raw_status=str(card["idList"]),
            category=self._status(card) or StatusCategory.TODO,
            created=id_time(str(card["id"])),
            updated=parse_time(card.get("dateLastActivity")),
            url=_url(card),
            description=str(card.get("desc") or "").strip() or None,
            labels=self._own_labels(card),
        )

    def _own_labels(self, card: Mapping[str, Any]) -> tuple[str, ...]:
        """A milestone card's labels, less the ones that make it a milestone."""
        names = (
            self.board.labels.get(i, "") for i in _strings(card.get("idLabels")) if i not in self.by_label
        )
        prefix = self.config.milestones.label_prefix if self.by_label else None
        return tuple(
            name
            for name in names
            if name.strip() and name.casefold() != MILESTONE_MARK and not (prefix and name.startswith(prefix))
        )

    # ---- key results ---------------------------------------------------------------------------------

    def key_result(self, card: Mapping[str, Any]) -> tuple[KeyResult, Objective | None]:
        """A card of the OKR list as a key result, and the objective its label names (if any)."""
        facts = self.facts(card)
        label = self.objective_label(card)
        objective = Objective(self.source, OBJECTIVE_ID + label, label) if label is not None else None
        key_result = KeyResult(
            source=self.source,
            remote_id=str(card["id"]),
            objective_id=objective.remote_id if objective is not None else "",
            title=str(card["name"]),
            target=number(facts.fields.get(self.target_field)) if self.target_field else None,
            current=number(facts.fields.get(self.current_field)) if self.current_field else None,
            url=_url(card),
        )
        return key_result, objective

    def objective_label(self, card: Mapping[str, Any]) -> str | None:
        """The name of the card's first label that is not a milestone label nor the milestone mark."""
        prefix = self.config.milestones.label_prefix if self.by_label else None
        for label in _strings(card.get("idLabels")):
            name = self.board.labels.get(label, "")
            if not name.strip() or name.casefold() == MILESTONE_MARK or label in self.by_label:
                continue
            if prefix and name.startswith(prefix):
                continue
            return name
        return None

    def former_task(self, card: Mapping[str, Any], actions: Iterable[Mapping[str, Any]]) -> Task | None:
        """A deleted task for a key result card whose history shows it came from a task list."""
        card_id = str(card["id"])
        for action in actions:
            if action.get("type") != "updateCard" or card_of(action) != card_id:
                continue
            data = action.get("data") or {}
            before = data.get("listBefore")
            if not isinstance(before, dict) or str(before.get("id")) in self.okr_lists:
                continue
            name = before.get("name") or self.board.lists.get(str(before.get("id")))
            if status_category(self.config, str(before.get("id")), name) is None:
                continue
            return Task(
                source=self.source,
                remote_id=card_id,
                key=str(card.get("shortLink") or card_id),
                title=str(card["name"]),
                raw_status=str(card["idList"]),
                created=id_time(card_id),
                updated=parse_time(card.get("dateLastActivity")),
                url=_url(card),
                deleted=True,
            )
        return None

    # ---- tasks -------------------------------------------------------------------------------------------

    def _task(
        self, card: dict[str, Any], actions: Sequence[Mapping[str, Any]], known: Mapping[str, Sequence[str]]
    ) -> tuple[Task, list[StatusChange]]:
        category = self._status(card)
        assert category is not None
        changes = self.changes(str(card["id"]), actions)
        flow = flow_times([(c.at, c.to_category) for c in changes], current=category)
        facts = self.facts(card)
        task = Task(
            source=self.source,
            remote_id=str(card["id"]),
            key=str(card.get("shortLink") or card["id"]),
            title=str(card["name"]),
            milestone_id=self.milestone_of(card, known),
            team=team_for(self.config, facts),
            work_type=work_type_for(self.config, facts),
            raw_status=str(card["idList"]),
            category=category,
            created=id_time(str(card["id"])),
            updated=parse_time(card.get("dateLastActivity")),
            started=next((c.at for c in changes if c.to_category.started), None),
            done=flow.finished if flow is not None else None,
            url=_url(card),
            labels=tuple(
                self.board.labels[i] for i in _strings(card.get("idLabels")) if i in self.board.labels
            ),
        )
        return task, changes

    def milestone_of(self, card: Mapping[str, Any], known: Mapping[str, Sequence[str]]) -> str | None:
        """The milestone a task card joins, by `tasks.attach`."""
        if self.config.tasks.attach == "attachment":
            links = [str(a.get("url") or "") for a in card.get("attachments") or [] if isinstance(a, dict)]
            for milestone, (_, short) in known.items():
                if short and any(f"/c/{short}" in link for link in links):
                    return milestone
            return None
        if self.by_label:
            label = self.milestone_label(card)
            return LABEL_ID + label if label is not None else None
        names = {self.board.labels.get(i, "").casefold() for i in _strings(card.get("idLabels"))}
        prefix = self.config.milestones.label_prefix.casefold()
        for milestone, (name, _) in known.items():
            if name.casefold() in names or prefix + name.casefold() in names:
                return milestone
        return None

    def changes(self, card_id: str, actions: Iterable[Mapping[str, Any]]) -> list[StatusChange]:
        """The card's list moves (and the list it was made in), oldest first; unmapped lists left out."""
        found: list[StatusChange] = []
        for action in actions:
            change = self._change(card_id, action)
            if change is not None:
                found.append(change)
        return sorted(found, key=lambda c: (c.at, c.remote_id))

    def _change(self, card_id: str, action: Mapping[str, Any]) -> StatusChange | None:
        if action.get("type") not in HISTORY_TYPES or card_of(action) != card_id:
            return None
        data = action.get("data") or {}
        before = data.get("listBefore") if action["type"] == "updateCard" else None
        after = data.get("listAfter") if action["type"] == "updateCard" else data.get("list")
        if not isinstance(after, dict) or not after.get("id"):
            return None
        to_status = str(after["id"])
        to_category = status_category(
            self.config, to_status, after.get("name") or self.board.lists.get(to_status)
        )
        at = parse_time(action.get("date"))
        if to_category is None or at is None or not action.get("id"):
            return None
        from_status = str(before["id"]) if isinstance(before, dict) and before.get("id") else None
        from_name = before.get("name") if isinstance(before, dict) else None
        return StatusChange(
            source=self.source,
            remote_id=str(action["id"]),
            item_id=card_id,
            at=at,
            from_status=from_status,
            to_status=to_status,
            from_category=status_category(self.config, from_status, from_name) if from_status else None,
            to_category=to_category,
        )

    # ---- rules --------------------------------------------------------------------------------------------

    def rule_links(self, milestone: str, card: Mapping[str, Any]) -> list[KeyResultLink]:
        """The key results `okr_rules` give a milestone, matched on its card (`TRACKER:ID`, else the
        config's)."""
        ref = Ref(self.source, milestone)
        links = []
        for target in key_results_for(self.config, self.facts(card)):
            source, _, remote_id = target.partition(":") if ":" in target else (CONFIG_SOURCE, "", target)
            links.append(KeyResultLink(ref, Ref(source, remote_id), LinkOrigin.RULE))
        return links

    def facts(self, card: Mapping[str, Any]) -> Facts:
        """What team, work-type and OKR rules match on: board, list, labels and custom field values."""
        facts = Facts()
        facts.add("board", self.board.id, self.board.name)
        list_id = str(card.get("idList"))
        facts.add("list", list_id, self.board.lists.get(list_id))
        for label in _strings(card.get("idLabels")):
            facts.add("label", label, self.board.labels.get(label))
        for item in card.get("customFieldItems") or []:
            if not isinstance(item, dict) or not item.get("idCustomField"):
                continue
            field_id = str(item["idCustomField"])
            value = self._item_value(item)
            facts.fields[field_id] = value
            if field_id in self.board.fields:
                facts.fields[self.board.fields[field_id]] = value
        return facts

    def _item_value(self, item: Mapping[str, Any]) -> Any:
        """A custom field item's value: Trello keeps numbers, dates and checkboxes as strings."""
        if item.get("idValue"):
            return self.board.options.get(str(item["idValue"]), str(item["idValue"]))
        value = item.get("value")
        if not isinstance(value, dict):
            return None
        if "number" in value:
            return number(value["number"])
        if "checked" in value:
            return str(value["checked"]).lower() == "true"
        return value.get("text", value.get("date"))


def blocker_links(card: Mapping[str, Any], phrases: Sequence[str]) -> list[str]:
    """The short links of the cards `card` names as its blockers: on a description line, or in an
    attachment's name, that starts with one of `phrases` (any case, after list bullets), each card
    linked there. In first-seen order, each once."""
    starts = tuple(phrase.strip().casefold() for phrase in phrases)
    found: list[str] = []
    for line in str(card.get("desc") or "").splitlines():
        if line.lstrip(BULLETS).casefold().startswith(starts):
            found.extend(CARD_LINK.findall(line))
    for attachment in card.get("attachments") or []:
        if not isinstance(attachment, dict):
            continue
        name = str(attachment.get("name") or "")
        if name.lstrip(BULLETS).casefold().startswith(starts):
            found.extend(CARD_LINK.findall(str(attachment.get("url") or "")) or CARD_LINK.findall(name))
    return list(dict.fromkeys(found))


def _check(card: Any) -> None:
    """Raise `MalformedCard` when a card lacks what every mapping needs."""
    if not isinstance(card, dict):
        raise MalformedCard("not an object")
    for key in ("id", "name", "idList"):
        if not isinstance(card.get(key), str) or not card[key]:
            raise MalformedCard(f"{key} is missing or not text")
    if not isinstance(card.get("idLabels", []), list):
        raise MalformedCard("idLabels is not a list")


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _url(card: Mapping[str, Any]) -> str | None:
    url = card.get("url") or card.get("shortUrl")
    return str(url) if url else None


def _due(value: Any) -> datetime | None:
    """A due date: Trello's timestamp as is, a bare day as the end of that day."""
    if not value:
        return None
    text = str(value)
    return parse_time(text) if "T" in text else end_of_day(text)


def records(value: Any) -> list[dict[str, Any]]:
    """The objects with an id in a Trello answer's list (anything else in it is left out)."""
    if not isinstance(value, list):
        return []
    return [r for r in value if isinstance(r, dict) and r.get("id")]


def names(value: Any) -> dict[str, str]:
    """id -> name of the records in a Trello answer's list (lists, labels, custom fields)."""
    return {str(r["id"]): str(r.get("name") or "") for r in records(value)}


def option_texts(definition: Mapping[str, Any]) -> dict[str, str]:
    """Option id -> text of a `list` custom field's definition."""
    return {
        str(o["id"]): str((o.get("value") or {}).get("text") or "")
        for o in records(definition.get("options"))
    }


def known_milestones(raw: Mapping[str, Any]) -> dict[str, list[str]]:
    """The list source's milestone cards from a cursor, tolerating junk."""
    return {
        str(k): [str(v[0]), str(v[1])] for k, v in raw.items() if isinstance(v, list | tuple) and len(v) == 2
    }
