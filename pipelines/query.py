"""Small helpers of every query: the one row of a query that returns one, a moment as SQL, settings.

The one row is a count, an aggregate or a setting; the settings are DuckDB's, changed on an
open connection.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol, overload


class _Fetched(Protocol):
    """A DuckDB connection or a psycopg cursor after `execute`."""

    def fetchone(self) -> tuple[Any, ...] | None: ...


def one_row(result: _Fetched) -> tuple[Any, ...]:
    """The first row of `result`.

    Raises:
        LookupError: the query returned no row, which its caller held impossible.
    """
    row = result.fetchone()
    if row is None:
        raise LookupError("the query returned no row")
    return row


def scalar(result: _Fetched) -> Any:
    """The first value of the first row of `result` (see `one_row`)."""
    return one_row(result)[0]


@overload
def utc(moment: datetime) -> datetime: ...
@overload
def utc(moment: None) -> None: ...
def utc(moment: datetime | None) -> datetime | None:
    """`moment` in UTC.

    DuckDB hands back `timestamp` columns naive (the sync writes them in UTC) and `timestamptz`
    ones in the session's zone.
    """
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def timestamptz(moment: datetime) -> str:
    """`moment` (naive: UTC) as a SQL constant, which lets DuckDB and DuckLake skip what it excludes."""
    return f"timestamptz '{utc(moment).isoformat()}'"


class _Executes(Protocol):
    """A DuckDB connection."""

    def execute(self, query: str, parameters: object = None) -> Any: ...


def use_settings(con: _Executes, settings: Mapping[str, str | int]) -> None:
    """Sets each of DuckDB's `settings` (`memory_limit`, `threads`...) on an open connection."""
    for name, value in settings.items():
        con.execute(f"set {name} = '{value}'")
