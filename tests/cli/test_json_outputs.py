"""`--json` on the commands whose text other tests read: one JSON document each, holding the same facts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.cli.test_report import Seeded, empty_store, seeded  # noqa: F401  (the fixture, and the one it uses)


def test_okr_confirm_json(seeded: Seeded, run_cli: Any) -> None:  # noqa: F811  (the fixture's name)
    seeded.cli(run_cli, "okr", "suggest")
    result = seeded.cli(run_cli, "okr", "confirm", "PAY-2", "KR1", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "milestone": "PAY-2",
        "milestone_ref": "acme-jira:PAY-2",
        "key_result": "KR1",
        "key_result_title": "Raise checkout conversion",
        "before": "suggested",
    }
    assert seeded.links()[("PAY-2", "KR1")] == "confirmed"


def test_sandbox_generate_json(run_cli: Any, tmp_path: Path) -> None:
    result = run_cli("sandbox", "generate", "--out", str(tmp_path), "--issues", "5", "--json")
    assert result.exit_code == 0, result.stderr
    written = json.loads(result.stdout)
    assert set(written) == {"jira", "trello", "asana"}
    assert all(Path(path).is_file() for path in written.values())
