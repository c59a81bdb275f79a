"""Seed files of a generated organisation, one per tracker in its vendor's format (`bridge sandbox generate`).

The organisation comes from `bridge_sandbox.generate`; each tracker's renderer turns it into that
vendor's seed format (a Jira search response, Trello board exports, Asana API-shaped JSON).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bridge_sandbox.generate import Organisation, build
from bridge_sandbox.generate_asana import render_asana
from bridge_sandbox.generate_jira import render_jira
from bridge_sandbox.generate_trello import render_trello

Renderer = Callable[[Organisation], dict[str, Any]]


def renderers() -> dict[str, Renderer]:
    """Tracker -> the function rendering an organisation as that tracker's seed."""
    return {"jira": render_jira, "trello": render_trello, "asana": render_asana}


def write(out: Path, seed: int, per_tracker: int, now: datetime | None = None) -> dict[str, Path]:
    """Write one seed file per tracker into `out`; return them by tracker."""
    moment = (now or datetime.now(UTC)).astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    organisation = build(seed, per_tracker, moment)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for tracker, render in renderers().items():
        path = out / f"{tracker}.json"
        with path.open("w", encoding="utf-8") as handle:
            json.dump(render(organisation), handle, ensure_ascii=False, separators=(",", ":"))
        written[tracker] = path
    return written
