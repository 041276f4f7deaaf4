"""Turns a World's internal run records into the JSON shapes the Recoup API answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pipelines.emulator.statuses import TERMINAL, to_current
from pipelines.emulator.world import iso

_OPTIONAL = ("idempotencyKey", "version", "startedAt", "finishedAt", "delayedUntil", "ttl",
             "expiredAt", "region")  # fmt: skip
_FAILED = {"FAILED", "CRASHED", "SYSTEM_FAILURE", "INTERRUPTED", "TIMED_OUT"}


def _dates(value: Any) -> Any:
    return iso(value) if isinstance(value, datetime) else value


def _flags(status: str) -> dict[str, bool]:
    return {
        "isQueued": status in ("QUEUED", "DELAYED", "PENDING_VERSION", "WAITING_FOR_DEPLOY"),
        "isExecuting": status in ("EXECUTING", "REATTEMPTING"),
        "isWaiting": status == "FROZEN",
        "isCompleted": status in TERMINAL,
        "isSuccess": status == "COMPLETED",
        "isFailed": status in _FAILED,
        "isCancelled": status == "CANCELED",
    }


def _base(run: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": run["id"],
        "status": run["status"],
        "taskIdentifier": run["taskIdentifier"],
        "createdAt": iso(run["createdAt"]),
        "updatedAt": iso(run["updatedAt"]),
        "isTest": run["isTest"],
        "tags": list(run["tags"]),
        "costInCents": run["costInCents"],
        "baseCostInCents": run["baseCostInCents"],
        "durationMs": run["durationMs"],
        "depth": run["depth"],
        "metadata": run["metadata"],
        "taskKind": run["taskKind"],
        **_flags(run["status"]),
    }


def _attempts(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: _dates(v) for k, v in attempt.items()} for attempt in run["attempts"]]


def _extras(run: dict[str, Any]) -> dict[str, Any]:
    return {
        "payload": run["payload"],
        "output": run["output"],
        "error": run["error"],
        "schedule": None,
        "relatedRuns": {"root": None, "parent": None, "children": []},
        "triggerFunction": "trigger",
        "batchId": None,
    }


def to_list_item(run: dict[str, Any], profile: str) -> dict[str, Any]:
    """A run as list mode shows it in the given profile (legacy status vocabulary)."""
    item = _base(run)
    item["env"] = dict(run["env"])
    if profile == "observed":
        # The server's source omits optional fields rather than sending null.
        item.update({k: _dates(run[k]) for k in _OPTIONAL if run.get(k) is not None})
        return item
    item.update({k: _dates(run.get(k)) for k in _OPTIONAL})
    item["attempts"] = _attempts(run)
    item.update(_extras(run))
    return item


def to_retrieved(run: dict[str, Any], profile: str) -> dict[str, Any]:
    """A run as retrieve mode shows it: current vocabulary, details, and no `env`."""
    item = _base(run)
    item["status"] = to_current(run["status"])
    item.update({k: _dates(run[k]) for k in _OPTIONAL if run.get(k) is not None})
    item.update(_extras(run))
    item["attemptCount"] = len(run["attempts"])
    if profile == "documented":
        item["attempts"] = _attempts(run)
    return item
