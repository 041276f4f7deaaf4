"""One setting's value as a whole number or as true/false, with a one-line message naming it.

`pipelines.config` reads the sync's settings through these; they import nothing heavy (no dlt),
so the report parses its own settings the same way and still starts at once.
"""

from __future__ import annotations

from typing import Any

FLAG_WORDS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def parse_integer(name: str, value: Any, default: int, minimum: int) -> int:
    """A whole number of at least `minimum`; `default` when unset or blank.

    Args:
        name: the variable's name, for the message.
        value: what the environment or a `.dlt/` file gave, if anything.
        default: the value when none is given.
        minimum: the smallest value accepted.

    Raises:
        ValueError: the value is not a whole number, or is below the minimum.
    """
    if value is None or str(value).strip() == "":
        return default
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {str(value)[:40]!r}") from None
    if number < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {number}")
    return number


def parse_flag(name: str, value: Any, default: bool = False) -> bool:
    """True or false from `true`/`false`, `1`/`0` or `yes`/`no` (any case); `default` when unset.

    Raises:
        ValueError: any other word.
    """
    word = str(value or "").strip().lower()
    if not word:
        return default
    if word not in FLAG_WORDS:
        raise ValueError(f"{name} must be true or false, got {word[:20]!r}")
    return FLAG_WORDS[word]
