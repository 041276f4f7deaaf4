"""Pure functions that turn Recoup API run objects into warehouse rows.

A run object is validated field by field: a missing or unusable `id` or `createdAt`, a known
field of the wrong type, a number outside its bounds (a negative, infinite or absurd cost; a
depth or attempt count beyond what the models hold), a date outside 2000-2100, or a run too
large to load rejects that one run with a reason (it is never loaded half right). Which
fields there are, and their bounds, is described in tables.py; columnar.py applies the same.
Fields the API adds later are kept whole in the `extra` JSON column, never dropped silently;
a free-form field too large to store is replaced by a mark saying so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import orjson

from pipelines import defaults
from pipelines.recoup.errors import BadRunError
from pipelines.recoup.settings import GROUP_OF_STATUS, TERMINAL_GROUPS
from pipelines.recoup.tables import (
    ATTEMPT_COLUMNS,
    KINDS,
    RUN_COLUMNS,
    api_fields,
    api_objects,
)
from pipelines.recoup.values import cost_value as _cost
from pipelines.recoup.values import integer_value as _integer
from pipelines.recoup.values import text_value as _text
from pipelines.recoup.values import to_utc

# API field -> column, by the rule that reads it (see the `source` of each column in tables.py).
TIME_FIELDS = api_fields(RUN_COLUMNS, "timestamp")  # ISO-8601, converted to UTC
TEXT_FIELDS = api_fields(RUN_COLUMNS, "text")
NUMBER_FIELDS = api_fields(RUN_COLUMNS, "double")  # costs in cents
INTEGER_FIELDS = api_fields(RUN_COLUMNS, "bigint")
BOOL_FIELDS = api_fields(RUN_COLUMNS, "bool")
JSON_FIELDS = api_fields(RUN_COLUMNS, "json")  # free-form, kept whole
PRIVATE_FIELDS = api_fields(RUN_COLUMNS, "json", private=True)  # stored only when asked for
OBJECT_FIELDS = api_objects(RUN_COLUMNS)  # env, error: objects whose text fields are read
ATTEMPT_TEXT_FIELDS = api_fields(ATTEMPT_COLUMNS, "text")
ATTEMPT_TIME_FIELDS = api_fields(ATTEMPT_COLUMNS, "timestamp")
ATTEMPT_OBJECT_FIELDS = api_objects(ATTEMPT_COLUMNS)
# Some upstream errors are bare strings: tolerated, read as this field of the object.
_BARE_STRING = {"error": "message"}
# Derived from status, so not worth a column.
_FLAGS = {"isQueued", "isExecuting", "isWaiting", "isCompleted", "isSuccess", "isFailed", "isCancelled"}
# Read by code of their own in both paths.
_SPECIAL = {"id", "tags", "attempts"}
KNOWN_FIELDS = frozenset().union(
    *(api_fields(RUN_COLUMNS, kind, private) for kind in KINDS for private in (False, True)),
    OBJECT_FIELDS,
    _FLAGS,
    _SPECIAL,
)


# The free-form JSON fields: kept whole, but never larger than `Limits.max_field_bytes`.
SIZED_FIELDS = {**JSON_FIELDS, **PRIVATE_FIELDS}
SKIPPED = "_skipped"  # the key of the mark stored instead of a field too large to store


@dataclass(frozen=True)
class Limits:
    """How large a run may be.

    DuckDB's load within its 64 MB budget fails on one value of about 7 MB (measured with
    DuckDB 1.5.5), so a free-form field above `max_field_bytes` is stored as a mark, then the
    largest ones while the run is above `max_run_bytes` (its JSON as it would be stored); a run
    still above that is rejected.
    """

    max_run_bytes: int = defaults.MAX_RUN_BYTES
    max_field_bytes: int = defaults.MAX_FIELD_BYTES


DEFAULT_LIMITS = Limits()


class UnreadableRun(NamedTuple):
    """Stands in the place of a run whose JSON could be read but not held (see `parse`)."""

    run_id: str | None
    reason: str


def status_group(status: str | None) -> str:
    """Maps a status of either vocabulary to its group; anything unknown is `unknown`."""
    return GROUP_OF_STATUS.get(status or "", "unknown")


def is_terminal(status: str | None) -> bool:
    """True when the run will not change any more (succeeded, failed, canceled, expired)."""
    return status_group(status) in TERMINAL_GROUPS


def _object(value: Any, parent: str, field: str, children: dict[str, str]) -> dict[str, str | None]:
    """The text fields of an object field, by column; all null when the object is."""
    if value is None:
        return dict.fromkeys(children.values())
    if isinstance(value, str) and parent in _BARE_STRING:
        return {
            column: value if child == _BARE_STRING[parent] else None for child, column in children.items()
        }
    if not isinstance(value, dict):
        raise BadRunError(f"{field} is not an object")
    return {column: _text(value.get(child), f"{field}.{child}") for child, column in children.items()}


def to_attempt_rows(attempts: Any) -> list[dict[str, Any]]:
    """Attempts in API order, numbered from 1."""
    if not isinstance(attempts, list):
        raise BadRunError("attempts is not a list")
    rows = []
    for number, attempt in enumerate(attempts, start=1):
        field = f"attempts[{number - 1}]"
        if not isinstance(attempt, dict):
            raise BadRunError(f"{field} is not an object")
        row: dict[str, Any] = {"attempt_number": number}
        for parent, children in ATTEMPT_OBJECT_FIELDS.items():
            row.update(_object(attempt.get(parent), parent, f"{field}.{parent}", children))
        for source, column in ATTEMPT_TEXT_FIELDS.items():
            row[column] = _text(attempt.get(source), f"{field}.{source}")
        for source, column in ATTEMPT_TIME_FIELDS.items():
            row[column] = to_utc(attempt.get(source), f"{field}.{source}")
        rows.append(row)
    return rows


def skipped_mark(size: int, limits: Limits) -> dict[str, Any]:
    """What is stored instead of a free-form field too large to store."""
    return {SKIPPED: {"bytes": size, "limit": limits.max_field_bytes}}


def fit(item: dict[str, Any], keep_private: bool, limits: Limits) -> dict[str, Any]:
    """The free-form fields of `item` too large to store, each with the mark to store instead.

    Raises:
        BadRunError: the run, as it would be stored, is larger than `limits.max_run_bytes` even
            without its free-form fields, or its JSON cannot be stored (nested deeper than 254).
    """
    try:
        size = len(orjson.dumps(item))
        if size <= min(limits.max_field_bytes, limits.max_run_bytes):
            return {}  # nearly every run: no field and no run can be too large
        sizes = {}
        for source in SIZED_FIELDS.keys() & item.keys():
            field_size = len(orjson.dumps(item[source]))
            if source in PRIVATE_FIELDS and not keep_private:
                size -= field_size  # not stored
            else:
                sizes[source] = field_size
    except orjson.JSONEncodeError as exc:
        raise BadRunError(f"cannot be stored as JSON ({exc})") from None
    marks = {}
    for source, field_size in sorted(sizes.items(), key=lambda pair: (-pair[1], pair[0])):
        if field_size <= limits.max_field_bytes and size <= limits.max_run_bytes:
            break  # the largest field left fits, and so does the run
        marks[source] = skipped_mark(field_size, limits)
        size -= field_size - len(orjson.dumps(marks[source]))
    if size > limits.max_run_bytes:
        raise BadRunError(
            f"is {size:,} bytes of JSON, over the {limits.max_run_bytes:,} a run may have (RECOUP_MAX_RUN_BYTES)"
        )
    return marks


def to_run_row(
    item: Any,
    *,
    account_id: str,
    seen_at: datetime,
    keep_private: bool = False,
    limits: Limits = DEFAULT_LIMITS,
) -> dict[str, Any]:
    """One API run object as one warehouse row (tags and attempts stay nested lists).

    Args:
        item: the run object from a list or retrieve response.
        account_id: the account this run was synced for.
        seen_at: when the response arrived; orders observations of the same run.
        keep_private: store `payload` and `output` (large, possibly private) too.
        limits: how large a run and its free-form fields may be.

    Raises:
        BadRunError: the run cannot be stored; the message says why.
    """
    if isinstance(item, UnreadableRun):
        raise BadRunError(f"run {(item.run_id or '(no id)')[:64]}: {item.reason}")
    if not isinstance(item, dict):
        raise BadRunError("run is not an object")
    run_id = item.get("id")
    if not isinstance(run_id, str) or not run_id.strip():
        raise BadRunError("run has no id")
    try:
        if item.get("createdAt") is None:
            raise BadRunError("createdAt is missing")
        marks = fit(item, keep_private, limits)
        row: dict[str, Any] = {"id": run_id, "account_id": account_id, "seen_at": seen_at}
        for source, column in TIME_FIELDS.items():
            if source in item:
                row[column] = to_utc(item[source], source)
        if row.get("updated_at") is None:  # absent or null: the run has not changed since creation
            row["updated_at"] = row["created_at"]
        for source, column in TEXT_FIELDS.items():
            if source in item:
                row[column] = _text(item[source], source)
        for source, column in NUMBER_FIELDS.items():
            if source in item:
                row[column] = _cost(item[source], source)
        for source, column in INTEGER_FIELDS.items():
            if source in item:
                row[column] = _integer(item[source], source)
        stored = SIZED_FIELDS if keep_private else JSON_FIELDS
        for source, column in stored.items():
            if source in item:
                row[column] = marks.get(source, item[source])
        for source, column in BOOL_FIELDS.items():
            if source in item:
                if not isinstance(item[source], bool | None):
                    raise BadRunError(f"{source} is not a boolean")
                row[column] = item[source]
        tags = item.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
            raise BadRunError("tags is not a list of strings")
        row["tags"] = list(dict.fromkeys(tags))  # a tag twice is one tag
        # Whether this response carried attempts / error decides which observation wins later.
        row["has_attempts"] = "attempts" in item and item["attempts"] is not None
        row["attempts"] = to_attempt_rows(item["attempts"]) if row["has_attempts"] else []
        row["attempts_listed"] = len(row["attempts"]) if row["has_attempts"] else None
        row["has_error"] = "error" in item
        for parent, children in OBJECT_FIELDS.items():
            if parent in item:
                row.update(_object(item[parent], parent, parent, children))
        extra = {k: v for k, v in item.items() if k not in KNOWN_FIELDS}
        if extra:
            row["extra"] = extra
    except BadRunError as exc:
        raise BadRunError(f"run {run_id[:64]}: {exc}") from None
    return row


def carries_details(item: dict[str, Any]) -> bool:
    """A documented-shape list item already holds what a details fetch would add."""
    return isinstance(item.get("attempts"), list) and "error" in item
