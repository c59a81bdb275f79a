"""The normalised milestone/task store: SQLModel tables, migrations and bulk upserts."""

from __future__ import annotations

from bridge.store.engine import Store, StoreMissing, redact_url, upsert
from bridge.store.models import TABLES, metadata

__all__ = ["TABLES", "Store", "StoreMissing", "metadata", "redact_url", "upsert"]
