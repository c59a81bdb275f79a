"""Goals the bridge creates for adopted OKR drafts (`bridge okr adopt --asana-goal`).

Idempotent, also when an answer is lost or two processes adopt the same draft: the goal's notes carry
the draft's marker, and the workspace's goals are listed for it before one is created (and again after a
creation whose answer did not arrive, before reporting the failure); supporting relationships already
on the goal are read and only the missing ones added (Asana keeps one relationship per pair anyway).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from bridge.errors import RetriableAPIError
from bridge.goals import AdoptedGoal, GoalRequest
from bridge_asana.config import AsanaTrackerConfig
from bridge_asana.mapping import record_gid
from bridge_asana.session import PAGE_LIMIT, Action, AsanaSession

log = logging.getLogger(__name__)


def adopt_goal(session: AsanaSession, config: AsanaTrackerConfig, request: GoalRequest) -> AdoptedGoal:
    """Find or create the goal of `request` in the workspace, then link its supporting tasks."""
    goal = _find(session, config, request.marker)
    created = goal is None
    if goal is None:
        goal = _settle(session, config, request.marker, _create(session, config, request))
    linked_before = _supporting(session, goal)
    missing = [task for task in dict.fromkeys(request.supporting) if task not in linked_before]
    actions = [
        Action(f"/goals/{goal}/addSupportingRelationship", {"supporting_resource": task}, method="post")
        for task in missing
    ]
    if request.parent is not None and goal not in _supporting(session, request.parent):
        actions.append(
            Action(
                f"/goals/{request.parent}/addSupportingRelationship",
                {"supporting_resource": goal},
                method="post",
            )
        )
    session.batches(actions, absent=())
    return AdoptedGoal(
        remote_id=goal,
        url=None,
        created=created,
        linked=len(missing),
        already_linked=len(request.supporting) - len(missing),
    )


def _find(session: AsanaSession, config: AsanaTrackerConfig, marker: str) -> str | None:
    found = _marked(session, config, marker)
    return found[0] if found else None


def _marked(session: AsanaSession, config: AsanaTrackerConfig, marker: str) -> list[str]:
    """The gids of the workspace's goals whose notes carry `marker`, oldest (lowest gid) first."""
    listing = Action("/goals", {"workspace": config.workspace}, ("name", "notes"), limit=PAGE_LIMIT)
    goals = session.collect([listing])[0] or []
    return sorted(
        (
            gid
            for goal in goals
            if isinstance(goal, dict) and marker in str(goal.get("notes") or "")
            if (gid := record_gid(goal))
        ),
        key=lambda gid: (len(gid), gid),
    )


def _settle(session: AsanaSession, config: AsanaTrackerConfig, marker: str, made: str) -> str:
    """After making goal `made`: when another process adopting the same draft made one too, every
    process keeps the oldest and deletes its own (which nobody else has linked to yet)."""
    found = _marked(session, config, marker)
    if found and found[0] != made:
        log.info("%s: goal %s was made twice for %s; keeping %s", session.name, made, marker, found[0])
        session.delete_goal(made)
        return found[0]
    return made


def _create(session: AsanaSession, config: AsanaTrackerConfig, request: GoalRequest) -> str:
    data: dict[str, Any] = {
        "name": request.name,
        "notes": f"{request.notes}\n\n{request.marker}",
        "workspace": config.workspace,
    }
    if config.okrs is not None and config.okrs.time_period:
        data["time_period"] = config.okrs.time_period  # so the next pull reads it with the other goals
    try:
        return str(session.create_goal(data)["gid"])
    except RetriableAPIError:
        # The goal may have been made and its answer lost: look before saying it failed.
        found = _find(session, config, request.marker)
        if found is None:
            raise
        log.info("%s: goal for %s found after a lost answer", session.name, request.marker)
        return found


def _supporting(session: AsanaSession, goal: str) -> set[str]:
    fields = ("supporting_resource.resource_type",)
    action = Action("/goal_relationships", {"supported_goal": goal}, fields, limit=PAGE_LIMIT)
    relations: Sequence[Any] = session.collect([action])[0] or []
    found = set()
    for relation in relations:
        resource = relation.get("supporting_resource") if isinstance(relation, dict) else None
        gid = record_gid(resource) if isinstance(resource, dict) else None
        if gid:
            found.add(gid)
    return found
