"""`bridge init`: a starting config written from what a tracker's discovery found.

The pure parts guess what can be guessed: which statuses are todo, in progress, waiting or done (Jira by
its status category, Trello lists and Asana sections by their names), which custom fields hold value and
effort, and which projects, boards or workspace to read. `render` writes the file with comments saying
what each part does and what is left for the admin: statuses it could not place, fields to write back.
Secrets never enter the file; it names the environment variables that hold them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bridge.connector import DiscoveredField, Discovery
from bridge.domain import StatusCategory
from bridge.errors import UserError

KINDS = ("jira", "trello", "asana")
DEFAULT_URLS = {"trello": "https://api.trello.com", "asana": "https://app.asana.com"}
DEFAULT_TOKEN_ENV = {"jira": "JIRA_API_TOKEN", "trello": "TRELLO_TOKEN", "asana": "ASANA_TOKEN"}
DEFAULT_EMAIL_ENV = "JIRA_EMAIL"
DEFAULT_API_KEY_ENV = "TRELLO_API_KEY"
TRACKER_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")

JIRA_CATEGORIES = {
    "new": StatusCategory.TODO,
    "indeterminate": StatusCategory.IN_PROGRESS,
    "done": StatusCategory.DONE,
}
NAME_RULES: tuple[tuple[StatusCategory, tuple[str, ...]], ...] = (
    (StatusCategory.WAITING, ("blocked", "waiting", "on hold")),
    (StatusCategory.DONE, ("done", "complete", "shipped", "closed", "released", "resolved")),
    (StatusCategory.IN_PROGRESS, ("doing", "in progress", "review", "testing", "in qa")),
    (StatusCategory.TODO, ("todo", "to do", "backlog", "ready", "open", "new", "planned")),
)
"""Words in a list's or section's name and the category they suggest, the first match winning."""

VALUE_NAMES = ("business value", "customer value", "value")
EFFORT_NAMES = ("story points", "story point estimate", "effort", "estimate")
RANK_HINTS = ("rank",)
OKR_HINTS = ("key result", "okr")
TEXT_TYPES = ("string", "text", "url")


@dataclass(frozen=True)
class Answers:
    """What `bridge init` was told: the tracker and the variables holding its credentials."""

    kind: str
    url: str
    name: str
    token_env: str
    email_env: str | None = None
    api_key_env: str | None = None


@dataclass(frozen=True)
class Container:
    """A project, board or (Asana) workspace, with the workspace it belongs to."""

    id: str
    name: str
    workspace: str | None = None


@dataclass(frozen=True)
class Containers:
    """What discovery found to read: Jira projects, Trello boards, Asana workspaces and their projects."""

    workspaces: list[Container] = field(default_factory=list)
    items: list[Container] = field(default_factory=list)


@dataclass(frozen=True)
class StatusGuess:
    mapped: list[tuple[str, StatusCategory, str]]
    """(status_map key, category, a note shown beside it)."""
    unknown: list[tuple[str, str]]
    """(status_map key, a note) of statuses no rule placed."""


# ---- containers -----------------------------------------------------------------------------------------


def containers(kind: str, found: Discovery) -> Containers:
    if kind != "asana":
        return Containers(
            items=[Container(ident, _container_name(kind, shown)) for ident, shown in found.containers]
        )
    several = sum(1 for _, shown in found.containers if shown.startswith("workspace: ")) > 1
    workspaces: list[Container] = []
    items: list[Container] = []
    for ident, shown in found.containers:
        if shown.startswith("workspace: "):
            workspaces.append(Container(ident, shown.removeprefix("workspace: ")))
        elif workspaces:
            name = shown.removeprefix("project: ")
            if several:
                name = name.removeprefix(f"{workspaces[-1].name} / ")
            items.append(Container(ident, name, workspaces[-1].id))
    return Containers(workspaces=workspaces, items=items)


def _container_name(kind: str, shown: str) -> str:
    if kind == "trello":
        matched = re.fullmatch(r"(.*) \(short link [^)]*\)(, archived)?", shown)
        if matched:
            return matched.group(1)
    return shown


def pick(options: Sequence[Container], answer: str) -> list[Container]:
    """The containers an answer names: blank or `all` for every one, else numbers (from 1), ids or names."""
    text = answer.strip()
    if not text or text.casefold() == "all":
        return list(options)
    chosen: list[Container] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        match = None
        if part.isdigit() and 1 <= int(part) <= len(options) and not any(o.id == part for o in options):
            match = options[int(part) - 1]
        else:
            match = next((o for o in options if o.id == part or o.name.casefold() == part.casefold()), None)
        if match is None:
            raise UserError(f"{part!r} is none of the listed numbers, ids or names")
        if match not in chosen:
            chosen.append(match)
    if not chosen:
        raise UserError("pick at least one")
    return chosen


# ---- statuses ------------------------------------------------------------------------------------------


def category_from_name(name: str) -> StatusCategory | None:
    """The category a status name suggests (`In progress` -> in_progress), or None."""
    folded = " " + re.sub(r"[^a-z0-9]+", " ", name.casefold()).strip() + " "
    for category, words in NAME_RULES:
        if any(f" {word} " in folded for word in words):
            return category
    return None


def guess_statuses(kind: str, found: Discovery, chosen: Sequence[Container] = ()) -> StatusGuess:
    """A status_map from the discovered statuses: Jira ids by category, other kinds' names by words."""
    mapped: list[tuple[str, StatusCategory, str]] = []
    unknown: list[tuple[str, str]] = []
    if kind == "jira":
        categories = found.extra.get("status_categories")
        categories = categories if isinstance(categories, Mapping) else {}
        for ident, name in found.statuses:
            category = (
                category_from_name(name) if category_from_name(name) == StatusCategory.WAITING else None
            )
            jira = JIRA_CATEGORIES.get(str(categories.get(ident, "")))
            category = category or jira or category_from_name(name)
            if category is None:
                unknown.append((ident, name))
            else:
                mapped.append((ident, category, name))
        return StatusGuess(mapped, unknown)
    wanted = {c.name.casefold() for c in chosen}
    names: dict[str, str] = {}
    where: dict[str, list[str]] = {}
    containers_seen: list[str] = []
    for ident, shown in found.statuses:
        if kind == "asana" and ident == "completed":
            continue
        if shown.endswith(" (archived list)"):
            continue
        container, _, name = shown.rpartition(" / ")
        if container and wanted and container.casefold() not in wanted:
            continue
        names.setdefault(name.casefold(), name)
        where.setdefault(name.casefold(), [])
        if container and container not in where[name.casefold()]:
            where[name.casefold()].append(container)
        if container and container not in containers_seen:
            containers_seen.append(container)
    for folded, name in names.items():
        on = where[folded]
        note = f"only on {', '.join(on)}" if on and len(on) < len(containers_seen) else ""
        category = category_from_name(name)
        if category is None:
            unknown.append((name, note))
        else:
            mapped.append((name, category, note))
    if kind == "asana" and any(ident == "completed" for ident, _ in found.statuses):
        mapped.append(("completed", StatusCategory.DONE, "any task marked complete"))
    return StatusGuess(mapped, unknown)


# ---- fields --------------------------------------------------------------------------------------------


def _base_type(kind: str) -> str:
    return re.split(r"[ ,;(]", kind, maxsplit=1)[0].lower()


def _plain_type(kind: str) -> str:
    return kind.split(";", 1)[0].strip()


def guess_fields(fields: Sequence[DiscoveredField]) -> dict[str, DiscoveredField]:
    """`value` and `effort` fields guessed from names, number fields first."""
    found: dict[str, DiscoveredField] = {}
    for role, names in (("value", VALUE_NAMES), ("effort", EFFORT_NAMES)):
        best: tuple[int, int, DiscoveredField] | None = None
        for candidate in fields:
            name = candidate.name.strip().casefold()
            if any(hint in name for hint in RANK_HINTS):
                continue
            if name in names:
                score = names.index(name)
            elif role == "value" and re.search(r"\bvalue\b", name):
                score = len(names)
            else:
                continue
            number = 0 if _base_type(candidate.type) == "number" else 1
            key = (number, score, candidate)
            if best is None or key[:2] < best[:2]:
                best = key
        if best is not None:
            found[role] = best[2]
    return found


def write_candidates(fields: Sequence[DiscoveredField]) -> dict[str, list[DiscoveredField]]:
    """Fields that look meant for the bridge to write: number fields named rank, text fields for OKRs."""
    rank = [
        f
        for f in fields
        if _base_type(f.type) == "number" and any(h in f.name.casefold() for h in RANK_HINTS)
    ]
    okr = [
        f
        for f in fields
        if _base_type(f.type) in TEXT_TYPES and any(h in f.name.casefold() for h in OKR_HINTS)
    ]
    return {"rank_field": _unique(rank), "okr_field": _unique(okr)}


def _unique(fields: Sequence[DiscoveredField]) -> list[DiscoveredField]:
    seen: set[str] = set()
    out = []
    for f in fields:
        if f.name.casefold() not in seen:
            seen.add(f.name.casefold())
            out.append(f)
    return out


# ---- the file ------------------------------------------------------------------------------------------


def q(value: str) -> str:
    """A TOML basic string."""
    return json.dumps(value, ensure_ascii=False)


def _field_ref(kind: str, f: DiscoveredField) -> str:
    # Jira names can repeat across field contexts, so its ids are safer; Trello ids differ per board.
    return f.id if kind == "jira" else f.name


def render(
    answers: Answers,
    found: Discovery,
    *,
    chosen: Sequence[Container],
    workspace: Container | None = None,
    store: str = "sqlite:///bridge.db",
) -> str:
    """The config text for one tracker and the default store."""
    name, kind = answers.name, answers.kind
    table = f"trackers.{name}"
    guess = guess_statuses(kind, found, chosen)
    lines = [
        f"# Milestone Bridge configuration, started by `bridge init` from what {kind} at {answers.url} has.",
        "# Review it, then: bridge check --config THIS_FILE --online; bridge pull; bridge sync --dry-run.",
        "# Every option is described in config.example.toml. Secrets are not in this file: it names the",
        "# environment variables that hold them. Keep it readable by its owner only (chmod 600).",
        "",
        "[store]",
        "# SQLite beside this file; for large setups, PostgreSQL (url_env names a variable with its URL).",
        f"url = {q(store)}",
        "",
        "[push]",
        "# Off to start with: pull and analyse only. Turn it on once the mapping below is right",
        "# (bridge sync --dry-run shows what would be written).",
        "enabled = false",
        "",
        f"[{table}]",
        f"kind = {q(kind)}",
        f"url = {q(answers.url)}",
    ]
    if kind == "jira":
        deployment = str(found.extra.get("deployment", ""))
        flavour = {"cloud": "cloud", "data center": "dc"}.get(deployment, "auto")
        lines.append(f"flavour = {q(flavour)}  # cloud | dc | auto (asks the site)")
        if answers.email_env:
            lines.append(f"email_env = {q(answers.email_env)}  # variable holding the account email")
        lines.append(f"token_env = {q(answers.token_env)}  # variable holding the API token / PAT")
    elif kind == "trello":
        lines.append(
            f"api_key_env = {q(answers.api_key_env or DEFAULT_API_KEY_ENV)}  # variable holding the API key"
        )
        lines.append(f"token_env = {q(answers.token_env)}  # variable holding the token")
    else:
        lines.append(f"token_env = {q(answers.token_env)}  # variable holding the personal access token")
    noun = {"jira": "projects", "trello": "boards", "asana": "projects"}[kind]
    key = "boards" if kind == "trello" else "projects"
    if kind == "asana":
        if workspace is not None:
            lines.append(f"workspace = {q(workspace.id)}  # {workspace.name}")
        else:
            lines.append('workspace = ""  # no workspace found: the workspace gid from bridge discover')
    lines.append(f"# The {noun} to read (bridge discover lists every one the token sees):")
    lines.append(f"{key} = [")
    for c in chosen:
        lines.append(f"    {q(c.id)},  # {c.name}")
    lines.append("]")
    lines.append(f"# team = {q(name)}  # the team of items no [[{table}.teams]] rule matches")
    lines.append("")

    lines.append(f"[{table}.status_map]")
    lines.append("# Each raw status -> todo | in_progress | waiting | done, in the workflow's order.")
    if kind == "jira":
        lines.append(
            "# Guessed from Jira's status categories (and 'blocked'/'waiting' in a name); ids win over names."
        )
    else:
        what = "lists" if kind == "trello" else "sections"
        lines.append(f"# Guessed from the {what}' names; keys are names, matched on every {key[:-1]}.")
    order = list(StatusCategory)
    for raw, category, note in sorted(guess.mapped, key=lambda m: order.index(m[1])):
        comment = f"  # {note}" if note and note != raw else ""
        lines.append(f"{q(raw)} = {q(category.value)}{comment}")
    if not any(category == StatusCategory.DONE for _, category, _ in guess.mapped):
        lines.append("# No status looked done: map at least one to done, or `bridge check` refuses the file.")
    if guess.unknown:
        lines.append("# Not guessed; map those that matter (items in an unmapped status are skipped):")
        for raw, note in guess.unknown:
            comment = f"  # {note}" if note and note != raw else ""
            lines.append(f'# {q(raw)} = "todo | in_progress | waiting | done"{comment}')
    lines.append("")

    lines.extend(_milestones(kind, table))
    lines.extend(_fields(kind, table, found.fields))
    lines.extend(_write(kind, table, found.fields))
    return "\n".join(align(line) for line in lines).rstrip("\n") + "\n"


COMMENT_COLUMN = 40


def align(line: str) -> str:
    """`key = value  # note` with the note at `COMMENT_COLUMN` (or after the value, when longer)."""
    start = 2 if line.startswith("# ") and " = " in line else 0
    if start == 0 and line.startswith("#"):
        return line
    quoted = False
    index = start
    while index < len(line):
        char = line[index]
        if quoted and char == "\\":
            index += 2
            continue
        if char == '"':
            quoted = not quoted
        elif char == "#" and not quoted:
            code, note = line[:index].rstrip(), line[index:]
            return f"{code:<{COMMENT_COLUMN - 1}} {note}"
        index += 1
    return line


def _milestones(kind: str, table: str) -> list[str]:
    if kind == "jira":
        body = [
            'source = "epic"  # epic | issue_type (with issue_type = "...") | fix_version',
        ]
        tasks = ['attach = "parent"  # parent | epic_link (Data Center) | fix_version']
    elif kind == "trello":
        body = [
            'source = "label_prefix"  # label_prefix (labels "M:<name>") | list (with list = "...")',
            'label_prefix = "M:"',
        ]
        tasks = ['attach = "label"  # label | attachment']
    else:
        body = ['source = "subtype"  # subtype (milestone tasks) | section | parent']
        tasks = ['attach = "dependency"  # dependency | parent | section | field']
    return [
        f"[{table}.milestones]",
        "# What counts as a milestone, and how a task names its milestone.",
        *body,
        "",
        f"[{table}.tasks]",
        *tasks,
        "",
    ]


def _fields(kind: str, table: str, fields: Sequence[DiscoveredField]) -> list[str]:
    guessed = guess_fields(fields)
    lines = [
        f"[{table}.fields]",
        "# The custom fields holding a milestone's value and effort (id or name), guessed from names.",
    ]
    for role in ("value", "effort"):
        found = guessed.get(role)
        if found is None:
            lines.append(f'# {role} = "..."  # none found by name; see bridge discover')
        else:
            ref = _field_ref(kind, found)
            label = f"{found.name}, " if ref != found.name else ""
            lines.append(f"{role} = {q(ref)}  # {label}{_plain_type(found.type)}")
    lines.append("")
    return lines


def _write(kind: str, table: str, fields: Sequence[DiscoveredField]) -> list[str]:
    candidates = write_candidates(fields)
    lines = [
        f"[{table}.write]",
        "# What the bridge writes back (once [push] enabled = true). It writes no field until one is named:",
        "# rank_field: a number field receiving each milestone's value rank;",
        "# okr_field: a text field receiving the linked key result.",
        '# rank_value: what the rank field holds: "score" changes only with the milestone\'s own value',
        '# and effort; "position" (#1, #2, ...) rewrites every milestone below one that moves.',
        'rank_value = "score"',
    ]
    for key, found in candidates.items():
        if found:
            shown = ", ".join(f"{f.name} ({_plain_type(f.type)})" for f in found)
            lines.append(f"# {key} = {q(_field_ref(kind, found[0]))}  # candidates: {shown}")
        else:
            lines.append(
                f'# {key} = "..."  # no candidate found by name; create one, or pick from bridge discover'
            )
    lines += [
        "okr_links = true  # also add a link to the key result's page",
        "labels = true  # add/remove mb-bottleneck and mb-at-risk labels",
    ]
    return lines


# ---- asking --------------------------------------------------------------------------------------------


Ask = Callable[[str, str | None], str]
"""Prompt with an optional default; returns the answer."""


def check_name(name: str) -> str:
    if not TRACKER_NAME.match(name):
        raise UserError(
            f"{name!r} is not a tracker name (lowercase letters, digits, '-' and '_', at most 40)"
        )
    return name


def check_env(value: str, what: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise UserError(
            f"{what} takes the name of an environment variable (letters, digits and _), not the secret itself"
        )
    return value


def gather(
    *,
    kind: str | None,
    url: str | None,
    token_env: str | None,
    email_env: str | None,
    api_key_env: str | None,
    name: str | None,
    ask: Ask | None,
) -> Answers:
    """The answers from flags, asking for the rest; `ask` None (--yes) takes defaults or refuses."""

    def get(given: str | None, prompt: str, default: str | None, flag: str) -> str:
        if given:
            return given
        if ask is not None:
            return ask(prompt, default).strip()
        if default is None:
            raise UserError(f"{flag} is required with --yes")
        return default

    kind = get(kind, f"Tracker kind ({', '.join(KINDS)})", None, "--kind").casefold()
    if kind not in KINDS:
        raise UserError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    url = get(url, "Base URL", DEFAULT_URLS.get(kind), "--url")
    if not re.match(r"^https?://[^/\s]+", url):
        raise UserError(f"{url!r} is not an http(s) URL")
    token_env = check_env(
        get(token_env, "Environment variable holding the token", DEFAULT_TOKEN_ENV[kind], "--token-env"),
        "--token-env",
    )
    if kind == "jira" and not email_env and ask is not None:
        answer = ask(
            "Variable holding the account email (Jira Cloud; '-' for Data Center)", DEFAULT_EMAIL_ENV
        )
        email_env = None if answer.strip() in ("", "-") else answer.strip()
    if kind == "trello":
        api_key_env = get(
            api_key_env, "Environment variable holding the API key", DEFAULT_API_KEY_ENV, "--api-key-env"
        )
    for value, flag in ((email_env, "--email-env"), (api_key_env, "--api-key-env")):
        if value:
            check_env(value, flag)
    name = check_name(get(name, "Name of this tracker in the config", kind, "--name"))
    return Answers(
        kind=kind,
        url=url.rstrip("/"),
        name=name,
        token_env=token_env,
        email_env=email_env if kind == "jira" else None,
        api_key_env=api_key_env if kind == "trello" else None,
    )


def choose(
    kind: str, found: Discovery, ask: Ask | None, show: Callable[[str], None]
) -> tuple[list[Container], Container | None]:
    """The containers to read: all with --yes, else those the admin picks (and Asana's workspace)."""
    listed = containers(kind, found)
    workspace: Container | None = None
    items = listed.items
    if kind == "asana":
        if not listed.workspaces:
            raise UserError("the token sees no Asana workspace")
        workspace = listed.workspaces[0]
        if len(listed.workspaces) > 1 and ask is not None:
            show("Workspaces:")
            for i, w in enumerate(listed.workspaces, 1):
                show(f"  {i}. {w.name} ({w.id})")
            workspace = pick(listed.workspaces, ask("Workspace (number, id or name)", "1"))[0]
        items = [c for c in items if c.workspace == workspace.id]
    noun = "boards" if kind == "trello" else "projects"
    if not items:
        raise UserError(f"the token sees no {noun}; nothing to write a config for")
    if ask is None or len(items) == 1:
        return items, workspace
    show(f"{noun.capitalize()} found:")
    for i, c in enumerate(items, 1):
        show(f"  {i}. {c.name} ({c.id})")
    return pick(
        items, ask(f"{noun.capitalize()} to read (numbers, ids or names, comma-separated; all)", "all")
    ), workspace


def write_config(path: Path, text: str, *, force: bool) -> None:
    """Write the file readable by its owner only; an existing file is kept unless `force`."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        handle = os.open(path, flags, 0o600)
    except FileExistsError:
        raise UserError(f"{path} exists; pass --force to overwrite it") from None
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        file.write(text)
    if force:
        path.chmod(0o600)
