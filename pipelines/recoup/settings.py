"""Constants of the Recoup API and of the warehouse layout."""

RUNS_PATH = "/api/tasks/runs"
ACCOUNT_PATH = "/api/accounts/id"
LIST_LIMIT = 100  # the most one list call returns; there is no cursor beyond it
# How far the API's clock may run ahead of ours: a run's answers are stamped (`seen_at`) at or
# after its `created_at` less this, which bounds in time what a changed run can touch.
CLOCK_MARGIN = "interval 1 day"

PIPELINE_NAME = "recoup"
RAW_DATASET = "raw"  # must differ from the DuckDB file's own name

# The status vocabulary: the sync groups statuses with it, and the SQL models with
# sql/staging/status_groups.sql, which `python -m pipelines.status_groups` writes from it.
STATUS_GROUPS = {
    "queued": ("PENDING_VERSION", "WAITING_FOR_DEPLOY", "QUEUED", "DELAYED"),
    "running": ("DEQUEUED", "EXECUTING", "REATTEMPTING"),
    "waiting": ("WAITING", "FROZEN"),
    "succeeded": ("COMPLETED",),
    "failed": ("FAILED", "CRASHED", "SYSTEM_FAILURE", "INTERRUPTED", "TIMED_OUT"),
    "canceled": ("CANCELED",),
    "expired": ("EXPIRED",),
}
# A run in a finished group will not change any more. `unknown` (a status not listed above)
# is neither finished nor in flight: the sync keeps refreshing such a run, the report counts it.
TERMINAL_GROUPS = frozenset({"succeeded", "failed", "canceled", "expired"})
IN_FLIGHT_GROUPS = frozenset({"queued", "running", "waiting"})
GROUP_OF_STATUS = {status: group for group, statuses in STATUS_GROUPS.items() for status in statuses}
# List mode speaks the legacy vocabulary, retrieve mode the current one.
LEGACY_TO_CURRENT = {
    "FROZEN": "WAITING",
    "REATTEMPTING": "EXECUTING",
    "INTERRUPTED": "FAILED",
    "WAITING_FOR_DEPLOY": "PENDING_VERSION",
}
