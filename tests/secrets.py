"""Find secrets where they must never be: a scan of texts, files and SQLite stores for sentinel values.

A test runs the bridge with sentinel credentials (unique random strings nothing else contains), then
hands everything the bridge said, stored or sent to `SecretScan` and asserts `found` is empty:

    scan = SecretScan({"sentinel-..."})
    scan.text("sync stdout", out)
    scan.path(tmp_path / "requests.jsonl")
    scan.sqlite(tmp_path / "store.db")
    assert not scan.found, scan.report()
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def sentinel_hits(sentinels: Iterable[str], text: str) -> set[str]:
    """The sentinels `text` contains."""
    return {s for s in sentinels if s and s in text}


@dataclass
class SecretScan:
    """Collects where each sentinel was found: sentinel -> places (`what`, `file:line`, `db:table:row`)."""

    sentinels: frozenset[str] | set[str]
    found: dict[str, list[str]] = field(default_factory=dict)
    scanned: int = 0
    """How many texts, lines and rows were looked at (so a test can tell an empty scan from a clean one)."""

    def _hit(self, sentinel: str, where: str) -> None:
        self.found.setdefault(sentinel, []).append(where)

    def text(self, where: str, text: str | bytes | None) -> None:
        if text is None:
            return
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        self.scanned += 1
        for sentinel in sentinel_hits(self.sentinels, text):
            self._hit(sentinel, where)

    def path(self, path: Path, *, skip: Callable[[str], str] | None = None) -> None:
        """Every line of a file, or of every file under a folder. `skip(line)`, when given, returns the
        line with what may legitimately hold a secret taken out (a vendor's own auth parameter, say)."""
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            raw = file.read_bytes().decode("utf-8", errors="replace")
            for number, line in enumerate(raw.splitlines(), start=1):
                self.text(f"{file}:{number}", skip(line) if skip is not None else line)

    def sqlite(self, path: Path) -> dict[str, int]:
        """Every row of every table of a SQLite database, every column as text; returns rows per table."""
        counts: dict[str, int] = {}
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                rows = conn.execute(f'SELECT * FROM "{table}"').fetchall()
                counts[table] = len(rows)
                for number, row in enumerate(rows, start=1):
                    self.text(f"{path.name}:{table}:row {number}", " ".join(_text(v) for v in row))
        finally:
            conn.close()
        return counts

    def report(self) -> str:
        return "\n".join(
            f"{sentinel[:12]}... found in: {', '.join(places[:10])}"
            for sentinel, places in self.found.items()
        )


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return "" if value is None else str(value)
