"""A Trello key-result card gets its status label, changed when the status changes, taken back by
`bridge purge`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bridge.config import load_config
from bridge.connector import ConnectorRegistry
from tests.system import test_sync_trello
from tests.system.test_sync_trello import Sync

sync = test_sync_trello.sync  # the Trello sandbox fixture, shared

ENDED = (datetime.now(UTC) - timedelta(days=2)).date()


def with_key_result_card(sync: Sync) -> str:
    """A card in the "Key results" list (target 10, current 4), linked by the okr-design rule to Beta and
    Gamma; its period ended two days ago."""
    board = sync.board.id
    sync.edit(op="create_list", board=board, name="Key results")
    for name in ("KR target", "KR current"):
        sync.edit(op="create_custom_field", board=board, name=name, type="number")
    card = sync.edit(op="create_card", board=board, list="Key results", name="Self-serve tokens")["id"]
    sync.edit(op="set_custom_field", card=card, field="KR target", value=10)
    sync.edit(op="set_custom_field", card=card, field="KR current", value=4)
    text = sync.config_path.read_text().replace('key_result = "KR7"', f'key_result = "t:{card}"')
    text += (
        '\n[trackers.t.okrs]\nlist = "Key results"\n'
        'target_field = "KR target"\ncurrent_field = "KR current"\n'
        f'\n[okrs]\nperiod_end = "{ENDED.isoformat()}"\n'
    )
    sync.config_path.write_text(text)
    sync.config = load_config(sync.config_path, ConnectorRegistry.default())
    return card


def status_labels(sync: Sync, card: str) -> set[str]:
    names = {sync.board.labels[i]["name"] for i in sync.board.cards[card]["idLabels"]}
    return {name for name in names if name.startswith("mb-kr-")}


def test_a_key_result_card_gets_its_status_label_changed_once_and_purged(sync: Sync, run_cli: Any) -> None:
    card = with_key_result_card(sync)
    first = sync.cycle()
    assert status_labels(sync, card) == {"mb-kr-off-track"}
    assert first.report is not None
    (found,) = [k for o in first.report.okrs for k in o.key_results if k.key_result.remote_id == card]
    assert found.progress == 0.4 and found.status_reason.startswith(f"the period ended {ENDED.isoformat()}")

    again = sync.cycle()
    assert again.trackers[0].plan is not None
    assert [w for w in again.trackers[0].plan.writes if w.item.remote_id == card] == []

    sync.edit(op="set_custom_field", card=card, field="KR current", value=10)
    sync.cycle()
    assert status_labels(sync, card) == {"mb-kr-on-track"}, "a met target shows the on-track label"

    result = run_cli("purge", "--tracker", "t", "--config", str(sync.config_path))
    assert result.exit_code == 0, result.stderr + result.stdout
    assert status_labels(sync, card) == set()
