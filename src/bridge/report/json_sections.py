"""Sections added to the report's JSON document after the analysis made it: the stored OKR drafts, the
forecast moves, the milestones reached."""

from __future__ import annotations

import json
from typing import Any


def with_section(report_json: str, key: str, value: Any) -> str:
    """The report's JSON document (`Report.to_json`: indented by two) with `value` under `key`, added last.

    Written in before the document's closing brace, as `json.dumps(..., indent=2)` of the whole would place
    it (a JSON string holds no raw line break, so indenting by lines is safe): the same text, without
    decoding and encoding the megabytes of a large report again (0.5 s of CPU at 100,000 tasks, more than
    an unchanged store's whole report)."""
    section = json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n  ")
    body, closing, rest = report_json.rpartition("\n}")
    if closing and not rest and body.startswith("{\n") and f'"{key}":' not in body:
        return f'{body},\n  "{key}": {section}\n}}'
    document = json.loads(report_json)  # another shape (or the key already in it): the slow, sure way
    document[key] = value
    return json.dumps(document, indent=2, ensure_ascii=False)
