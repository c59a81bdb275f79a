"""Malformed API items, property-based: a bad item is mapped or skipped and counted, never a crash.

Each connector's mapping gets a page of valid items with mutated copies mixed in (a key dropped, a
value replaced by another JSON type, an unknown key added, the whole item replaced). The mapping must
not raise; every good item is mapped; each bad item is mapped (a harmless mutation) or skipped with its
key and a reason, never both; and whatever is mapped keeps the domain's invariants.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.strategies import DrawFn

from bridge.domain import KeyResult, Milestone, SkippedItem, StatusCategory, StatusChange, Task
from bridge_asana.config import AsanaTrackerConfig
from bridge_asana.mapping import AsanaMapping, KnownMilestone, map_goals
from bridge_jira.config import JiraTrackerConfig
from bridge_jira.mapping import JiraMapping
from bridge_trello.config import TrelloTrackerConfig
from bridge_trello.mapping import BoardInfo, TrelloMapping

FAST = settings(max_examples=int(os.environ.get("BAD_INPUT_EXAMPLES", "80")), deadline=None)
"""A few seconds for the suite; set BAD_INPUT_EXAMPLES for a deeper search."""

# ---- nasty JSON values ------------------------------------------------------------------------------

HUGE = "x" * 100_000
SPECIAL_STRINGS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",  # a lone surrogate: json.loads('"\\ud800"') gives exactly this
    "\udfff tail",
    "🚀🔥👩‍👩‍👧",
    "\u202eRTL override",
    "שלום עולם",
    "مرحبا",
    "Unknown Status",
    "not a date",
    "2024-13-45",
    "2024-02-30T25:61:00Z",
    "2024-01-01T00:00:00",  # no offset
    "9999-12-31T23:59:59+14:00",
    "0001-01-01T00:00:00-12:00",
    "1e400",
    "NaN",
    "-0",
    "T",
    HUGE,
    "🙂" * 50_000,
]


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([10**400, -(10**400), 2**63, -(2**63) - 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(SPECIAL_STRINGS),
)
json_values = st.one_of(
    st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=8,
    ),
    st.integers(min_value=20, max_value=200).map(_nested),
)


def _paths(value: Any, here: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield here
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*here, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*here, index))


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


@st.composite
def mutated(draw: DrawFn, base: Any, *, keep_root: bool = False) -> Any:
    """`base` with one to three mutations, each at a path drawn from what the item holds then."""
    item = copy.deepcopy(base)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = [p for p in _paths(item) if p or not keep_root]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        operation = draw(st.sampled_from(["drop", "replace", "replace", "add"]))
        if not path:
            item = draw(json_values) if operation == "replace" else item
            continue
        parent, last = _at(item, path[:-1]), path[-1]
        if operation == "drop":
            del parent[last]
        elif operation == "replace":
            parent[last] = draw(json_values)
        else:
            target = _at(item, path)
            if isinstance(target, dict):
                target[draw(st.text(max_size=12))] = draw(json_values)
            elif isinstance(target, list):
                target.append(draw(json_values))
            else:
                parent[last] = draw(json_values)
    return item


# ---- what every mapping keeps -----------------------------------------------------------------------


def assert_invariants(items: list[Any], skipped: list[SkippedItem], source: str) -> None:
    for item in items:
        if isinstance(item, Milestone | Task):
            assert isinstance(item.category, StatusCategory), item
            assert isinstance(item.remote_id, str) and isinstance(item.title, str)
            for name in ("due", "created", "updated", "started", "done"):
                moment = getattr(item, name, None)
                if moment is not None:
                    assert isinstance(moment, datetime) and moment.tzinfo is UTC, (name, item)
        elif isinstance(item, StatusChange):
            assert isinstance(item.to_category, StatusCategory)
            assert item.from_category is None or isinstance(item.from_category, StatusCategory)
            assert item.at.tzinfo is UTC
        elif isinstance(item, KeyResult):
            for number in (item.target, item.current, item.start):
                assert number is None or isinstance(number, float)
    for skip in skipped:
        assert skip.source == source
        assert isinstance(skip.key, str) and skip.key
        assert isinstance(skip.reason, str) and skip.reason.strip()


def assert_accounted(
    good: list[str], bad: list[Any], mapped_ids: list[str], skipped: list[SkippedItem], key_of: Any
) -> None:
    """Good items mapped; a bad item whose key survived is mapped or skipped under that key, not both."""
    for remote_id in good:
        assert remote_id in mapped_ids, f"good item {remote_id} was lost"
    skipped_keys = [s.key for s in skipped]
    for item in bad:
        key = key_of(item)
        if key is None:
            continue
        was_skipped = key in skipped_keys
        was_mapped = key in mapped_ids
        assert was_skipped != was_mapped, (key, was_skipped, was_mapped)


def _text_field(item: Any, *names: str) -> str | None:
    if not isinstance(item, dict):
        return None
    values = [item.get(name) for name in names]
    if not all(isinstance(v, str) and v for v in values):
        return None
    first = values[0]
    return first if isinstance(first, str) and all(v == first for v in values) else None


def _unique(items: list[Any], *pairs: str) -> bool:
    """Whether no two items share any of the (field, value) pairs given as field, value, ..."""
    for name, value in zip(pairs[::2], pairs[1::2], strict=True):
        if sum(1 for item in items if isinstance(item, dict) and item.get(name) == value) > 1:
            return False
    return True


# ---- Jira -------------------------------------------------------------------------------------------

JIRA_CONFIG = JiraTrackerConfig.model_validate(
    {
        "kind": "jira",
        "url": "https://acme.atlassian.net",
        "email_env": "JIRA_EMAIL",
        "token_env": "JIRA_TOKEN",
        "projects": ["PAY"],
        "status_map": {"10000": "todo", "3": "in_progress", "10002": "waiting", "10001": "done"},
        "teams": [{"component": "web", "name": "Web"}],
        "work_types": [{"label": "bug", "name": "Bug"}, {"field": "Story Points", "value": 5, "name": "M"}],
        "fields": {"value": "customfield_10016", "effort": "customfield_10017"},
    }
)


def jira_mapping() -> JiraMapping:
    return JiraMapping(
        source="acme-jira",
        config=JIRA_CONFIG,
        site="https://acme.atlassian.net",
        zone=ZoneInfo("Europe/Paris"),
        field_names={"customfield_10016": "Story Points", "customfield_10017": "Effort"},
        value_field="customfield_10016",
        effort_field="customfield_10017",
    )


def jira_issue(number: int, *, epic: bool = False) -> dict[str, Any]:
    return {
        "id": str(number),
        "key": f"PAY-{number}",
        "fields": {
            "summary": f"Issue {number} ✓",
            "issuetype": {"name": "Epic" if epic else "Story", "hierarchyLevel": 1 if epic else 0},
            "project": {"key": "PAY", "name": "Payments", "id": "1"},
            "status": {"id": "3", "name": "In Progress", "statusCategory": {"key": "indeterminate"}},
            "labels": ["bug", "ui"],
            "components": [{"name": "web"}],
            "parent": {"id": "900", "key": "PAY-900"},
            "created": "2024-11-26T14:42:25.824-0500",
            "updated": "2024-11-27T10:00:00.000+0000",
            "duedate": "2024-12-20",
            "issuelinks": [{"type": {"name": "Blocks"}, "inwardIssue": {"id": "77", "key": "PAY-77"}}],
            "fixVersions": [{"id": "5", "name": "1.0"}],
            "customfield_10016": 5,
            "customfield_10017": {"value": "3"},
        },
        "changelog": {
            "histories": [
                {
                    "id": f"h{number}a",
                    "created": "2024-11-26T15:00:00.000-0500",
                    "items": [
                        {"field": "status", "from": "10000", "fromString": "To Do", "to": "3",
                         "toString": "In Progress"}
                    ],
                },
                {
                    "id": f"h{number}b",
                    "created": "2024-11-26T16:00:00.000-0500",
                    "items": [{"field": "labels", "from": None, "to": "bug"}],
                },
            ]
        },
    }  # fmt: skip


def _jira_key(item: Any) -> str | None:
    return _text_field(item, "id")


def _jira_key_skipped(item: Any) -> str | None:
    """The key a skipped issue is logged under: its key, else its id."""
    return _text_field(item, "key")


@FAST
@given(
    bad=st.lists(
        st.sampled_from([jira_issue(500), jira_issue(600, epic=True)]).flatmap(mutated),
        min_size=1,
        max_size=4,
    ),
    where=st.integers(min_value=0, max_value=4),
)
def test_jira_bad_issues_are_mapped_or_skipped(bad: list[Any], where: int) -> None:
    good = [jira_issue(1), jira_issue(2, epic=True), jira_issue(3)]
    page = [*good[:where], *bad, *good[where:]]
    mapped = jira_mapping().map_issues(page)
    items = [*mapped.milestones, *mapped.tasks]
    assert_invariants([*items, *mapped.changes], mapped.skipped, "acme-jira")
    assert len(items) + len(mapped.skipped) == len(page), "each issue is mapped or skipped, once"
    ids = [item.remote_id for item in items]
    assert_accounted(["1", "2", "3"], [], ids, mapped.skipped, _jira_key)
    keys = [s.key for s in mapped.skipped]
    for issue in bad:  # keys and ids both intact, text and unique: tell which way it went
        remote_id, key = _jira_key(issue), _jira_key_skipped(issue)
        if remote_id is None or key is None or not _unique(page, "id", remote_id, "key", key):
            continue
        assert (remote_id in ids) != (key in keys), (remote_id, key)


# ---- Trello -----------------------------------------------------------------------------------------

TRELLO_CONFIG = TrelloTrackerConfig.model_validate(
    {
        "kind": "trello",
        "api_key_env": "TRELLO_KEY",
        "token_env": "TRELLO_TOKEN",
        "boards": ["b1"],
        "status_map": {"To Do": "todo", "Doing": "in_progress", "Done": "done"},
        "fields": {"value": "Value", "due": "Due"},
        "teams": [{"label": "bug", "name": "Web"}],
        "work_types": [{"field": "Kind", "value": "Bug", "name": "Bug"}],
    }
)
BOARD = BoardInfo(
    id="b1",
    name="Board",
    lists={"L1": "To Do", "L2": "Doing", "L3": "Done", "L9": "Icebox"},
    labels={"LM1": "M:Alpha", "LM2": "M:Beta", "LMK": "milestone", "LB": "bug"},
    fields={"F1": "Value", "F2": "Due", "F3": "Kind"},
    options={"O1": "Bug"},
)


def trello_card(number: int, *, milestone: str | None = None) -> dict[str, Any]:
    card_id = f"5f00000000000000000000{number:02d}"
    labels = [milestone, "LMK"] if milestone else ["LM1", "LB"]
    return {
        "card": {
            "id": card_id,
            "name": "Beta" if milestone == "LM2" else f"Card {number} 🚀",
            "idList": "L2",
            "idLabels": labels,
            "shortLink": f"s{number}",
            "url": f"https://trello.com/c/s{number}",
            "dateLastActivity": "2026-05-01T10:00:00.000Z",
            "due": "2026-05-10",
            "customFieldItems": [
                {"idCustomField": "F1", "value": {"number": "5"}},
                {"idCustomField": "F2", "value": {"date": "2026-05-10T00:00:00.000Z"}},
                {"idCustomField": "F3", "idValue": "O1"},
            ],
        },
        "actions": [
            {"id": f"a{number}1", "type": "createCard", "date": "2026-04-01T09:00:00.000Z",
             "data": {"card": {"id": card_id}, "list": {"id": "L1", "name": "To Do"}}},
            {"id": f"a{number}2", "type": "updateCard", "date": "2026-04-02T09:00:00.000Z",
             "data": {"card": {"id": card_id}, "listBefore": {"id": "L1", "name": "To Do"},
                      "listAfter": {"id": "L2", "name": "Doing"}}},
        ],
    }  # fmt: skip


def _split(wrapper: Any, number: int) -> tuple[Any, list[Any]]:
    """A mutated (card, its actions) pair; a wrapper mutated past recognition is the card itself."""
    if isinstance(wrapper, dict) and "card" in wrapper:
        actions = wrapper.get("actions")
        return wrapper["card"], actions if isinstance(actions, list) else [actions]
    return wrapper, []


@FAST
@given(
    bad=st.lists(
        st.sampled_from([trello_card(50), trello_card(60, milestone="LM2")]).flatmap(mutated),
        min_size=1,
        max_size=4,
    ),
    where=st.integers(min_value=0, max_value=3),
)
def test_trello_bad_cards_are_mapped_or_skipped(bad: list[Any], where: int) -> None:
    wrappers = [trello_card(1), trello_card(2, milestone="LM1"), trello_card(3)]
    cards, history = [], {}
    for number, wrapper in enumerate([*wrappers[:where], *bad, *wrappers[where:]]):
        card, actions = _split(wrapper, number)
        cards.append(card)
        card_id = card.get("id") if isinstance(card, dict) else None
        if isinstance(card_id, str):
            history.setdefault(card_id, []).extend(actions)
    mapping = TrelloMapping("cards", TRELLO_CONFIG, BOARD)
    mapped = mapping.map_cards(cards, history, {})
    items = [*mapped.milestones, *mapped.tasks]
    assert_invariants([*items, *mapped.changes], mapped.skipped, "cards")
    ids = [item.remote_id for item in mapped.tasks]
    good_ids = [f"5f00000000000000000000{n:02d}" for n in (1, 3)]
    assert_accounted(good_ids, [], ids, mapped.skipped, None)
    assert "label:LM1" in [m.remote_id for m in mapped.milestones], "the good milestone card's label"
    keys = [s.key for s in mapped.skipped]
    for wrapper in bad:
        card, _ = _split(wrapper, 0)
        card_id, short = _text_field(card, "id"), _text_field(card, "shortLink")
        if card_id is None or short is None or not _unique(cards, "id", card_id, "shortLink", short):
            continue
        labels = card.get("idLabels")
        milestone_card = isinstance(labels, list) and bool({"LM1", "LM2"} & set(map(str, labels)))
        assert not (card_id in ids and short in keys), card_id
        assert card_id in ids or short in keys or milestone_card, card_id
    assert len(mapped.skipped) <= len(bad)


# ---- Asana ------------------------------------------------------------------------------------------

ASANA_CONFIG = AsanaTrackerConfig.model_validate(
    {
        "kind": "asana",
        "token_env": "ASANA_TOKEN",
        "workspace": "W1",
        "projects": ["P1"],
        "status_map": {"S1": "todo", "S2": "in_progress", "S3": "waiting", "completed": "done"},
        "teams": [{"tag": "bug", "name": "Web"}],
        "work_types": [{"field": "Kind", "value": "Bug", "name": "Bug"}],
    }
)


def asana_mapping() -> AsanaMapping:
    return AsanaMapping(
        source="tasks",
        config=ASANA_CONFIG,
        section_projects={"S1": "P1", "S2": "P1", "S3": "P1"},
        value_field="CF1",
        effort_field="CF2",
        due_field=None,
    )


def asana_task(number: int, *, milestone: bool = False) -> dict[str, Any]:
    gid = str(1000 + number)
    return {
        "record": {
            "gid": gid,
            "name": f"Task {number} שלום",
            "resource_subtype": "milestone" if milestone else "default_task",
            "memberships": [
                {"project": {"gid": "P9", "name": "Elsewhere"}, "section": {"gid": "S9", "name": "X"}},
                {"project": {"gid": "P1", "name": "Proj"}, "section": {"gid": "S2", "name": "Doing"}},
            ],
            "completed": False,
            "created_at": "2026-03-02T09:00:00.000Z",
            "modified_at": "2026-03-03T09:00:00.000Z",
            "due_on": "2026-04-01",
            "due_at": None,
            "permalink_url": f"https://app.asana.com/0/P1/{gid}",
            "tags": [{"gid": "T1", "name": "bug"}],
            "custom_fields": [
                {"gid": "CF1", "name": "Value", "number_value": 5},
                {"gid": "CF2", "name": "Effort", "display_value": "3"},
                {"gid": "CF3", "name": "Kind", "enum_value": {"gid": "E1", "name": "Bug"}},
            ],
            "dependencies": [{"gid": "1077"}],
            "dependents": [{"gid": "M1"}],
            "parent": None,
        },
        "stories": [
            {"gid": f"st{number}1", "resource_subtype": "section_changed",
             "created_at": "2026-03-02T10:00:00.000Z", "old_section": {"gid": "S1", "name": "Todo"},
             "new_section": {"gid": "S2", "name": "Doing"}},
            {"gid": f"st{number}2", "resource_subtype": "comment_added",
             "created_at": "2026-03-02T11:00:00.000Z", "text": "hi"},
            {"gid": f"st{number}3", "resource_subtype": "marked_complete",
             "created_at": "2026-03-02T12:00:00.000Z"},
        ],
    }  # fmt: skip


@FAST
@given(
    bad=st.lists(
        st.sampled_from([asana_task(50), asana_task(60, milestone=True)]).flatmap(mutated),
        min_size=1,
        max_size=4,
    ),
    where=st.integers(min_value=0, max_value=3),
)
def test_asana_bad_tasks_are_mapped_or_skipped(bad: list[Any], where: int) -> None:
    wrappers = [asana_task(1), asana_task(2, milestone=True), asana_task(3)]
    records, stories = [], {}
    for wrapper in [*wrappers[:where], *bad, *wrappers[where:]]:
        if isinstance(wrapper, dict) and "record" in wrapper:
            record, found = wrapper["record"], wrapper.get("stories")
            found = found if isinstance(found, list) else [found]
        else:
            record, found = wrapper, []
        records.append(record)
        gid = record.get("gid") if isinstance(record, dict) else None
        if isinstance(gid, str):
            stories.setdefault(gid, []).extend(found)
    known = {"M1": KnownMilestone("Alpha", "S1")}
    mapped = asana_mapping().map_tasks(records, stories, known, {"1002": ["G1"]})
    items = [*mapped.milestones, *mapped.tasks]
    assert_invariants([*items, *mapped.changes], mapped.skipped, "tasks")
    assert len(items) + len(mapped.skipped) + mapped.outside == len(records)
    ids = [item.remote_id for item in items]
    assert_accounted(["1001", "1002", "1003"], [], ids, mapped.skipped, None)
    keys = [s.key for s in mapped.skipped]
    for record in records[where : where + len(bad)]:
        gid = _text_field(record, "gid")
        if gid is None or not _unique(records, "gid", gid):
            continue
        assert not (gid in ids and gid in keys), gid


def asana_goal(number: int) -> dict[str, Any]:
    return {
        "gid": f"g{number}",
        "name": f"Goal {number} 🎯",
        "metric": {"target_number_value": 100, "current_number_value": 40, "initial_number_value": 0,
                   "unit": "percentage"},
    }  # fmt: skip


@FAST
@given(bad=st.lists(mutated(asana_goal(9)), min_size=1, max_size=4))
def test_asana_bad_goals_are_mapped_or_skipped(bad: list[Any]) -> None:
    goals = [asana_goal(1), asana_goal(2), *bad]
    relationships: dict[str, list[Any]] = {
        "g1": [
            {"supporting_resource": {"gid": "g2", "resource_type": "goal"}},
            {"supporting_resource": {"gid": "g9", "resource_type": "goal"}},
        ],
        "g2": [{"supporting_resource": {"gid": "1001", "resource_type": "task"}}],
    }
    mapped = map_goals("tasks", goals, relationships)
    assert_invariants([*mapped.objectives, *mapped.key_results], mapped.skipped, "tasks")
    assert "g1" in [o.remote_id for o in mapped.objectives]
    assert "g2" in [k.remote_id for k in mapped.key_results]
    assert mapped.supports == {"1001": ["g2"]}
    assert len(mapped.objectives) + len(mapped.key_results) + len(mapped.skipped) <= len(goals)
    assert mapped.digest()
