"""`bridge pull`, `sync`, `purge` and `explain`: the cycle and its parts, and why it decided what it did."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bridge.cli.shared import ConfigOption, JsonOption, one_run, print_json, read_config, store_session
from bridge.cli_errors import reports_errors
from bridge.text import json_terminal_safe, plural, terminal_markup, terminal_safe

if TYPE_CHECKING:
    from bridge.store.forecast_history import Point
    from bridge.sync.cycle import CycleResult
    from bridge.sync.explain import Explanation
    from bridge.sync.pull import PullResult


@reports_errors
def pull(
    config: ConfigOption = None,
    tracker: Annotated[str | None, typer.Option(help="Only this tracker (its name in the config).")] = None,
    full: Annotated[bool, typer.Option(help="Read everything again and look for deleted items.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Bring the trackers' milestones, tasks, histories and links into the store."""
    import dataclasses
    from datetime import UTC, datetime

    from bridge.sync.pull import pull_all

    cfg = read_config(config)
    with store_session(cfg, progress=True) as session, one_run(session.store, cfg, tracker, "pull") as guard:
        results = pull_all(
            session.store,
            cfg,
            now=datetime.now(UTC),
            tracker=tracker,
            full=full,
            progress=session.progress,
            guard=guard,
        )
    if as_json:
        print_json({"trackers": [{**dataclasses.asdict(r), "ok": r.ok} for r in results]})
    else:
        _print_pulls(results)
    if any(not result.ok for result in results):
        raise typer.Exit(1)


@reports_errors
def sync(
    config: ConfigOption = None,
    tracker: Annotated[str | None, typer.Option(help="Only this tracker (its name in the config).")] = None,
    dry_run: Annotated[bool, typer.Option(help="Print the plan as a table and write nothing.")] = False,
    force: Annotated[
        bool, typer.Option(help="Apply a plan that changes more than push.max_change_share of the items.")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON summary per tracker.")] = False,
) -> None:
    """Run one whole cycle: pull, analyse, plan and push back ranks, OKR links and labels."""
    from datetime import UTC, datetime

    from bridge.sync.cycle import run_cycle

    cfg = read_config(config)
    with store_session(cfg, progress=True) as session, one_run(session.store, cfg, tracker, "sync") as guard:
        result = run_cycle(
            session.store,
            cfg,
            now=datetime.now(UTC),
            tracker=tracker,
            dry_run=dry_run,
            force=force,
            progress=session.progress,
            guard=guard,
        )
    if json_output:
        announced = result.chat.summary() if result.chat is not None else None
        print_json(
            {
                "dry_run": dry_run,
                "trackers": [t.summary() for t in result.trackers],
                "announcements": announced,
            }
        )
    else:
        print_cycle(result, dry_run=dry_run)
    if not result.ok:
        raise typer.Exit(1)


@reports_errors
def purge(
    tracker: Annotated[str, typer.Option(help="The tracker to take the bridge's writes back from.")],
    config: ConfigOption = None,
    dry_run: Annotated[bool, typer.Option(help="Print what would be removed and change nothing.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Remove everything the bridge ever wrote into a tracker: its labels, field values, links and
    comments."""
    from bridge.connector import ConnectorRegistry
    from bridge.sync.push import purge_tracker

    cfg = read_config(config)
    settings = cfg.tracker(tracker)  # an unknown tracker is refused before the store is touched
    with (
        store_session(cfg, create=False, progress=not dry_run) as session,
        one_run(session.store, cfg, tracker, "purge"),
    ):
        connector = (
            ConnectorRegistry.default()
            .load(settings.kind)
            .open(tracker, settings, cfg.require_secrets(tracker))
        )
        try:
            result = purge_tracker(
                session.store, tracker, connector, dry_run=dry_run, progress=session.progress
            )
        finally:
            connector.close()
    writes = result.plan.writes
    planned = [
        {
            "item": result.keys.get(write.item, str(write.item)),
            "field": _field_name(write),
            "now": _describe(write)[0],
        }
        for write in writes
    ]
    if as_json:
        print_json(
            {"tracker": tracker, "dry_run": dry_run, "removals": planned, "removed": result.done,
             "failed": result.failed, "read_back": result.read_back,
             "read_back_applied": result.read_back_applied,
             "status_updates_left": result.left_in_place,
             "failures": [str(failure) for failure in result.failures]}
        )  # fmt: skip
    elif dry_run:
        for write, removal in zip(writes, planned, strict=True):
            typer.echo(terminal_safe(f"{removal['item']}: {_removal(write, removal)}"))
        typer.echo(f"{tracker}: {len(writes)} removals planned, nothing changed (dry run)")
        if result.left_in_place:
            typer.echo(_left_in_place(result.left_in_place))
    else:
        line = f"{tracker}: {result.done} removed, {result.failed} failed"
        if result.read_back:
            line += f" ({_read_back(result.read_back, result.read_back_applied)})"
        typer.echo(line)
        for failure in result.failures[:20]:
            typer.echo(f"  failed: {terminal_safe(str(failure))}")
        if result.left_in_place:
            typer.echo(_left_in_place(result.left_in_place))
    if result.failed:
        raise typer.Exit(1)


def _removal(write: Any, removal: Mapping[str, str]) -> str:
    """What purge would take back from an item: `remove label mb-at-risk`, `clear rank (now 7.692)`."""
    from bridge.domain import WriteKind

    if write.kind is WriteKind.LABEL_REMOVE:
        return f"remove label {write.field}"
    if write.kind is WriteKind.COMMENT:
        return "delete the bridge's comment"
    if write.kind is WriteKind.FIELD:
        return f"clear {removal['field']}" + (f" (now {removal['now']})" if removal["now"] else "")
    return f"remove {removal['field']} {removal['now']}".rstrip()


def _left_in_place(count: int) -> str:
    """Purge's word on the goal status updates it does not remove."""
    updates = "status update" if count == 1 else "status updates"
    return (
        f"left in place: the bridge's latest {updates} on {count} goal{'s' * (count != 1)}; a goal's "
        "status updates are its history, so purge removes none (delete them in Asana if you must)"
    )


@reports_errors
def explain(
    item: Annotated[
        str,
        typer.Argument(help="An item's key (PAY-12), title or tracker:id; or a key result's (KR1.1)."),
    ],
    config: ConfigOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Why an item has its rank, OKR link and labels, or how a key result stands and what the bridge
    writes on it, from the store (no tracker is contacted)."""
    from datetime import UTC, datetime

    from bridge.analysis_window import analysis_since
    from bridge.analytics.report import analyse
    from bridge.domain import Ref
    from bridge.store import forecast_history
    from bridge.store.snapshot import load_snapshot
    from bridge.store.written import load_written
    from bridge.sync.explain import explain as explain_item
    from bridge.sync.explain import find_item, key_result_catalogue

    cfg = read_config(config)
    with store_session(cfg, upgrade=False) as session:
        now = datetime.now(UTC)
        snapshot = load_snapshot(session.store, since=analysis_since(cfg.analytics, now))
        found = find_item(snapshot, item, key_result_catalogue(snapshot, cfg))
        with session.store.read() as conn:
            written = load_written(conn, found.source)
            points = forecast_history.history(conn, Ref(found.source, found.remote_id))
            slips = forecast_history.slipping(conn, now, cfg.analytics.slip_window, cfg.analytics.slip_share)
    moves = forecast_history.moves(points)
    result = explain_item(analyse(snapshot, cfg, now), snapshot, cfg, item, written, moves, slips)
    _print_explanation(result, json_output=json_output, points=points)


def _print_explanation(result: Explanation, *, json_output: bool, points: Sequence[Point]) -> None:
    """`bridge explain`'s answer: JSON, or one line per reason; times and empty values as people read
    them (`none`, `2026-12-07 10:35 UTC`), the bridge's comments by their first line."""
    import json
    from datetime import datetime

    from bridge.store import forecast_history
    from bridge.written import COMMENT_MARKER_PREFIX

    if json_output:
        typer.echo(json_terminal_safe(json.dumps(result.to_dict(), indent=2, ensure_ascii=False)))
        return
    typer.echo(terminal_safe(result.heading))
    for what, value, why in result.lines:
        typer.echo(terminal_safe(f"  {what}: {value or 'none'}" + (f" - {why}" if why else "")))
    for name, value, at in result.written:
        when = forecast_history.when(datetime.fromisoformat(at))
        if name.startswith(COMMENT_MARKER_PREFIX):
            first = json.loads(value).split("\n", 1)[0] if value.startswith('"') else value
            typer.echo(terminal_safe(f"  last written comment at {when}: {first}"))
            continue
        typer.echo(terminal_safe(f"  last written {name} = {value or 'none'} at {when}"))
    if result.forecast_moves:
        typer.echo("  how its forecast moved:")
    for (_, where, why), point in zip(result.forecast_moves, points, strict=True):
        typer.echo(terminal_safe(f"    {forecast_history.when(point.at)}  {where} - {why}"))


def _print_pulls(results: list[PullResult]) -> None:
    """One line per tracker of what a pull read and stored, and the items it skipped."""
    for result in results:
        state = "ok" if result.ok else f"FAILED: {terminal_safe(str(result.error))}"
        census = f", census: {result.deleted} deleted" if result.census else ""
        cleaned = f", {result.cleaned} with NUL replaced" if result.cleaned else ""
        typer.echo(
            f"{result.tracker}: {plural(result.items, 'item')} in {plural(result.pages, 'page')}, "
            f"{result.changed} rows changed, "
            f"{result.skipped} skipped{cleaned}{census}, {result.requests} requests "
            f"(+{result.setup_requests} setup): {state}"
        )
        if result.skipped_keys:
            typer.echo(
                f"  skipped: {terminal_safe(', '.join(result.skipped_keys[:20]))}"
                f"{' ...' if result.skipped > 20 else ''}"
            )


def print_cycle(result: CycleResult, *, dry_run: bool) -> None:
    """One line per tracker of what a cycle pulled, planned and wrote; with `dry_run`, the planned writes
    as a table."""
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    for entry in result.trackers:
        plan = entry.plan
        pull = entry.pull
        cleaned = f" ({pull.cleaned} with NUL replaced)" if pull is not None and pull.cleaned else ""
        line = (
            f"{entry.tracker}: {pull.items if pull else 0} items pulled{cleaned}, "
            f"{len(plan.writes) if plan else 0} writes planned"
        )
        if plan is not None and plan.deferred:
            line += f" (+{len(plan.deferred)} over the write budget)"
        if entry.push is not None and not dry_run:
            line += f", {entry.push.done} done, {entry.push.failed} failed"
            if entry.push.read_back:
                line += f" ({_read_back(entry.push.read_back, entry.push.read_back_applied)})"
        line += f", {entry.requests} requests"
        if entry.error:
            line += f": FAILED: {entry.error}"
        elif entry.note:
            line += f" ({entry.note})"
        console.print(terminal_safe(line), markup=False)
        if dry_run and plan is not None and plan.writes:
            keys = entry.push.keys if entry.push is not None else {}
            table = Table("item", "field", "now", "will be", "why")
            for write in plan.writes:
                now, later = _describe(write, keys)
                cells = (keys.get(write.item, str(write.item)), _field_name(write), now, later, write.reason)
                table.add_row(*(terminal_markup(cell) for cell in cells))
            console.print(table)
            _print_comments(console, plan.writes, keys)
        for skipped in entry.comments:
            console.print(terminal_safe(f"  {skipped}"), markup=False)
        if entry.push is not None:
            for failure in entry.push.failures[:20]:
                console.print(terminal_safe(f"  failed: {failure}"), markup=False)
    if dry_run:
        for entry in result.trackers:
            if entry.push is not None and entry.push.cost is not None:
                typer.echo(terminal_safe(f"{entry.tracker}: {cost_line(entry.push.cost)}"))
    _print_announcements(result)


def _print_announcements(result: CycleResult) -> None:
    """The chat announcements' line (sent, failed) and why each failed; a dry run's messages in full."""
    announced = result.chat
    if announced is None:
        return
    for preview in announced.previews:
        typer.echo(terminal_safe(f"would announce in {preview.channel} ({preview.kind}):"))
        typer.echo("".join(f"  | {line}".rstrip() + "\n" for line in preview.text().splitlines()), nl=False)
    line = announced.line()
    if line is not None:
        typer.echo(line)
    for failure in announced.failures[:20]:
        typer.echo(terminal_safe(f"  not announced: {failure}"))


def _print_comments(console: Any, writes: Sequence[Any], keys: Mapping[Any, str]) -> None:
    """Each comment a dry run would post, in full, as the tracker would show it (its marker line aside)."""
    from bridge.domain import WriteKind

    for write in writes:
        if write.kind is WriteKind.COMMENT and write.value is not None:
            console.print(
                terminal_safe(f"{keys.get(write.item, str(write.item))}: would post this comment:"),
                markup=False,
            )
            for line in str(write.value).splitlines():
                console.print(terminal_safe(f"    {line}"), markup=False)


def cost_line(cost: Any) -> str:
    """What a dry run's plan would cost, for a person deciding whether to run it."""
    emails = f"{cost.emails} notification email{'s' * (cost.emails != 1)} to watchers"
    return (
        f"this plan would make {cost.edits} edit{'s' * (cost.edits != 1)} on {cost.items} "
        f"item{'s' * (cost.items != 1)} in {cost.requests} write request{'s' * (cost.requests != 1)}, "
        f"sending {emails}"
    )


def _read_back(read_back: int, applied: int) -> str:
    """What reading back the writes whose answer was lost found, for a push's summary line."""
    return f"{read_back} got no answer and were read back: {applied} made, {read_back - applied} not"


def _field_name(write: Any) -> str:
    from bridge.config import FORECAST_FIELDS
    from bridge.domain import WriteKind
    from bridge.written import STATUS_UPDATE_FIELD

    dated = FORECAST_FIELDS.get(write.field)
    field = "key-result status update" if write.field == STATUS_UPDATE_FIELD else write.field
    names: dict[WriteKind, str] = {
        WriteKind.FIELD: f"{dated} forecast date" if dated else field,
        WriteKind.LABEL_ADD: f"label {write.field}",
        WriteKind.LABEL_REMOVE: f"label {write.field}",
        WriteKind.LINK: "link",
        WriteKind.ORDER: f"order in {write.field}",
        WriteKind.COMMENT: "comment",  # its marker (`write.field`) is the bridge's, not a person's
    }
    return names[write.kind]


def _describe(write: Any, names: Mapping[Any, str] | None = None) -> tuple[str, str]:
    """A write's value now and after, as a person reads them; `names` are items by reference."""
    from bridge.domain import WriteKind
    from bridge.written import STATUS_UPDATE_FIELD

    def show(value: Any) -> str:
        return "" if value is None else str(value)

    if write.kind is WriteKind.COMMENT:
        # A comment to post shows its whole text (a person decides whether it may go); one to delete
        # is the bridge's own, found by its marker.
        if write.value is None:
            return "the bridge's comment", "deleted"
        return "", f"{str(write.value).splitlines()[0]} (posted in full below)"
    if write.kind is WriteKind.LABEL_ADD:
        return "", write.field
    if write.kind is WriteKind.LABEL_REMOVE:
        return write.field, ""
    if write.kind is WriteKind.LINK:
        before = write.previous.url if write.previous is not None else ""
        return before, write.value.url if write.value is not None else ""
    if write.kind is WriteKind.FIELD and write.field == STATUS_UPDATE_FIELD:  # `on_track`: "on track"
        return show(write.previous).replace("_", " "), show(write.value).replace("_", " ")
    if write.kind is WriteKind.ORDER:
        after, before = write.value
        names = names or {}
        return show(
            write.previous
        ), f"after {names.get(after, after)}" if after else f"before {names.get(before, before)}"
    return show(write.previous), show(write.value)
