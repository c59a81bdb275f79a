"""Adding an adopted key result to the config file's `[okrs]`, edited in place: every comment, blank
line and key order of the file is kept (`tomlkit`), only the new tables are added.

The key result joins an existing objective (`--objective`), or a new one; its id defaults to the next
free `KRn.m` of its objective (`n` from the objective's `On` id, else its position), and an objective's
to the next free `On`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import tomlkit
from tomlkit.items import AoT, Comment, Table, Whitespace

from bridge.errors import UserError

_OBJECTIVE_ID = re.compile(r"^O(\d+)$")


@dataclass(frozen=True, slots=True)
class NewKeyResult:
    title: str
    target: float | None = None
    unit: str | None = None
    keywords: tuple[str, ...] = ()
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Adoption:
    text: str
    """The whole file, edited."""
    snippet: str
    """Just the added tables, to paste by hand when the file cannot be written."""
    objective_id: str
    key_result_id: str
    new_objective: bool


def add_key_result(
    text: str, key_result: NewKeyResult, *, objective: str | None = None, new_objective: str | None = None
) -> Adoption:
    """`text` (a config file) with `key_result` added under objective id `objective`, or under a new
    objective titled `new_objective`."""
    document = tomlkit.parse(text)
    objectives = _objectives(document)
    ids = _ids(objectives)
    if objective is not None:
        found = [t for t in objectives if str(t.get("id")) == objective]
        if not found:
            known = ", ".join(str(t.get("id")) for t in objectives) or "none"
            raise UserError(f"no objective {objective!r} in the config's [okrs]; objectives: {known}")
        table, created = found[0], False
    else:
        title = new_objective or "Drafted objective"
        table = tomlkit.table()
        table.add("id", _next_objective_id(ids))
        table.add("title", title)
        before = _last_table(objectives)
        trailing = _pop_trailing(before) if before is not None else []
        objectives.append(table)
        table = objectives[-1]
        table.value.body.extend(trailing)
        created = True
    objective_id = str(table["id"])
    number = _objective_number(objective_id, objectives)
    kr_id = key_result.id or _next_kr_id(number, ids)
    if kr_id in ids:
        raise UserError(f"the config already uses id {kr_id!r}; give another with --id")
    results = table.get("key_results")
    if results is None:
        trailing = _pop_trailing(table)
        table.append("key_results", tomlkit.aot())
        results = table["key_results"]
    else:
        trailing = _pop_trailing(results[-1])
    results.append(_kr_table(kr_id, key_result))
    results[-1].value.body.extend(trailing)
    snippet = _snippet(objective_id, table, kr_id, key_result, created)
    return Adoption(tomlkit.dumps(document), snippet, objective_id, kr_id, created)


def _objectives(document: Any) -> AoT:
    okrs = document.get("okrs")
    if okrs is None:
        document.append("okrs", tomlkit.table(is_super_table=True))
        okrs = document["okrs"]
    if not isinstance(okrs, Table):
        raise UserError("the config's `okrs` is not a table")
    objectives = okrs.get("objectives")
    if objectives is None:
        okrs.append("objectives", tomlkit.aot())
        objectives = okrs["objectives"]
    if not isinstance(objectives, AoT):
        raise UserError("the config's `okrs.objectives` is not an array of tables ([[okrs.objectives]])")
    return objectives


def _last_table(objectives: AoT) -> Table | None:
    """The table written last in the file of the objectives (its last key result's, if it has any)."""
    if not len(objectives):
        return None
    last = objectives[-1]
    results = last.get("key_results")
    return results[-1] if results is not None and len(results) else last


def _pop_trailing(table: Table) -> list[tuple[Any, Any]]:
    """Take the comments and blank lines that end `table` (tomlkit keeps what heads the next table at
    the end of the one before), leaving one blank line, so they can follow what is inserted after it."""
    body = table.value.body
    trailing = []
    while body and body[-1][0] is None and isinstance(body[-1][1], Whitespace | Comment):
        trailing.append(body.pop())
    table.add(tomlkit.nl())
    return list(reversed(trailing))


def _ids(objectives: Iterable[Any]) -> set[str]:
    ids = set()
    for objective in objectives:
        ids.add(str(objective.get("id")))
        ids.update(str(kr.get("id")) for kr in objective.get("key_results") or [])
    return ids


def _next_objective_id(ids: set[str]) -> str:
    numbers = [int(m.group(1)) for i in ids if (m := _OBJECTIVE_ID.match(i))]
    return f"O{max(numbers, default=0) + 1}"


def _objective_number(objective_id: str, objectives: AoT) -> int:
    match = _OBJECTIVE_ID.match(objective_id)
    if match:
        return int(match.group(1))
    position = [str(t.get("id")) for t in objectives].index(objective_id)
    return position + 1


def _next_kr_id(number: int, ids: set[str]) -> str:
    pattern = re.compile(rf"^KR{number}\.(\d+)$")
    used = [int(m.group(1)) for i in ids if (m := pattern.match(i))]
    return f"KR{number}.{max(used, default=0) + 1}"


def _kr_table(kr_id: str, key_result: NewKeyResult) -> Table:
    table = tomlkit.table()
    table.add("id", kr_id)
    table.add("title", key_result.title)
    if key_result.target is not None:
        table.add("target", key_result.target)
    if key_result.unit:
        table.add("unit", key_result.unit)
    if key_result.keywords:
        table.add("keywords", list(key_result.keywords))
    return table


def _snippet(objective_id: str, objective: Table, kr_id: str, key_result: NewKeyResult, created: bool) -> str:
    lines = []
    if created:
        lines += ["[[okrs.objectives]]", f"id = {tomlkit.string(objective_id).as_string()}"]
        lines.append(f"title = {tomlkit.string(str(objective['title'])).as_string()}")
        lines.append("")
    else:
        lines.append(f"# under the [[okrs.objectives]] with id = {objective_id!r}:")
    lines.append("[[okrs.objectives.key_results]]")
    lines.extend(f"{k} = {v.as_string()}" for k, v in _kr_table(kr_id, key_result).items())
    return "\n".join(lines) + "\n"
