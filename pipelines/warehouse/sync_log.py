"""What a sync records when it ends: one sync_log row per account, and the runs the API forgot."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pyarrow as pa

from pipelines.recoup.outcomes import AccountLog
from pipelines.recoup.settings import RAW_DATASET


def remember_lost(con: duckdb.DuckDBPyConnection, synced_at: datetime, logs: list[AccountLog]) -> None:
    """Remembers the runs the API no longer knows.

    They keep their last state and are never asked for again.
    """
    lost = pa.table({"run_id": pa.array([run_id for r in logs for run_id in r.lost], pa.string())})
    if lost.num_rows:  # one statement: executemany costs milliseconds a row
        con.register("lost_rows", lost)
        con.execute(
            f"insert into {RAW_DATASET}.lost_runs select distinct run_id, ? from lost_rows "
            f"where run_id not in (select run_id from {RAW_DATASET}.lost_runs)",
            [synced_at],
        )
        con.unregister("lost_rows")


def append_sync_log(
    con: duckdb.DuckDBPyConnection, synced_at: datetime, logs: list[AccountLog], pending: dict[str, int]
) -> None:
    """Appends one sync_log row per account.

    Their `finished_at` is now: the sync has fetched and loaded everything, and what is left is
    the publish (the models and the rename, or the lake's commit).

    Args:
        pending: each account's details backlog after this sync.
    """
    finished_at = datetime.now(UTC)
    log = pa.table({
        "synced_at": pa.array([synced_at] * len(logs), pa.timestamp("us", tz="UTC")),
        "account_id": [r.account for r in logs],
        "runs_seen": pa.array([r.runs_seen for r in logs], pa.int32()),
        "runs_new": pa.array([r.new for r in logs], pa.int32()),
        "runs_updated": pa.array([len(r.updated) for r in logs], pa.int32()),
        "runs_refreshed": pa.array([r.refreshed for r in logs], pa.int32()),
        "runs_lost": pa.array([len(r.lost) for r in logs], pa.int32()),
        "possible_gap": pa.array([r.possible_gap for r in logs], pa.bool_()),
        "error": pa.array([r.full_error() for r in logs], pa.string()),
        "runs_foreign": pa.array([len(r.foreign) for r in logs], pa.int32()),
        "details_pending": pa.array([pending.get(r.account, 0) for r in logs], pa.int32()),
        "first_sync": pa.array([r.first_sync for r in logs], pa.bool_()),
        "finished_at": pa.array([finished_at] * len(logs), pa.timestamp("us", tz="UTC")),
    })  # fmt: skip
    con.register("sync_log_rows", log)
    con.execute(f"insert into {RAW_DATASET}.sync_log by name select * from sync_log_rows")
    con.unregister("sync_log_rows")
