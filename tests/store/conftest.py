"""The store tests' shared fixture: an upgraded store, on SQLite and on PostgreSQL (see `store_url`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bridge.store import Store


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store(store_url)
    s.upgrade()
    yield s
    s.close()
