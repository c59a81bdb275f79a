"""The daemon's logs: plain text or one JSON object per line, at the configured level, secrets scrubbed.

A JSON line carries `time`, `level`, `logger` and `message`, and the fields a record was given (`extra=`)
among `FIELDS`: a cycle's summary has them all, a pull's or a lease's the tracker and what applies. A
record with an exception adds its `traceback` (and its `error`, when no other was given).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from bridge.config import DaemonConfig
from bridge.http import RedactingFilter, redact
from bridge.text import TerminalSafeFilter, json_terminal_safe

FIELDS = (
    "tracker",
    "cycle",
    "outcome",
    "duration_s",
    "items",
    "writes_planned",
    "writes_deferred",
    "writes_done",
    "writes_failed",
    "writes_read_back",
    "requests",
    "error",
)
"""The fields a JSON line takes from a record, in this order, when the record has them."""


def _field(value: Any) -> Any:
    """A field as JSON holds it: numbers, booleans and None as they are, anything else as scrubbed text."""
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(str(value))


class JsonLines(logging.Formatter):
    """One JSON object per record: `time`, `level`, `logger`, `message`, then `FIELDS` the record has,
    and `traceback` (with `error`, unless given) for an exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for name in FIELDS:
            if name in record.__dict__:
                entry[name] = _field(record.__dict__[name])
        if record.exc_info:
            error = record.exc_info[1]
            if entry.get("error") is None and error is not None:
                entry["error"] = redact(f"{type(error).__name__}: {error}")
            entry["traceback"] = redact(self.formatException(record.exc_info))
        return json_terminal_safe(json.dumps(entry, ensure_ascii=False))


def configure_logging(settings: DaemonConfig, *, debug: bool = False) -> None:
    """Route every log record to stderr in the configured format and level; secrets never get through."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(TerminalSafeFilter())  # JSON lines escape control characters themselves
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    level = logging.DEBUG if debug else getattr(logging, settings.log_level.upper())
    root.setLevel(logging.WARNING if level < logging.WARNING else level)
    logging.getLogger("bridge").setLevel(level)
