"""Fixtures for the sandbox tests: where shared/ lies, and a control-API client."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import requests

SHARED = Path(os.environ.get("BRIDGE_SHARED_DIR", Path(__file__).resolve().parents[2].parent / "shared"))


def shared_file(relative: str) -> Path:
    """A file under shared/ (the reference data and specs); skips the test when it is absent."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{path} is absent (set BRIDGE_SHARED_DIR to the folder holding data/ and specs/)")
    return path


class Control:
    """The `/_sandbox/` control API of one running emulator."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/") + "/_sandbox"
        self.session = requests.Session()

    def get(self, action: str) -> Any:
        response = self.session.get(f"{self.base}/{action}", timeout=10)
        response.raise_for_status()
        return response.json()

    def send(self, method: str, action: str, body: Any = None) -> Any:
        response = self.session.request(method, f"{self.base}/{action}", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def faults(self, *rules: dict[str, Any]) -> Any:
        return self.send("PUT", "faults", {"rules": list(rules)})

    def edit(self, **change: Any) -> Any:
        return self.send("POST", "edit", change)["result"]

    def request_count(self) -> int:
        return int(self.get("requests")["total"])
