"""The dlt source `recoup`: every configured account's task runs, merged on run id.

Two observations of a run land in two tables, both merged on `id`:
`runs` holds what list mode last said, `run_details` what retrieve mode last said. Each keeps
its own child tables (`__tags`, `__attempts`), so a field one kind of answer does not carry is
never erased by the other; the analytics models reconcile them (latest observation wins).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import dlt

from pipelines.recoup.client import RecoupClient
from pipelines.recoup.fetch import AccountResult, FetchOptions, Index, fetch_all


def _column(name: str, data_type: str, **hints: Any) -> dict[str, Any]:
    return {"name": name, "data_type": data_type, **hints}


RUN_COLUMNS = {c["name"]: c for c in (
    _column("id", "text", nullable=False, primary_key=True),
    _column("account_id", "text"), _column("status", "text"), _column("task_identifier", "text"),
    _column("created_at", "timestamp"), _column("updated_at", "timestamp"),
    _column("started_at", "timestamp"), _column("finished_at", "timestamp"),
    _column("delayed_until", "timestamp"), _column("expired_at", "timestamp"),
    _column("seen_at", "timestamp"), _column("is_test", "bool"),
    _column("env_id", "text"), _column("env_name", "text"),
    _column("cost_in_cents", "double"), _column("base_cost_in_cents", "double"),
    _column("duration_ms", "bigint"), _column("depth", "bigint"), _column("attempt_count", "bigint"),
    _column("task_kind", "text"), _column("version", "text"), _column("idempotency_key", "text"),
    _column("region", "text"), _column("batch_id", "text"), _column("trigger_function", "text"),
    _column("has_attempts", "bool"), _column("has_error", "bool"),
    _column("error_message", "text"), _column("error_name", "text"), _column("error_stack_trace", "text"),
    _column("metadata", "json"), _column("schedule", "json"), _column("related_runs", "json"),
    _column("ttl", "json"), _column("payload", "json"), _column("output", "json"), _column("extra", "json"),
)}  # fmt: skip
ATTEMPT_COLUMNS = {c["name"]: c for c in (
    _column("attempt_id", "text"), _column("attempt_number", "bigint"), _column("status", "text"),
    _column("created_at", "timestamp"), _column("updated_at", "timestamp"),
    _column("started_at", "timestamp"), _column("completed_at", "timestamp"),
    _column("error_message", "text"), _column("error_name", "text"),
)}  # fmt: skip
TAG_COLUMNS = {"value": _column("value", "text")}
NESTED = {"attempts": {"columns": ATTEMPT_COLUMNS}, "tags": {"columns": TAG_COLUMNS}}
DETAILS_HINTS = dlt.mark.make_hints(
    table_name="run_details",
    write_disposition="merge",
    primary_key="id",
    columns=RUN_COLUMNS,
    nested_hints=NESTED,
)


@dlt.source(name="recoup", max_table_nesting=1)
def recoup(
    client: RecoupClient,
    accounts: list[str],
    index: Index,
    options: FetchOptions | None = None,
    own: bool = False,
    concurrency: int = 8,
    on_result: Callable[[AccountResult], None] | None = None,
) -> Any:
    """Runs of `accounts`, compared with `index` (what the warehouse already holds).

    Args:
        client: the Recoup API client (base URL, key and transport are its business).
        accounts: account ids to sync; with `own`, the single id of the key's own account.
        index: the runs already stored; only new or changed runs are yielded.
        options: details and privacy settings.
        own: list without `account_id` (the key's own account).
        concurrency: accounts in progress at once.
        on_result: called with each account's result, e.g. to report progress.
    """

    @dlt.resource(name="runs", write_disposition="merge", primary_key="id", columns=RUN_COLUMNS,
                  nested_hints=NESTED)  # fmt: skip
    def runs() -> Iterator[Any]:
        for result in fetch_all(
            client, accounts, index, options or FetchOptions(), own, concurrency, on_result
        ):
            if result.list_rows:
                yield result.list_rows  # whole pages, never row by row
            if result.detail_rows:
                yield dlt.mark.with_hints(result.detail_rows, DETAILS_HINTS, create_table_variant=True)

    return runs
