"""The `[trackers.NAME]` table of an Asana workspace."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, Literal

from pydantic import Field

from bridge.config import EnvName, HttpUrl, Loc, NonEmpty, Section, TrackerConfig


class AsanaMilestones(Section):
    source: Literal["subtype", "section", "parent"] = "subtype"
    """Milestone tasks (resource_subtype = milestone), the sections named below, or parent tasks."""
    sections: list[NonEmpty] = Field(default_factory=list)

    def problems(self) -> Iterator[tuple[Loc, str]]:
        if self.source == "section" and not self.sections:
            yield ("sections",), "is required when source is 'section'"


class AsanaTasks(Section):
    attach: Literal["dependency", "parent", "section", "field"] = "dependency"
    """A task joins the milestone that depends on it, its parent, its section, or the one a field names."""
    field: str | None = None

    def problems(self) -> Iterator[tuple[Loc, str]]:
        if self.attach == "field" and not self.field:
            yield ("field",), "is required when attach is 'field'"


class AsanaOkrs(Section):
    goals: bool = True
    """Read the workspace's goals as objectives (top level) and key results (sub-goals)."""
    time_period: str | None = None
    """Only goals of this time period (gid)."""


class AsanaTrackerConfig(TrackerConfig):
    kind: Literal["asana"]
    status_updates: ClassVar[bool] = True
    secret_fields: ClassVar[tuple[str, ...]] = ("token_env",)
    match_keys: ClassVar[tuple[str, ...]] = ("project", "section", "tag", "field")

    url: HttpUrl = "https://app.asana.com"
    token_env: EnvName
    """Variable holding a personal access token."""
    workspace: NonEmpty
    """The workspace gid."""
    projects: list[NonEmpty] = Field(min_length=1)
    milestones: AsanaMilestones = Field(default_factory=AsanaMilestones)
    tasks: AsanaTasks = Field(default_factory=AsanaTasks)
    okrs: AsanaOkrs | None = None

    def problems(self) -> Iterator[tuple[Loc, str]]:
        yield from super().problems()
        if self.milestones.source == "parent" and self.tasks.attach != "parent":
            yield ("tasks", "attach"), "must be 'parent' when milestones.source is 'parent'"
        if self.milestones.source == "section" and self.tasks.attach != "section":
            yield ("tasks", "attach"), "must be 'section' when milestones.source is 'section'"
        if len(set(self.projects)) != len(self.projects):
            yield ("projects",), "lists a project twice"
