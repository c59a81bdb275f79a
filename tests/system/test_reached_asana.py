"""A milestone reached in Asana, over whole syncs against the Asana sandbox: the first sync is silent,
the sync after a user finishes the milestone and its last task posts one comment story carrying the
marker on the milestone task, the next posts nothing, `bridge purge` deletes it; a section milestone
(`milestones.source = "section"`) reached gets no comment, and the sync output and the report's
"Milestones reached" section say why."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bridge.config import load_config
from bridge.connector import ConnectorRegistry
from bridge.domain import Ref
from bridge.store import Store
from bridge.store.written import load_written
from bridge.written import comment_marker
from bridge_sandbox.asana import AsanaEmulator
from bridge_sandbox.server import SandboxServer
from tests.sandbox.conftest import Control
from tests.system.test_sync_asana import (
    DOING,
    DONE,
    GIDS,
    KR_TITLE,
    TOKEN,
    Sync,
    WriteSpy,
    asana_seed,
    asana_table,
)

BETA = GIDS["Beta"]


@pytest.fixture
def sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sync]:
    emulator = AsanaEmulator.from_seed(asana_seed(datetime.now(UTC)), token=TOKEN)
    spy = WriteSpy()
    spy.attach(emulator, monkeypatch)
    monkeypatch.setenv("T_TOKEN", TOKEN)
    with SandboxServer(emulator) as server:
        path = tmp_path / "bridge.toml"
        path.write_text(
            f'[store]\nurl = "sqlite:///{tmp_path / "store.db"}"\n\n[push]\nmax_change_share = 1.0\n'
            + asana_table(server.base_url)
        )
        config = load_config(path, ConnectorRegistry.default())
        store = Store.open(config)
        try:
            yield Sync(server, emulator, Control(server.base_url), config, path, store, spy)
        finally:
            store.close()


def comment_stories(sync: Sync, gid: str) -> list[tuple[str, str]]:
    """The task's comment stories carrying a reached marker, as (author gid, text)."""
    return [
        (str(s["created_by"]["gid"]), str(s["text"]))
        for s in sync.emulator.state.stories.get(gid, [])
        if s["resource_subtype"] == "comment_added" and "[milestone-bridge:reached:" in str(s["text"])
    ]


def finish(sync: Sync, name: str) -> None:
    """A user completes the milestone's last task, then the milestone, and moves both to "Done"."""
    for gid in (GIDS[f"{name} task"], GIDS[name]):
        sync.edit(op="complete_task", task=gid)
        sync.edit(op="move_task", task=gid, section=DONE)


def test_a_milestone_reached_gets_one_comment_story_over_http_and_purge_deletes_it(
    sync: Sync, run_cli: Any
) -> None:
    first = sync.cycle()
    assert first.announcements == [], "the first sync is the silent baseline"
    assert not any(comment_stories(sync, gid) for gid in GIDS.values())
    finish(sync, "Beta")

    reached = sync.cycle()
    (announcement,) = reached.announcements
    assert announcement.subject == Ref("t", BETA) and announcement.occurrence == 1
    marker = comment_marker("reached", Ref("t", BETA), 1)
    ((author, text),) = comment_stories(sync, BETA)
    assert author == "200", "posted by the token's own user"
    assert text.startswith("Milestone reached: Beta\n"), text
    assert "Delivered: 1 task done" in text and f"{KR_TITLE}: " in text
    assert text.endswith(marker)
    with sync.store.read() as conn:
        assert load_written(conn, "t").comments(Ref("t", BETA)) == {marker}

    sync.forget_requests()
    again = sync.cycle()
    assert again.trackers[0].plan is not None and again.trackers[0].plan.writes == []
    assert len(comment_stories(sync, BETA)) == 1, "a second sync posts nothing more"
    assert sync.writes_sent() == []

    purged = run_cli("purge", "--tracker", "t", "--config", str(sync.config_path))
    assert purged.exit_code == 0, purged.stderr + purged.stdout
    assert comment_stories(sync, BETA) == []
    with sync.store.read() as conn:
        assert load_written(conn, "t").comments(Ref("t", BETA)) == set()


SECTIONS = """
[trackers.t.milestones]
source = "section"
sections = ["In Progress"]

[trackers.t.tasks]
attach = "section"
"""


def test_a_section_milestone_reached_is_skipped_and_the_sync_and_report_say_why(
    sync: Sync, run_cli: Any
) -> None:
    """The "In Progress" section is a milestone; mapping its gid to done (as a user finishing it would
    do in the status map) reaches it, and a section takes no comment."""
    text = sync.config_path.read_text().replace("[trackers.t.okrs]", SECTIONS + "\n[trackers.t.okrs]")
    sync.config_path.write_text(text)
    first = run_cli("sync", "--config", str(sync.config_path))
    assert first.exit_code == 0, first.stderr + first.stdout
    sync.config_path.write_text(
        text.replace('"completed" = "done"', f'"completed" = "done"\n"{DOING}" = "done"')
    )

    reached = run_cli("sync", "--config", str(sync.config_path))
    assert reached.exit_code == 0, reached.stderr + reached.stdout
    why = "an Asana section takes no comment"
    assert f"Milestone reached: In Progress: no comment, {why}" in reached.stdout, reached.stdout
    assert comment_stories(sync, DOING) == [] and not any(comment_stories(sync, g) for g in GIDS.values())
    assert not [w for w in sync.writes_sent() if "stories" in w], "nothing posted"

    report = run_cli("report", "--config", str(sync.config_path))
    assert report.exit_code == 0, report.stderr
    assert "Milestones reached" in report.stdout and f"skipped: {why}" in report.stdout, report.stdout
    as_json = run_cli("report", "--json", "--config", str(sync.config_path))
    (row,) = json.loads(as_json.stdout)["milestones_reached"]
    assert row["name"] == "In Progress" and why in row["status"], row
