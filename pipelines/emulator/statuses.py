"""Status vocabularies of the Recoup API: legacy (list mode) and current (retrieve mode)."""

LEGACY_STATUSES = (
    "PENDING_VERSION", "WAITING_FOR_DEPLOY", "QUEUED", "EXECUTING", "REATTEMPTING", "FROZEN",
    "COMPLETED", "CANCELED", "FAILED", "CRASHED", "INTERRUPTED", "SYSTEM_FAILURE", "DELAYED",
    "EXPIRED", "TIMED_OUT",
)  # fmt: skip

CURRENT_STATUSES = (
    "PENDING_VERSION", "QUEUED", "DEQUEUED", "EXECUTING", "WAITING", "COMPLETED", "CANCELED",
    "FAILED", "CRASHED", "SYSTEM_FAILURE", "DELAYED", "EXPIRED", "TIMED_OUT",
)  # fmt: skip

_LEGACY_TO_CURRENT = {
    "FROZEN": "WAITING",
    "REATTEMPTING": "EXECUTING",
    "INTERRUPTED": "FAILED",
    "WAITING_FOR_DEPLOY": "PENDING_VERSION",
}

TERMINAL = {"COMPLETED", "CANCELED", "FAILED", "CRASHED", "INTERRUPTED", "SYSTEM_FAILURE",
            "EXPIRED", "TIMED_OUT"}  # fmt: skip


def to_current(legacy_status: str) -> str:
    """Maps a legacy status to the current vocabulary used by retrieve mode."""
    return _LEGACY_TO_CURRENT.get(legacy_status, legacy_status)
