"""The one row of a query that always returns one: a count, an aggregate, a setting."""

from __future__ import annotations

from typing import Any, Protocol


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
