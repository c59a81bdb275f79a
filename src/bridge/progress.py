"""Progress of long pulls and pushes, reported to an observer.

The sync functions take an optional `progress` (a `Progress`); None, the default, reports nothing, so the
library and the daemon stay quiet. The CLI passes a `TerminalProgress` when stderr is a terminal: a rich
line per tracker with the stream being pulled, pages and items so far and the rate, then a bar of the
writes applied out of those planned.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress import Progress as RichProgress
from rich.text import Text

if TYPE_CHECKING:
    from bridge.domain import WriteOutcome


class Progress:
    """What a pull or push reports as it goes; every method does nothing here (override what you need).

    Counts are running totals for the tracker: `pulled` gets the pages and items stored so far over all
    its streams, `pushed` the writes applied so far out of those planned; `sent` gets each chunk's own
    outcomes.
    """

    def pull_started(self, tracker: str) -> None:
        """Tracker `tracker` starts pulling."""

    def stream_started(self, tracker: str, stream: str) -> None:
        """`tracker` starts reading `stream` (the census, which looks for deletions, is one too)."""

    def pulled(self, tracker: str, stream: str, pages: int, items: int) -> None:
        """A page of `stream` is stored."""

    def pull_finished(self, tracker: str, pages: int, items: int, error: str | None) -> None:
        """`tracker` has pulled everything it will (`error` says why it stopped early)."""

    def push_started(self, tracker: str, planned: int) -> None:
        """`tracker` is about to apply `planned` writes."""

    def pushed(self, tracker: str, done: int, planned: int) -> None:
        """`done` of the `planned` writes have been sent (succeeded or failed)."""

    def sent(self, tracker: str, outcomes: Sequence[WriteOutcome]) -> None:
        """A chunk of writes was sent; `outcomes` are theirs: each applied or not (`ok`), and read back
        from the tracker when its request's answer was lost (`read_back`)."""

    def push_finished(self, tracker: str, done: int, failed: int) -> None:
        """`tracker` has applied its writes."""

    def close(self) -> None:
        """Nothing more will be reported."""

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def for_terminal(stream: TextIO | None = None) -> Progress | None:
    """A `TerminalProgress` on `stream` (stderr by default) when it is a terminal, else None."""
    stream = sys.stderr if stream is None else stream
    try:
        interactive = stream.isatty()
    except (AttributeError, ValueError):
        interactive = False
    if not interactive:
        return None
    console = Console(file=stream, highlight=False)
    if console.is_dumb_terminal:
        return None
    return TerminalProgress(console)


class TerminalProgress(Progress):
    """Rich progress lines on `console`: while pulling, a spinner per tracker with the stream, items,
    pages and items per second (the totals are unknown while paging); while pushing, a bar of the writes
    applied out of those planned. Pulling and pushing use one live display each, one after the other."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._pulling: RichProgress | None = None
        self._pushing: RichProgress | None = None
        self._pull_tasks: dict[str, TaskID] = {}
        self._push_tasks: dict[str, TaskID] = {}

    # ---- pulling ---------------------------------------------------------------------------------------

    def pull_started(self, tracker: str) -> None:
        display = self._pull_display()
        self._pull_tasks[tracker] = display.add_task(f"{tracker}: pulling", total=None, pages=0, stream="")

    def stream_started(self, tracker: str, stream: str) -> None:
        task = self._pull_tasks.get(tracker)
        if task is not None and self._pulling is not None:
            self._pulling.update(task, stream=stream)

    def pulled(self, tracker: str, stream: str, pages: int, items: int) -> None:
        task = self._pull_tasks.get(tracker)
        if task is not None and self._pulling is not None:
            self._pulling.update(task, completed=items, pages=pages, stream=stream)

    def pull_finished(self, tracker: str, pages: int, items: int, error: str | None) -> None:
        task = self._pull_tasks.get(tracker)
        if task is not None and self._pulling is not None:
            state = "FAILED" if error else "pulled"
            self._pulling.update(
                task, description=f"{tracker}: {state}", total=items, completed=items, pages=pages, stream=""
            )
            self._pulling.stop_task(task)

    # ---- pushing ---------------------------------------------------------------------------------------

    def push_started(self, tracker: str, planned: int) -> None:
        self._stop_pulling()
        display = self._push_display()
        self._push_tasks[tracker] = display.add_task(f"{tracker}: pushing", total=planned)

    def pushed(self, tracker: str, done: int, planned: int) -> None:
        task = self._push_tasks.get(tracker)
        if task is not None and self._pushing is not None:
            self._pushing.update(task, completed=done, total=planned)

    def push_finished(self, tracker: str, done: int, failed: int) -> None:
        task = self._push_tasks.get(tracker)
        if task is not None and self._pushing is not None:
            note = f", {failed} failed" if failed else ""
            self._pushing.update(task, description=f"{tracker}: pushed{note}")
            self._pushing.stop_task(task)

    def close(self) -> None:
        self._stop_pulling()
        if self._pushing is not None:
            self._pushing.stop()
            self._pushing = None

    # ---- the displays ----------------------------------------------------------------------------------

    def _pull_display(self) -> RichProgress:
        if self._pulling is None:
            self._pulling = RichProgress(
                SpinnerColumn(finished_text="[green]✓"),
                TextColumn("{task.description}", markup=False),
                _CountsColumn(),
                TextColumn("{task.fields[stream]}", style="dim", markup=False),
                TimeElapsedColumn(),
                console=self.console,
                redirect_stdout=False,
            )
            self._pulling.start()
        return self._pulling

    def _push_display(self) -> RichProgress:
        if self._pushing is None:
            self._pushing = RichProgress(
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("writes"),
                TimeElapsedColumn(),
                console=self.console,
                redirect_stdout=False,
            )
            self._pushing.start()
        return self._pushing

    def _stop_pulling(self) -> None:
        if self._pulling is not None:
            self._pulling.stop()
            self._pulling = None


class _CountsColumn(ProgressColumn):
    """Items and pages pulled so far, and items per second."""

    def render(self, task: Task) -> Text:
        items, pages = int(task.completed), int(task.fields.get("pages", 0))
        text = Text(f"{items:,} item{'' if items == 1 else 's'} in {pages:,} page{'' if pages == 1 else 's'}")
        elapsed = task.elapsed
        if elapsed:
            text.append(f"  {items / elapsed:,.0f} items/s", style="cyan")
        return text
