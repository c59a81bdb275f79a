"""What a connector offers when its tracker keeps goals the bridge may create (`bridge okr adopt
--asana-goal`): one goal per adopted draft, and the tracker's member milestones linked as its supporting
work. Optional: a connector without it cannot take an adopted key result."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class GoalRequest:
    name: str
    notes: str
    marker: str
    """Text the goal's notes carry so that a goal made before (its answer perhaps lost) is found again,
    never made twice."""
    supporting: Sequence[str]
    """Remote ids of the milestones that support the goal."""
    parent: str | None = None
    """A goal the new one supports (its objective), if any."""


@dataclass(frozen=True, slots=True)
class AdoptedGoal:
    remote_id: str
    url: str | None
    created: bool
    """False when the goal was found from an earlier adoption."""
    linked: int
    """Supporting relationships added now."""
    already_linked: int


@runtime_checkable
class GoalAdopter(Protocol):
    def adopt_goal(self, request: GoalRequest) -> AdoptedGoal:
        """The goal `request` names, created once, with every supporting milestone linked once."""
        ...
