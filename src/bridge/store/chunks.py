"""Cutting long lists of values into statements the databases accept."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

IN_LIST_CHUNK = 500
"""Values bound in one `IN (...)` list: stays well under SQLite's bound-parameter limit."""


def chunked(values: Sequence[T], size: int = IN_LIST_CHUNK) -> Iterator[Sequence[T]]:
    """`values` in order, in slices of `size` (the last may be shorter); nothing for no values."""
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, got {size}")
    for start in range(0, len(values), size):
        yield values[start : start + size]
