"""`bridge check --online`: does everything a tracker's mapping names exist in that tracker?

`compare` is pure: it sets one tracker's config against what its connector discovered (`Discovery`) and
names each thing the tracker lacks by its dotted config path: projects, boards and workspaces, every
`status_map` key (an id, or a name matched case-insensitively), the projects, boards, labels, tags,
lists, sections and issue types that team, work-type and OKR rules match on (where the tracker can tell:
Jira Data Center has no list of labels, components and epics are not listed), every field the mapping
reads or writes (by id or name) and, where the discovery gives types, whether the rank field holds
numbers and the OKR field text, and what each kind adds (Trello's OKR list, Asana's milestone sections,
Jira's issue types for milestones and key results).

`check_tracker` connects first. It opens the connector with a lenient copy of the config (no field
to resolve, so opening cannot stop at the first missing field) and, when a project or board is
missing, with the ones that exist, so that one pass names every problem. A refused credential or an
unreachable tracker is one problem naming the tracker, never a traceback and never the secret.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bridge.config import BridgeConfig, ForecastFields, Loc, PushConfig, TrackerConfig, format_path
from bridge.connector import Capability, Connector, DiscoveredField, Discovery
from bridge.errors import BridgeError, ConfigError, Problem, UserError

log = logging.getLogger(__name__)

VENDORS = {"jira": "Jira", "trello": "Trello", "asana": "Asana"}
STATUS_NOUN = {"jira": "status", "trello": "list", "asana": "section"}
CONTAINER_KEYS = ("projects", "boards")
"""Config keys that list a tracker's containers; a missing one is left out when connecting."""
RANK_TYPES: Mapping[str, tuple[str, ...]] = {
    "jira": ("number", "string"),
    "trello": ("number", "text"),
    "asana": ("number", "text"),
    "default": ("number",),
}
"""Field types each kind's writer can put a rank score or position into."""
BAND_TYPES: Mapping[str, tuple[str, ...]] = {
    "jira": ("string", "option"),
    "trello": ("text", "list"),
    "asana": ("text", "enum"),
    "default": ("string", "text"),
}
"""Field types each kind's writer can put a rank band ("top 5") into."""
OKR_TYPES: Mapping[str, tuple[str, ...]] = {
    "jira": ("string",),
    "trello": ("text", "list"),
    "asana": ("text", "enum"),
    "default": ("string", "text", "url"),
}
"""Field types each kind's writer can put a key result into."""
DATE_TYPES: tuple[str, ...] = ("date",)
"""Field types a forecast date is written into: a date field (Jira's date picker, Trello's and Asana's
date fields); a date-time field would show a time the forecast does not have."""
NOWHERE = "; on none of the projects listed"
"""How Asana's discovery marks a workspace field that no configured project carries."""
TRELLO_ID = re.compile(r"^[0-9a-f]{24}$")
ASANA_GID = re.compile(r"^[0-9]+$")


@dataclass
class TrackerCheck:
    """One tracker's result: reached or not, and every problem by its dotted path."""

    name: str
    kind: str
    reached: bool
    problems: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)
    """Worth a look, but not wrong (a Jira label that no issue carries yet)."""
    warnings: list[Problem] = field(default_factory=list)
    """Works, but likely not as meant (the bridge's label prefix already used by other labels)."""

    @property
    def ok(self) -> bool:
        return self.reached and not self.problems

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "reached": self.reached,
            "ok": self.ok,
            "problems": [{"path": p.path, "message": p.message} for p in self.problems],
            "notes": [{"path": p.path, "message": p.message} for p in self.notes],
            "warnings": [{"path": p.path, "message": p.message} for p in self.warnings],
        }


# ---- the comparison -----------------------------------------------------------------------------------


class _Known:
    """Things a tracker has, each by id and by one or more names; names match case-insensitively."""

    def __init__(self, entries: Iterable[tuple[str, Iterable[str]]], *, fold_ids: bool = False) -> None:
        self.fold_ids = fold_ids
        self.ids: set[str] = set()
        self.names: dict[str, str] = {}
        for ident, names in entries:
            self.ids.add(ident.casefold() if fold_ids else ident)
            for name in names:
                if name:
                    self.names.setdefault(name.casefold(), name)
        self.shown = sorted({*self.names.values()}, key=str.casefold)

    def __contains__(self, wanted: object) -> bool:
        if not isinstance(wanted, str):
            return False
        return (wanted.casefold() if self.fold_ids else wanted) in self.ids or wanted.casefold() in self.names

    def hint(self, wanted: str) -> str:
        options = self.shown or sorted(self.ids)
        folded = {option.casefold(): option for option in options}
        close = difflib.get_close_matches(wanted.casefold(), list(folded), n=1, cutoff=0.6)
        return f" (did you mean {folded[close[0]]!r}?)" if close else ""


def _strip(text: str, *suffixes: str) -> str:
    for suffix in suffixes:
        if text.endswith(suffix):
            text = text[: -len(suffix)]
    return text


def _status_names(kind: str, shown: str) -> list[str]:
    """A status's names: Trello and Asana show `Board / List` when several boards or projects are read."""
    base = _strip(shown, " (archived list)")
    names = [base]
    if kind in ("trello", "asana") and " / " in base:
        names.append(base.split(" / ", 1)[1])
    return names


def _short_link(shown: str) -> tuple[str, str | None]:
    """Trello's `Name (short link abc123)[, archived]` -> (name, short link)."""
    found = re.fullmatch(r"(.*) \(short link ([^)]*)\)(, archived)?", shown)
    if found:
        return found.group(1), found.group(2)
    return _strip(shown, ", archived"), None


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _base_type(kind: str) -> str:
    found = re.match(r"[A-Za-z_]+", kind)
    return found.group(0).lower() if found else kind.lower()


class _Compare:
    def __init__(self, name: str, tracker: TrackerConfig, found: Discovery) -> None:
        self.name = name
        self.tracker = tracker
        self.found = found
        self.kind = tracker.kind
        self.vendor = VENDORS.get(self.kind, self.kind.capitalize())
        self.problems: list[Problem] = []
        self.notes: list[Problem] = []
        self.workspace_missing = False
        """Then the workspace's tags are unknown, and tags are not judged."""
        self.statuses = _Known((ident, _status_names(self.kind, shown)) for ident, shown in found.statuses)
        self.labels = _Known((label, [label]) for label in found.labels)
        self.item_types = _Known((t, [t]) for t in found.item_types)
        self.fields = found.fields

    # ---- reporting ----

    def add(self, loc: Loc, message: str) -> None:
        self.problems.append(Problem(format_path(("trackers", self.name, *loc)), message))

    def missing(self, loc: Loc, noun: str, wanted: str, known: _Known, *, extra: str = "") -> None:
        if wanted not in known:
            self.add(loc, f"{self.vendor} has no {noun} {wanted!r}{extra}{known.hint(wanted)}")

    # ---- containers ----

    def containers(self) -> _Known:
        """Projects or boards by id, key, short link and name (Asana: projects only)."""
        entries: list[tuple[str, list[str]]] = []
        for ident, shown in self.found.containers:
            if self.kind == "trello":
                board, short = _short_link(shown)
                entries.append((ident, [board] + ([short] if short else [])))
            elif self.kind == "asana":
                if shown.startswith("project: "):
                    project = _strip(shown.removeprefix("project: "), " (archived)")
                    entries.append((ident, [project, project.split(" / ", 1)[-1]]))
            else:
                entries.append((ident, [shown]))
        return _Known(entries, fold_ids=self.kind == "jira")

    def check_containers(self) -> None:
        if self.kind == "trello":
            self._check_boards()
            return
        if self.kind == "asana":
            self._check_workspace()
        containers = self.containers()
        for key in CONTAINER_KEYS:
            listed = getattr(self.tracker, key, None)
            if not isinstance(listed, list):
                continue
            noun = "board" if key == "boards" else "project"
            for i, wanted in enumerate(listed):
                if self.kind == "asana":
                    if wanted not in containers.ids:
                        self.add(
                            (key, i), f"{self.vendor} has no project {wanted!r} that this token can read"
                        )
                    continue
                self.missing((key, i), noun, str(wanted), containers)

    def _check_boards(self) -> None:
        ids: set[str] = set()
        for ident, shown in self.found.containers:
            short = _short_link(shown)[1]
            ids.add(ident)
            if short:
                ids.add(short)
        for i, wanted in enumerate(getattr(self.tracker, "boards", None) or []):
            if wanted not in ids:
                self.add(
                    ("boards", i),
                    f"Trello has no board {wanted!r} that this token can read "
                    "(boards are named by id or short link)",
                )

    def _check_workspace(self) -> None:
        wanted = getattr(self.tracker, "workspace", None)
        if not isinstance(wanted, str):
            return
        workspaces = {ident for ident, shown in self.found.containers if shown.startswith("workspace: ")}
        if wanted not in workspaces:
            self.workspace_missing = True
            self.add(("workspace",), f"Asana has no workspace {wanted!r} that this token can read")

    # ---- statuses ----

    def check_status_map(self) -> None:
        noun = STATUS_NOUN.get(self.kind, "status")
        for key in self.tracker.status_map:
            self.missing(("status_map", key), noun, key, self.statuses)

    # ---- rules ----

    def check_rules(self) -> None:
        containers = self.containers()
        for section in ("teams", "work_types", "okr_rules"):
            for i, rule in enumerate(getattr(self.tracker, section)):
                for key, wanted in rule.matchers().items():
                    self._check_rule_value((section, i, key), key, str(wanted), containers)

    def _check_rule_value(self, loc: Loc, key: str, wanted: str, containers: _Known) -> None:
        if key in ("project", "board"):
            if self.kind == "jira" and ASANA_GID.match(wanted):
                return  # a numeric project id: the discovery lists keys and names only
            self.missing(loc, key, wanted, containers)
        elif key in ("label", "tag"):
            self._check_label(loc, key, wanted)
        elif key == "issue_type":
            self.missing(loc, "issue type", wanted, self.item_types)
        elif key in ("list", "section"):
            self.missing(loc, key, wanted, self.statuses)
        elif key == "field":
            self.check_field(loc, wanted)
        # component and epic: no discovery lists them

    def _check_label(self, loc: Loc, key: str, wanted: str) -> None:
        if self.kind == "jira":
            if self.found.extra.get("deployment") != "cloud":
                return  # Data Center has no list of labels; the discovery only samples recent issues
            if wanted not in self.labels:
                # Jira labels exist only while an issue carries one: a rule may wait for its first.
                self.notes.append(
                    Problem(
                        format_path(("trackers", self.name, *loc)),
                        f"no Jira issue has the label {wanted!r} yet{self.labels.hint(wanted)}",
                    )
                )
            return
        if self.kind == "trello" and TRELLO_ID.match(wanted):
            return  # a label id: the discovery lists labels by name
        if self.kind == "asana" and (ASANA_GID.match(wanted) or self.workspace_missing):
            return
        self.missing(loc, key, wanted, self.labels)

    # ---- fields ----

    def matching_fields(self, wanted: str) -> list[DiscoveredField]:
        by_id = [f for f in self.fields if f.id == wanted]
        if by_id:
            return by_id
        return [f for f in self.fields if f.name.casefold() == wanted.casefold()]

    def check_field(self, loc: Loc, wanted: str, types: Sequence[str] = (), role: str = "") -> None:
        found = self.matching_fields(wanted)
        if not found:
            known = _Known((f.id, [f.name]) for f in self.fields)
            self.add(loc, f"{self.vendor} has no custom field {wanted!r}{known.hint(wanted)}")
            return
        if self.kind == "asana" and all(f.type.endswith(NOWHERE) for f in found):
            self.add(loc, f"Asana field {found[0].name!r} is on none of the configured projects")
            return
        if types:
            kinds = [_base_type(f.type) for f in found]
            if not any(kind in types for kind in kinds):
                name, kind = found[0].name, kinds[0]
                self.add(
                    loc,
                    f"{self.vendor} field {name!r} is {_article(kind)} {kind} field; "
                    f"{role} must be {' or '.join(types)}",
                )

    def check_fields(self) -> None:
        for key in ("value", "effort", "due"):
            wanted = getattr(self.tracker.fields, key)
            if wanted is not None:
                self.check_field(("fields", key), wanted)
        write = self.tracker.write
        if write.rank_field is not None:
            table = BAND_TYPES if write.rank_mode == "band" else RANK_TYPES
            types = table.get(self.kind, table["default"])
            self.check_field(("write", "rank_field"), write.rank_field, types, "the rank field")
        text_types = OKR_TYPES.get(self.kind, OKR_TYPES["default"])
        if write.okr_field is not None:
            self.check_field(("write", "okr_field"), write.okr_field, text_types, "the OKR field")
        for which in ("p50", "p85"):
            wanted = getattr(write.forecast_fields, which)
            if wanted is not None:
                where = ("write", "forecast_fields", which)
                self.check_field(where, wanted, DATE_TYPES, f"the {which.upper()} forecast field")
        okrs = getattr(self.tracker, "okrs", None)
        for key in ("target_field", "current_field"):
            wanted = getattr(okrs, key, None)
            if isinstance(wanted, str):
                self.check_field(("okrs", key), wanted)
        if write.kr_status_field is not None:
            self.check_field(
                ("write", "kr_status_field"), write.kr_status_field, text_types, "the status field"
            )
            status_ids = {f.id for f in self.matching_fields(write.kr_status_field)}
            for key in ("target_field", "current_field"):
                wanted = getattr(okrs, key, None)
                if isinstance(wanted, str) and status_ids & {f.id for f in self.matching_fields(wanted)}:
                    self.add(
                        ("write", "kr_status_field"),
                        f"is the field okrs.{key} reads key results from; the bridge never writes there",
                    )
        tasks = getattr(self.tracker, "tasks", None)
        attach = getattr(tasks, "attach", None)
        for key, when in (("epic_link_field", "epic_link"), ("field", "field")):
            wanted = getattr(tasks, key, None)
            if isinstance(wanted, str) and attach == when:
                self.check_field(("tasks", key), wanted)

    # ---- what each kind adds ----

    def check_kind(self) -> None:
        if self.kind == "jira":
            self._jira()
        elif self.kind == "trello":
            self._trello()
        elif self.kind == "asana":
            self._asana()

    def _jira(self) -> None:
        milestones = getattr(self.tracker, "milestones", None)
        wanted = getattr(milestones, "issue_type", None)
        if getattr(milestones, "source", None) == "issue_type" and isinstance(wanted, str):
            self.missing(("milestones", "issue_type"), "issue type", wanted, self.item_types)
        tasks = getattr(self.tracker, "tasks", None)
        exact = set(self.found.item_types)
        for i, name in enumerate(getattr(tasks, "issue_types", None) or []):
            if name not in exact:
                # Task types are compared exactly (not case-insensitively) when items are mapped.
                self.add(
                    ("tasks", "issue_types", i),
                    f"Jira has no issue type {name!r}{self.item_types.hint(name)}",
                )
        okrs = getattr(self.tracker, "okrs", None)
        for key in ("key_result_type", "objective_type"):
            wanted = getattr(okrs, key, None)
            if isinstance(wanted, str):
                self.missing(("okrs", key), "issue type", wanted, self.item_types)

    def _trello(self) -> None:
        # The milestone and OKR lists are found by name alone.
        names = _Known(("", _status_names(self.kind, shown)) for _, shown in self.found.statuses)
        milestones = getattr(self.tracker, "milestones", None)
        wanted = getattr(milestones, "list", None)
        if getattr(milestones, "source", None) == "list" and isinstance(wanted, str):
            self.missing(("milestones", "list"), "list", wanted, names, extra=" on the configured boards")
        okrs = getattr(self.tracker, "okrs", None)
        wanted = getattr(okrs, "list", None)
        if isinstance(wanted, str):
            self.missing(("okrs", "list"), "list", wanted, names, extra=" on the configured boards")

    def _asana(self) -> None:
        milestones = getattr(self.tracker, "milestones", None)
        if getattr(milestones, "source", None) == "section":
            for i, wanted in enumerate(getattr(milestones, "sections", None) or []):
                self.missing(("milestones", "sections", i), "section", wanted, self.statuses)
        okrs = getattr(self.tracker, "okrs", None)
        period = getattr(okrs, "time_period", None)
        note = self.found.extra.get("time_periods")
        if isinstance(period, str) and isinstance(note, str) and not note.startswith("not readable"):
            known = {entry.split(" ", 1)[0] for entry in note.split("; ")} if note != "none" else set()
            if period not in known:
                self.add(
                    ("okrs", "time_period"), f"Asana has no time period {period!r} (see `bridge discover`)"
                )


def compare(name: str, tracker: TrackerConfig, found: Discovery) -> list[Problem]:
    """Everything tracker `name`'s config names that `found` (its discovery) lacks, by dotted path."""
    return compare_with_notes(name, tracker, found)[0]


def compare_with_notes(
    name: str, tracker: TrackerConfig, found: Discovery
) -> tuple[list[Problem], list[Problem]]:
    """`compare`'s problems, and notes on what may be intended (a Jira label not in use yet)."""
    check = _Compare(name, tracker, found)
    check.check_containers()
    check.check_status_map()
    check.check_rules()
    check.check_fields()
    check.check_kind()
    return check.problems, check.notes


PREFIX_SHOWN = 5
"""A prefix collision names this many of the labels already using the prefix."""


def label_prefix_collisions(name: str, push: PushConfig, found: Discovery) -> list[Problem]:
    """A warning when labels the tracker already uses start with the bridge's `push.label_prefix` and are
    not the bridge's own label names: the bridge leaves them alone (it removes only its own labels by
    name and those it recorded adding), but on the tracker they look like the bridge's."""
    prefix = push.label_prefix
    own = set(push.managed_labels())
    taken = sorted({label for label in found.labels if label.startswith(prefix) and label not in own})
    if not taken:
        return []
    shown = ", ".join(repr(label) for label in taken[:PREFIX_SHOWN])
    more = f" and {len(taken) - PREFIX_SHOWN} more" if len(taken) > PREFIX_SHOWN else ""
    count = f"{len(taken)} label{'s' if len(taken) != 1 else ''}"
    return [
        Problem(
            format_path(("push", "label_prefix")),
            f"{prefix!r} begins {count} already in use in {name} ({shown}{more}): the bridge leaves them "
            "alone, but they look like its own; choose a prefix no label uses",
        )
    ]


# ---- connecting -----------------------------------------------------------------------------------------


def lenient(tracker: TrackerConfig) -> TrackerConfig:
    """A copy that names no field, so that opening a connector resolves none (and fails on none)."""
    update: dict[str, Any] = {
        "fields": tracker.fields.model_copy(update={"value": None, "effort": None, "due": None}),
        "write": tracker.write.model_copy(
            update={"rank_field": None, "okr_field": None, "forecast_fields": ForecastFields()}
        ),
    }
    for key, names in (("okrs", ("target_field", "current_field")), ("tasks", ("field", "epic_link_field"))):
        part = getattr(tracker, key, None)
        if part is not None and hasattr(part, "model_copy"):
            fields = type(part).model_fields
            cleared = {name: None for name in names if name in fields}
            if cleared:
                update[key] = part.model_copy(update=cleared)
    return tracker.model_copy(update=update)


def _container_key(tracker: TrackerConfig) -> str | None:
    for key in CONTAINER_KEYS:
        if isinstance(getattr(tracker, key, None), list):
            return key
    return None


def _open(kind: type[Connector], name: str, tracker: TrackerConfig, secrets: Mapping[str, str]) -> Connector:
    return kind.open(name, tracker.interactive(), secrets)


def _discover(
    kind: type[Connector], name: str, tracker: TrackerConfig, secrets: Mapping[str, str]
) -> Discovery:
    connector = _open(kind, name, tracker, secrets)
    try:
        return connector.discover()
    finally:
        connector.close()


def discover_for_check(name: str, tracker: TrackerConfig, secrets: Mapping[str, str]) -> Discovery:
    """Connect and discover; a missing project or board is left out so the rest can still be described."""
    from bridge.connector import ConnectorRegistry

    connector_class = ConnectorRegistry.default().load(tracker.kind)
    if Capability.DISCOVER not in connector_class.capabilities:
        raise UserError(f"the {tracker.kind} connector cannot discover, so {name} cannot be checked online")
    loose = lenient(tracker)
    try:
        return _discover(connector_class, name, loose, secrets)
    except UserError:
        key = _container_key(loose)
        listed = list(getattr(loose, key)) if key else []
        if key is None or not listed:
            raise
        present = []
        for container in listed:
            try:
                _open(connector_class, name, loose.model_copy(update={key: [container]}), secrets).close()
            except UserError:
                continue
            present.append(container)
        if len(present) == len(listed):
            raise  # not a missing container: the error says what is wrong
        log.debug("%s: checking with %s only", name, ", ".join(present) or "no configured container")
        return _discover(connector_class, name, loose.model_copy(update={key: present}), secrets)


def _redacted(text: str, secrets: Mapping[str, str]) -> str:
    from bridge.http import redact

    text = redact(text)
    for value in secrets.values():
        if value:
            text = text.replace(value, "***")
    return text


def check_tracker(config: BridgeConfig, name: str, environ: Mapping[str, str] | None = None) -> TrackerCheck:
    """Connect to tracker `name`, discover and compare; every failure becomes a named problem."""
    tracker = config.tracker(name)
    try:
        secrets = config.require_secrets(name, environ)
    except ConfigError as exc:
        return TrackerCheck(name, tracker.kind, False, list(exc.problems))
    where = format_path(("trackers", name))
    try:
        found = discover_for_check(name, tracker, secrets)
    except BridgeError as exc:
        message = _redacted(str(exc), secrets)
        if isinstance(exc, UserError) and message.startswith("trackers."):
            path, _, rest = message.partition(": ")
            return TrackerCheck(name, tracker.kind, True, [Problem(path, rest)])
        return TrackerCheck(name, tracker.kind, False, [Problem(where, f"cannot check it: {message}")])
    except Exception as exc:  # an unexpected failure of a connector is still one named problem
        log.debug("%s: check failed", name, exc_info=True)
        message = _redacted(f"{type(exc).__name__}: {exc}", secrets)
        return TrackerCheck(name, tracker.kind, False, [Problem(where, f"cannot check it: {message}")])
    problems, notes = compare_with_notes(name, tracker, found)
    warnings = label_prefix_collisions(name, config.push, found) if tracker.write.labels else []
    return TrackerCheck(name, tracker.kind, True, problems, notes, warnings)


def check_trackers(
    config: BridgeConfig, tracker: str | None = None, environ: Mapping[str, str] | None = None
) -> list[TrackerCheck]:
    """`tracker` alone (even when disabled), or every enabled tracker, in the config's order."""
    names = [tracker] if tracker is not None else [n for n, t in config.trackers.items() if t.enabled]
    if tracker is not None:
        config.tracker(tracker)
    return [check_tracker(config, name, environ) for name in names]


def problems_text(checks: Iterable[TrackerCheck]) -> Iterator[str]:
    """Per tracker `ok` or its problems, one line each."""
    for check in checks:
        if check.ok:
            yield f"  {check.name}: ok"
        else:
            count = len(check.problems)
            state = "" if check.reached else ", not reached"
            yield f"  {check.name}: {count} problem{'s' if count != 1 else ''}{state}"
        for problem in check.problems:
            yield f"    {problem}"
        for warning in check.warnings:
            yield f"    warning: {warning}"
        for note in check.notes:
            yield f"    note: {note}"
