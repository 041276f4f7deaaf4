"""Pure functions that turn Recoup API run objects into warehouse rows.

A run object is validated field by field: a missing or unusable `id` or `createdAt`, or a known
field of the wrong type, rejects that one run with a reason (it is never loaded half right).
Fields the API adds later are kept whole in the `extra` JSON column, never dropped silently.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pipelines.recoup.errors import BadRunError
from pipelines.recoup.settings import GROUP_OF_STATUS, TERMINAL_GROUPS

TIME_FIELDS = {"createdAt": "created_at", "updatedAt": "updated_at", "startedAt": "started_at",
               "finishedAt": "finished_at", "delayedUntil": "delayed_until", "expiredAt": "expired_at"}  # fmt: skip
TEXT_FIELDS = {"status": "status", "taskIdentifier": "task_identifier", "taskKind": "task_kind",
               "version": "version", "idempotencyKey": "idempotency_key", "region": "region",
               "batchId": "batch_id", "triggerFunction": "trigger_function"}  # fmt: skip
NUMBER_FIELDS = {"costInCents": "cost_in_cents", "baseCostInCents": "base_cost_in_cents"}
INTEGER_FIELDS = {"durationMs": "duration_ms", "depth": "depth", "attemptCount": "attempt_count"}
JSON_FIELDS = {"metadata": "metadata", "schedule": "schedule", "relatedRuns": "related_runs", "ttl": "ttl"}
PRIVATE_FIELDS = {"payload": "payload", "output": "output"}  # stored only when asked for
# Derived from status, so not worth a column.
_FLAGS = {"isQueued", "isExecuting", "isWaiting", "isCompleted", "isSuccess", "isFailed", "isCancelled"}
_SPECIAL = {"id", "isTest", "env", "tags", "attempts", "error"}
KNOWN_FIELDS = frozenset().union(TIME_FIELDS, TEXT_FIELDS, NUMBER_FIELDS, INTEGER_FIELDS, JSON_FIELDS,
                                 PRIVATE_FIELDS, _FLAGS, _SPECIAL)  # fmt: skip


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def micros(moment: datetime | None) -> int | None:
    """A UTC datetime as whole microseconds since the epoch (exact, cheap to compare)."""
    return None if moment is None else (moment - _EPOCH) // _MICRO


def status_group(status: str | None) -> str:
    """Maps a status of either vocabulary to its group; anything unknown is `unknown`."""
    return GROUP_OF_STATUS.get(status or "", "unknown")


def is_terminal(status: str | None) -> bool:
    """True when the run will not change any more (succeeded, failed, canceled, expired)."""
    return status_group(status) in TERMINAL_GROUPS


def to_utc(value: Any, field: str) -> datetime | None:
    """Parses an ISO-8601 string (any offset, `Z` included) into an aware UTC datetime."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRunError(f"{field} is not a date string")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BadRunError(f"{field} is not an ISO-8601 date: {value[:40]!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _text(value: Any, field: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise BadRunError(f"{field} is not a string")


def _number(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRunError(f"{field} is not a number")
    return float(value)


def _integer(value: Any, field: str) -> int | None:
    number = _number(value, field)
    if number is None:
        return None
    if not number.is_integer():
        raise BadRunError(f"{field} is not a whole number")
    return int(number)


def _error(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {"message": None, "name": None, "stack_trace": None}
    if isinstance(value, str):  # tolerated: some upstream errors are bare strings
        return {"message": value, "name": None, "stack_trace": None}
    if not isinstance(value, dict):
        raise BadRunError(f"{field} is not an object")
    return {
        "message": _text(value.get("message"), f"{field}.message"),
        "name": _text(value.get("name"), f"{field}.name"),
        "stack_trace": _text(value.get("stackTrace"), f"{field}.stackTrace"),
    }


def to_attempt_rows(attempts: Any) -> list[dict[str, Any]]:
    """Attempts in API order, numbered from 1."""
    if not isinstance(attempts, list):
        raise BadRunError("attempts is not a list")
    rows = []
    for number, attempt in enumerate(attempts, start=1):
        field = f"attempts[{number - 1}]"
        if not isinstance(attempt, dict):
            raise BadRunError(f"{field} is not an object")
        error = _error(attempt.get("error"), f"{field}.error")
        rows.append({
            "attempt_id": _text(attempt.get("id"), f"{field}.id"),
            "attempt_number": number,
            "status": _text(attempt.get("status"), f"{field}.status"),
            "created_at": to_utc(attempt.get("createdAt"), f"{field}.createdAt"),
            "updated_at": to_utc(attempt.get("updatedAt"), f"{field}.updatedAt"),
            "started_at": to_utc(attempt.get("startedAt"), f"{field}.startedAt"),
            "completed_at": to_utc(attempt.get("completedAt"), f"{field}.completedAt"),
            "error_message": error["message"],
            "error_name": error["name"],
        })  # fmt: skip
    return rows


def to_run_row(
    item: Any, *, account_id: str, seen_at: datetime, keep_private: bool = False
) -> dict[str, Any]:
    """One API run object as one warehouse row (tags and attempts stay nested lists).

    Args:
        item: the run object from a list or retrieve response.
        account_id: the account this run was synced for.
        seen_at: when the response arrived; orders observations of the same run.
        keep_private: store `payload` and `output` (large, possibly private) too.

    Raises:
        BadRunError: the run cannot be stored; the message says why.
    """
    if not isinstance(item, dict):
        raise BadRunError("run is not an object")
    run_id = item.get("id")
    if not isinstance(run_id, str) or not run_id.strip():
        raise BadRunError("run has no id")
    try:
        if item.get("createdAt") is None:
            raise BadRunError("createdAt is missing")
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
                row[column] = _number(item[source], source)
        for source, column in INTEGER_FIELDS.items():
            if source in item:
                row[column] = _integer(item[source], source)
        for source, column in JSON_FIELDS.items():
            if source in item:
                row[column] = item[source]
        if keep_private:
            row.update({column: item[source] for source, column in PRIVATE_FIELDS.items() if source in item})
        if "isTest" in item:
            if not isinstance(item["isTest"], bool | None):
                raise BadRunError("isTest is not a boolean")
            row["is_test"] = item["isTest"]
        env = item.get("env")
        if env is not None:
            if not isinstance(env, dict):
                raise BadRunError("env is not an object")
            row["env_id"] = _text(env.get("id"), "env.id")
            row["env_name"] = _text(env.get("name"), "env.name")
        tags = item.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
            raise BadRunError("tags is not a list of strings")
        row["tags"] = list(dict.fromkeys(tags))  # a tag twice is one tag
        # Whether this response carried attempts / error decides which observation wins later.
        row["has_attempts"] = "attempts" in item and item["attempts"] is not None
        row["attempts"] = to_attempt_rows(item["attempts"]) if row["has_attempts"] else []
        row["attempts_listed"] = len(row["attempts"]) if row["has_attempts"] else None
        row["has_error"] = "error" in item
        if row["has_error"]:
            error = _error(item["error"], "error")
            row.update(error_message=error["message"], error_name=error["name"],
                       error_stack_trace=error["stack_trace"])  # fmt: skip
        extra = {k: v for k, v in item.items() if k not in KNOWN_FIELDS}
        if extra:
            row["extra"] = extra
    except BadRunError as exc:
        raise BadRunError(f"run {run_id[:64]}: {exc}") from None
    return row


def carries_details(item: dict[str, Any]) -> bool:
    """A documented-shape list item already holds what a details fetch would add."""
    return isinstance(item.get("attempts"), list) and "error" in item
