"""The daemon's logs: plain text or one JSON object per line, at the configured level, secrets scrubbed."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from bridge.config import DaemonConfig
from bridge.http import RedactingFilter, redact
from bridge.text import TerminalSafeFilter, json_terminal_safe


class JsonLines(logging.Formatter):
    """One JSON object per record: `time`, `level`, `logger`, `message`, and `error` for a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        if record.exc_info:
            entry["error"] = redact(self.formatException(record.exc_info))
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
