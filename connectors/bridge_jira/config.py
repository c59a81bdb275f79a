"""The `[trackers.NAME]` table of a Jira site (Cloud or Data Center)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, Literal

from pydantic import Field

from bridge.config import EnvName, HttpUrl, Loc, NonEmpty, Section, TrackerConfig


class JiraMilestones(Section):
    source: Literal["epic", "issue_type", "fix_version"] = "epic"
    """Epics, issues of one type, or fix versions are the milestones."""
    issue_type: str | None = None

    def problems(self) -> Iterator[tuple[Loc, str]]:
        if self.source == "issue_type" and not self.issue_type:
            yield ("issue_type",), "is required when source is 'issue_type'"
        if self.source != "issue_type" and self.issue_type:
            yield ("issue_type",), f"is only read when source is 'issue_type', not {self.source!r}"


class JiraTasks(Section):
    attach: Literal["parent", "epic_link", "fix_version"] = "parent"
    """How a task names its milestone: its parent, the Epic Link field (Data Center), or its fix version."""
    epic_link_field: str | None = None
    """The Epic Link custom field id (for example customfield_10014), for attach = 'epic_link'."""
    issue_types: list[NonEmpty] = Field(default_factory=list)
    """Issue types that count as tasks; empty means every issue that is not a milestone."""

    def problems(self) -> Iterator[tuple[Loc, str]]:
        if self.attach == "epic_link" and not self.epic_link_field:
            yield ("epic_link_field",), "is required when attach is 'epic_link'"


class JiraOkrs(Section):
    """Objectives and key results kept as Jira issues."""

    key_result_type: NonEmpty
    objective_type: str | None = None
    link_type: NonEmpty = "relates to"
    """The issue link that ties a milestone to a key-result issue."""
    target_field: str | None = None
    current_field: str | None = None


class JiraTrackerConfig(TrackerConfig):
    kind: Literal["jira"]
    secret_fields: ClassVar[tuple[str, ...]] = ("email_env", "token_env")
    match_keys: ClassVar[tuple[str, ...]] = ("project", "component", "label", "issue_type", "epic", "field")

    url: HttpUrl
    flavour: Literal["auto", "cloud", "dc"] = "auto"
    """`auto` reads serverInfo.deploymentType."""
    email_env: EnvName | None = None
    """Variable holding the account email; with it, basic auth (Cloud), without it a bearer token (DC)."""
    token_env: EnvName
    """Variable holding the API token (Cloud) or personal access token (Data Center)."""
    projects: list[NonEmpty] = Field(min_length=1)
    jql: str | None = None
    """Extra JQL ANDed with the project filter, e.g. `labels != archived`."""
    milestones: JiraMilestones = Field(default_factory=JiraMilestones)
    tasks: JiraTasks = Field(default_factory=JiraTasks)
    okrs: JiraOkrs | None = None

    def problems(self) -> Iterator[tuple[Loc, str]]:
        yield from super().problems()
        if self.flavour == "cloud" and self.email_env is None:
            yield ("email_env",), "Jira Cloud API tokens need the account's email: name its variable here"
        if (self.tasks.attach == "fix_version") != (self.milestones.source == "fix_version"):
            yield (
                ("tasks", "attach"),
                "'fix_version' goes with milestones.source = 'fix_version' and only with it",
            )
        if len(set(self.projects)) != len(self.projects):
            yield ("projects",), "lists a project twice"
        status_field = self.write.kr_status_field
        if status_field is not None:
            if self.okrs is None:
                yield ("write", "kr_status_field"), "needs [okrs] here: key results kept as Jira issues"
            elif status_field.casefold() in {
                (name or "").casefold() for name in (self.okrs.current_field, self.okrs.target_field)
            }:
                yield (
                    ("write", "kr_status_field"),
                    f"{status_field!r} is where a key result's current or target value is read from; "
                    "the bridge never writes there: name another field, or leave it unset for the labels",
                )
