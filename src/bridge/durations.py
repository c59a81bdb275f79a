"""Durations as admins write them in the config: `30s`, `15m`, `2h`, `7d`, `1h30m`, or plain seconds."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_WHOLE = re.compile(r"^\s*(?:\d+(?:\.\d+)?\s*(?:ms|s|m|h|d|w)\s*)+$")


def parse_duration(value: Any) -> timedelta:
    """Turn `90s`, `15m`, `1h30m`, `7d` or a number of seconds into a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration; write it like 30s, 15m, 2h or 7d")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"{value!r} is negative; a duration is zero or more")
        return _seconds(value, value)
    if isinstance(value, str) and _WHOLE.match(value):
        return _seconds(sum(float(number) * _UNITS[unit] for number, unit in _PART.findall(value)), value)
    raise ValueError(f"{value!r} is not a duration; write it like 30s, 15m, 2h or 7d")


def _seconds(seconds: float, written: Any) -> timedelta:
    try:
        return timedelta(seconds=seconds)
    except OverflowError:  # past timedelta's range: about 2.7 million years
        raise ValueError(f"{written!r} is too long a duration") from None


def format_duration(value: timedelta) -> str:
    """The shortest config spelling of a duration (`1h30m`)."""
    total = int(value.total_seconds())
    if total == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


Duration = Annotated[timedelta, BeforeValidator(parse_duration), PlainSerializer(format_duration)]
