"""The `[trackers.NAME]` table of Trello boards."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, Literal

from pydantic import Field

from bridge.config import EnvName, HttpUrl, Loc, NonEmpty, Section, TrackerConfig


class TrelloMilestones(Section):
    source: Literal["label_prefix", "list"] = "label_prefix"
    """Cards labelled `<label_prefix>name` belong to milestone `name`; or cards in one list are milestones."""
    label_prefix: str = "M:"
    list: str | None = None

    def problems(self) -> Iterator[tuple[Loc, str]]:
        if self.source == "list" and not self.list:
            yield ("list",), "is required when source is 'list'"
        if self.source == "label_prefix" and not self.label_prefix:
            yield ("label_prefix",), "must not be empty when source is 'label_prefix'"


class TrelloTasks(Section):
    attach: Literal["label", "attachment"] = "label"
    """A card joins a milestone through the milestone's label, or by attaching the milestone card."""


DEFAULT_PHRASES = ("blocked by", "depends on")


class TrelloDependencies(Section):
    phrases: list[NonEmpty] = Field(default_factory=lambda: list(DEFAULT_PHRASES))
    """A description line or an attachment starting with one of these (any case) that links a task
    card of a configured board makes that card a blocker of the card it is on."""

    def problems(self) -> Iterator[tuple[Loc, str]]:
        folded = [phrase.strip().casefold() for phrase in self.phrases]
        for index, phrase in enumerate(folded):
            if not phrase:
                yield ("phrases", index), "must not be blank"
            elif phrase in folded[:index]:
                yield ("phrases", index), f"lists {phrase!r} twice"


class TrelloOkrs(Section):
    list: NonEmpty
    """Cards in this list are key results; their labels name the objective."""
    target_field: str | None = None
    current_field: str | None = None


class TrelloTrackerConfig(TrackerConfig):
    kind: Literal["trello"]
    secret_fields: ClassVar[tuple[str, ...]] = ("api_key_env", "token_env")
    match_keys: ClassVar[tuple[str, ...]] = ("board", "list", "label", "field")

    url: HttpUrl = "https://api.trello.com"
    api_key_env: EnvName
    token_env: EnvName
    boards: list[NonEmpty] = Field(min_length=1)
    """Board ids or short links."""
    milestones: TrelloMilestones = Field(default_factory=TrelloMilestones)
    tasks: TrelloTasks = Field(default_factory=TrelloTasks)
    dependencies: TrelloDependencies = Field(default_factory=TrelloDependencies)
    okrs: TrelloOkrs | None = None

    def problems(self) -> Iterator[tuple[Loc, str]]:
        yield from super().problems()
        if len(set(self.boards)) != len(self.boards):
            yield ("boards",), "lists a board twice"
