"""Settings' values read (whole numbers, true/false, durations); moments and ages written."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from pipelines.recoup.errors import ConfigError

FLAG_WORDS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def parse_integer(name: str, value: Any, default: int, minimum: int) -> int:
    """A whole number of at least `minimum`; `default` when unset or blank.

    Args:
        name: the variable's name, for the message.
        value: what the environment or a `.dlt/` file gave, if anything.
        default: the value when none is given.
        minimum: the smallest value accepted.

    Raises:
        ConfigError: the value is not a whole number, or is below the minimum.
    """
    if value is None or str(value).strip() == "":
        return default
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {str(value)[:40]!r}") from None
    if number < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {number}")
    return number


def parse_flag(name: str, value: Any, default: bool = False) -> bool:
    """True or false from `true`/`false`, `1`/`0` or `yes`/`no` (any case); `default` when unset.

    Raises:
        ConfigError: any other word.
    """
    word = str(value or "").strip().lower()
    if not word:
        return default
    if word not in FLAG_WORDS:
        raise ConfigError(f"{name} must be true or false, got {word[:20]!r}")
    return FLAG_WORDS[word]


_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """`90s`, `15m`, `2h`, `1d` as a timedelta; raises ValueError on anything else."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise ValueError(f"{text[:40]!r} is not a duration such as 90s, 15m, 2h or 1d")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def iso(moment: datetime | None) -> str | None:
    """`moment` in UTC as ISO 8601 to the second, with a `Z`; None stays None."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def age_text(age: timedelta) -> str:
    """`45s`, `12m`, `3h 5m`, `2d 4h`: precise enough to read at a glance."""
    seconds = max(0, int(age.total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    return f"{seconds // 86400}d {seconds % 86400 // 3600}h"
