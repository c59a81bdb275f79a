"""`bridge okr adopt`: a drafted key result becomes a real one, in the config file or as an Asana goal.

Either way every member milestone (of any tracker) is linked to the new key result with origin
`confirmed`, so the next cycle writes the links back as for any key result; the draft is marked adopted.
Adopting into the config twice is refused (the draft names what it became); adopting as a goal again
finds the goal made before and adds only the supporting links it lacks.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TextIO

from bridge.analytics.drafts import draft_title
from bridge.config import CONFIG_SOURCE, BridgeConfig, parse_config
from bridge.connector import ConnectorRegistry
from bridge.domain import Milestone, Ref
from bridge.errors import UserError
from bridge.goals import AdoptedGoal, GoalAdopter, GoalRequest
from bridge.okr_config import NewKeyResult, add_key_result
from bridge.store import Store
from bridge.store.drafts import StoredDraft, mark_adopted, read_drafts
from bridge.store.okr_links import confirm_link
from bridge.store.snapshot import read_milestones
from bridge.text import json_terminal_safe, terminal_safe

MARKER = "milestone-bridge draft"
"""Goals made for a draft carry `milestone-bridge draft <id>` in their notes."""


@dataclass(frozen=True, slots=True)
class AdoptOptions:
    objective: str | None = None
    new_objective: str | None = None
    kr_id: str | None = None
    title: str | None = None
    target: float | None = None
    drop: Sequence[str] = ()
    asana_goal: bool = False
    tracker: str | None = None
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class _Chosen:
    draft: StoredDraft
    objective: StoredDraft | None
    members: list[Milestone]
    title: str


def adopt_command(
    cfg: BridgeConfig,
    draft_id: str,
    options: AdoptOptions,
    *,
    now: datetime,
    as_json: bool = False,
    out: TextIO | None = None,
) -> int:
    """Adopt draft `draft_id`; the exit code (1 when the config file could not be written). With
    `as_json`, one JSON document: `{"draft", "outcome", "message", ...}` instead of the sentence."""
    said = _Output(out or sys.stdout, as_json, draft_id)
    if options.objective and options.new_objective:
        raise UserError("give --objective or --new-objective, not both")
    store = Store.open(cfg, create=False)
    try:
        with store.read() as conn:
            chosen = _choose(read_drafts(conn), read_milestones(conn), draft_id, options)
        if options.asana_goal:
            return _as_goal(cfg, store, chosen, options, now=now, out=said)
        return _into_config(cfg, store, chosen, options, now=now, out=said)
    finally:
        store.close()


class _Output:
    """Where the command's outcome goes: a sentence, or with `--json` one JSON document."""

    def __init__(self, out: TextIO, as_json: bool, draft: str = "") -> None:
        self.out, self.as_json, self.draft = out, as_json, draft

    def say(self, sentence: str, **document: object) -> None:
        if self.as_json:
            body = {"draft": self.draft, **document, "message": sentence.strip()}
            self.out.write(json_terminal_safe(json.dumps(body, indent=2, ensure_ascii=False)) + "\n")
        else:
            self.out.write(sentence)


def _choose(
    drafts: Sequence[StoredDraft], milestones: Sequence[Milestone], draft_id: str, options: AdoptOptions
) -> _Chosen:
    by_id = {d.id: d for d in drafts}
    draft = by_id.get(draft_id)
    if draft is None or draft.kind != "key_result":
        known = ", ".join(d.id for d in drafts if d.kind == "key_result") or "none (run `bridge okr draft`)"
        raise UserError(f"no drafted key result {draft_id!r}; drafted: {known}")
    by_ref = {f"{m.source}:{m.remote_id}": m for m in milestones}
    members = [by_ref[ref] for ref in draft.members if ref in by_ref]
    for name in options.drop:
        kept = [m for m in members if name not in (m.key, f"{m.source}:{m.remote_id}")]
        if len(kept) == len(members):
            listed = ", ".join(m.key for m in members)
            raise UserError(f"--drop {name!r}: not a member of {draft.id}; members: {listed}")
        members = kept
    if not members:
        raise UserError(f"{draft.id} has no member milestones left to link")
    title = options.title or draft_title(draft.title, options.target)
    objective = by_id.get(draft.parent_id or "")
    return _Chosen(draft, objective, members, title)


def _link_members(store: Store, chosen: _Chosen, key_result: Ref, adopted_as: str, *, now: datetime) -> int:
    """Link every member to `key_result` (confirmed) and mark the draft adopted; returns the new links."""
    added = 0
    with store.write() as conn:
        for milestone in chosen.members:
            before = confirm_link(conn, Ref(milestone.source, milestone.remote_id), key_result, now=now)
            added += before is None
        mark_adopted(conn, chosen.draft.id, adopted_as, now=now)
    return added


# --- into the config file ----------------------------------------------------------------------------


def _into_config(
    cfg: BridgeConfig, store: Store, chosen: _Chosen, options: AdoptOptions, *, now: datetime, out: _Output
) -> int:
    if chosen.draft.adopted_as:
        raise UserError(f"{chosen.draft.id} is already adopted as {chosen.draft.adopted_as}")
    path = cfg.path
    if path is None:
        raise UserError("the config was not read from a file, so there is none to add the key result to")
    objective, new_objective = _objective_for(cfg, chosen, options)
    key_result = NewKeyResult(
        title=chosen.title,
        target=options.target,
        unit=chosen.draft.unit if options.target is not None else None,
        keywords=chosen.draft.terms[:6],
        id=options.kr_id,
    )
    adoption = add_key_result(
        path.read_text(encoding="utf-8"), key_result, objective=objective, new_objective=new_objective
    )
    # The edited file must still be a valid config (say, a --target equal to start is refused).
    parse_config(adoption.text, ConnectorRegistry.default(), source=str(path), path=path.resolve())
    if options.dry_run:
        members = ", ".join(m.key for m in chosen.members)
        out.say(
            f"dry run: nothing written. {terminal_safe(str(path))} would get, in its [okrs]:\n\n"
            f"{terminal_safe(adoption.snippet, single_line=False)}\n"
            f"and {len(chosen.members)} milestones would be linked to {adoption.key_result_id}: "
            f"{terminal_safe(members)}\n",
            outcome="dry_run", key_result=adoption.key_result_id, snippet=adoption.snippet,
        )  # fmt: skip
        return 0
    if not _write(path, adoption.text):
        out.say(
            f"{terminal_safe(str(path))} cannot be written (read-only?): nothing was adopted. Add this to "
            "its [okrs], then link the milestones with "
            f"`bridge okr confirm MILESTONE {adoption.key_result_id}`:\n\n"
            f"{terminal_safe(adoption.snippet, single_line=False)}",
            outcome="not_written", key_result=adoption.key_result_id, snippet=adoption.snippet,
        )  # fmt: skip
        return 1
    ref = Ref(CONFIG_SOURCE, adoption.key_result_id)
    added = _link_members(store, chosen, ref, f"config:{adoption.key_result_id}", now=now)
    if adoption.new_objective and chosen.objective is not None and not options.new_objective:
        with store.write() as conn:
            mark_adopted(conn, chosen.objective.id, f"config:{adoption.objective_id}", now=now)
    where = "a new objective" if adoption.new_objective else "objective"
    out.say(
        terminal_safe(
            f"{chosen.draft.id} adopted as key result {adoption.key_result_id} ({chosen.title}) under "
            f"{where} {adoption.objective_id} in {path}; {len(chosen.members)} milestones linked ({added} "
            "new links). The next cycle writes the links back."
        )
        + "\n",
        outcome="adopted", key_result=f"{CONFIG_SOURCE}:{adoption.key_result_id}",
        objective=adoption.objective_id, new_objective=adoption.new_objective,
        milestones=len(chosen.members), new_links=added,
    )  # fmt: skip
    return 0


def _objective_for(
    cfg: BridgeConfig, chosen: _Chosen, options: AdoptOptions
) -> tuple[str | None, str | None]:
    """(existing objective id, or None and the title of a new one)."""
    if options.objective or options.new_objective:
        return options.objective, options.new_objective
    drafted = chosen.objective
    if drafted is not None and (drafted.adopted_as or "").startswith("config:"):
        objective_id = (drafted.adopted_as or "").split(":", 1)[1]
        if any(o.id == objective_id for o in cfg.okrs.objectives):
            return objective_id, None
    return None, drafted.title if drafted is not None else "Drafted objective"


def _write(path: Path, text: str) -> bool:
    """Write the edited config in place (keeping the file, its owner and mode); False when it cannot be
    (not writable, or on a file system mounted read-only)."""
    if not os.access(path, os.W_OK):
        return False
    try:
        with open_in_place(path) as handle:
            handle.seek(0)
            handle.write(text)
            handle.truncate()
    except OSError:
        return False
    return True


def open_in_place(path: Path) -> TextIO:
    return path.open("r+", encoding="utf-8")


# --- as an Asana goal --------------------------------------------------------------------------------


def _as_goal(
    cfg: BridgeConfig, store: Store, chosen: _Chosen, options: AdoptOptions, *, now: datetime, out: _Output
) -> int:
    from bridge.sync.connection import TrackerConnection

    name = _goal_tracker(cfg, options.tracker)
    tracker = cfg.tracker(name)
    if not tracker.write.okr_links:
        raise UserError(
            f"tracker {name!r} has write.okr_links = false: the bridge links no task to a goal there, so it "
            "adopts no draft as a goal either; adopt it into the config instead"
        )
    opt_out = cfg.push.opt_out_label
    mine = [m for m in chosen.members if m.source == name]
    supporting = [m.remote_id for m in mine if opt_out not in m.labels]
    if options.dry_run:
        out.say(
            terminal_safe(
                f"dry run: nothing written. {name} would get a goal {chosen.title!r} (or the one an earlier "
                f"adoption made), supported by {len(supporting)} of its tasks"
                + (
                    f" ({len(mine) - len(supporting)} carrying {opt_out!r} left alone)"
                    if len(mine) > len(supporting)
                    else ""
                )
                + f"; {len(chosen.members)} milestones would be linked to it in the store."
            )
            + "\n",
            outcome="dry_run",
            supporting=len(supporting),
        )
        return 0
    members = "\n".join(f"- {m.key}: {m.title}" for m in chosen.members)
    request = GoalRequest(
        name=chosen.title,
        notes=f"Drafted by Milestone Bridge from these planned milestones:\n{members}",
        marker=f"{MARKER} {chosen.draft.id}",
        supporting=supporting,
        parent=options.objective,
    )
    connection = TrackerConnection(cfg, name)
    try:
        connector = connection.connector()
        if not isinstance(connector, GoalAdopter):
            raise UserError(f"tracker {name!r} ({cfg.tracker(name).kind}) cannot hold goals")
        goal: AdoptedGoal = connector.adopt_goal(request)
    finally:
        connection.close()
    added = _link_members(store, chosen, Ref(name, goal.remote_id), f"{name}:{goal.remote_id}", now=now)
    state = "created" if goal.created else "found from an earlier adoption"
    out.say(
        terminal_safe(
            f"{chosen.draft.id} adopted as goal {goal.remote_id} of {name} ({chosen.title}): {state}; "
            f"{goal.linked} supporting tasks linked now, {goal.already_linked} already; "
            f"{len(chosen.members)} milestones linked in the store ({added} new links)."
        )
        + "\n",
        outcome="adopted", key_result=f"{name}:{goal.remote_id}", goal_created=goal.created,
        supporting_linked=goal.linked, supporting_already=goal.already_linked,
        milestones=len(chosen.members), new_links=added,
    )  # fmt: skip
    return 0


def _goal_tracker(cfg: BridgeConfig, wanted: str | None) -> str:
    asana = sorted(name for name, t in cfg.trackers.items() if t.kind == "asana")
    if wanted is not None:
        if wanted not in asana:
            raise UserError(
                f"--tracker {wanted!r} is not an Asana tracker; Asana trackers: {', '.join(asana) or 'none'}"
            )
        return wanted
    if len(asana) != 1:
        raise UserError(
            f"name the Asana tracker with --tracker; the config has {len(asana)}: "
            f"{', '.join(asana) or 'none'}"
        )
    return asana[0]
