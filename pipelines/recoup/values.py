"""One API value read as what its column holds: a UTC time, a text, a cost, a bounded integer.

Each reader raises BadRunError with the field's name when the value cannot be that; the run is
then rejected whole (see transform.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pipelines.recoup.errors import BadRunError
from pipelines.recoup.tables import INT64, MAX_COST_CENTS, RUN_COLUMNS, api_bounds

BOUNDS = api_bounds(RUN_COLUMNS)  # of the numbers a run carries, by field
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
# Dates outside these years are data errors (year 0001 is a zero value, not a date).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2101, 1, 1, tzinfo=UTC)  # exclusive


def micros(moment: datetime | None) -> int | None:
    """A UTC datetime as whole microseconds since the epoch (exact, cheap to compare)."""
    return None if moment is None else (moment - _EPOCH) // _MICRO


def to_utc(value: Any, field: str) -> datetime | None:
    """Parses an ISO-8601 string (any offset, `Z` included) into an aware UTC datetime."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRunError(f"{field} is not a date string")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except ValueError:
        raise BadRunError(f"{field} is not an ISO-8601 date: {value[:40]!r}") from None
    except OverflowError:  # e.g. year 1 with a positive offset
        raise BadRunError(f"{field} is not a date within 2000-2100: {value[:40]!r}") from None
    if not EARLIEST <= moment < LATEST:
        raise BadRunError(f"{field} is not a date within 2000-2100: {value[:40]!r}")
    return moment


def text_value(value: Any, field: str) -> str | None:
    """A string, or None."""
    if value is None or isinstance(value, str):
        return value
    raise BadRunError(f"{field} is not a string")


def number_value(value: Any, field: str) -> float | int | None:
    """A JSON number (never a boolean), or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRunError(f"{field} is not a number")
    return value


def cost_value(value: Any, field: str) -> float | None:
    """A cost in cents within the field's bounds (finite, not negative), or None."""
    number = number_value(value, field)
    if number is None:
        return None
    low, high = BOUNDS.get(field, (0.0, MAX_COST_CENTS))
    if not low <= number <= high:  # also false for NaN, and for infinities
        raise BadRunError(f"{field} is not a cost between {low:g} and {high:.0e} cents: {number!r}")
    return float(number)


def integer_value(value: Any, field: str) -> int | None:
    """A whole number within the field's bounds (a 64-bit integer unless described), or None."""
    number = number_value(value, field)
    if number is None:
        return None
    if isinstance(number, float):
        if not number.is_integer():
            raise BadRunError(f"{field} is not a whole number")
        number = int(number)
    low, high = BOUNDS.get(field, INT64)
    if not low <= number <= high:
        raise BadRunError(f"{field} is out of range: {number}")
    return number
