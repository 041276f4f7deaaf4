"""What a sync starts from: the runs the warehouse holds, their backlog, and dlt's stored state."""

from __future__ import annotations

from datetime import timedelta

import duckdb
from dlt.common.versioned_state import decompress_state

from pipelines.query import scalar
from pipelines.recoup.index import Index, Job
from pipelines.recoup.options import FetchOptions
from pipelines.recoup.pages import SOURCE_NAME, STATE_KEY, PageBook
from pipelines.recoup.settings import GROUP_OF_STATUS, PIPELINE_NAME, RAW_DATASET, TERMINAL_GROUPS
from pipelines.warehouse.raw_schema import table_kinds

# The list shows runs of about the last 7 days; the index holds twice that, measured back from
# the newest stored run (not the wall clock), plus every run still in flight or awaiting details.
INDEX_HORIZON_DAYS = 14
# A run created later than this after its answer arrived carries a wrong clock: it does not
# count as the newest run, or one such run would push every real one out of the index.
FUTURE_SKEW = timedelta(days=1)


def _stored_runs_sql(where: str = "true") -> str:
    """Each run's latest status and updatedAt, for the runs whose list answer matches `where`.

    Filtering the list answers first keeps the join small on a large history.
    """
    # The same rule as sql/intermediate/run_versions.sql (a later retrieve answer wins), read
    # from the raw tables so that a failed model build never misleads the next sync.
    return f"""
        select l.id, l.account_id,
               case when d.seen_at > l.seen_at then d.status else l.status end as status,
               epoch_us(case when d.seen_at > l.seen_at then d.updated_at else l.updated_at end) as updated_us,
               epoch_us(d.updated_at) as detailed_us,
               epoch_us(l.created_at) as created_us
        from (select * from {RAW_DATASET}.runs where {where}) l
        left join {RAW_DATASET}.run_details d on d.id = l.id
    """


def _backlog_sql() -> str:
    """Finished runs not yet detailed at their current updatedAt (`?` = the statuses that qualify).

    A list answer that carried attempts and error needs no details; a retrieve answer newer
    than the list answer is itself the details.
    """
    listed = "coalesce(list_contains(?, status), false) and not coalesce(has_attempts and has_error, false)"
    return f"""
        select id, account_id, status, created_us from ({_stored_runs_sql(listed)})
        where detailed_us is distinct from updated_us
          and id not in (select run_id from {RAW_DATASET}.lost_runs)
    """


def _detail_statuses(details: str) -> list[str]:
    groups = {"all": TERMINAL_GROUPS, "failed": {"failed"}, "none": set()}[details]
    return [status for status, group in GROUP_OF_STATUS.items() if group in groups]


def read_index(con: duckdb.DuckDBPyConnection, options: FetchOptions, database: str | None = None) -> Index:
    """What the warehouse holds that this sync starts from.

    That is each recent run's latest status and updatedAt and its details mark, the runs in
    flight, the details backlog, and each account's last list page read under the same
    `options`. A warehouse that dlt has not loaded yet reads as empty.

    Args:
        database: the attached database `con` reads from (its current one), which the lazy
            reader of the recent runs must use too (a lake); None: the connection's own file.
    """
    index = Index()
    if {"runs", "run_details"} - set(table_kinds(con)):
        index.page_book = PageBook(options=str(options))
        return index
    terminal = _detail_statuses("all")
    in_flight = f"not coalesce(list_contains({terminal!r}, status), false)"  # a finished run stays finished
    newest = scalar(con.execute(
        f"select max(created_at) from {RAW_DATASET}.runs where created_at <= seen_at + ?", [FUTURE_SKEW]
    ))  # fmt: skip
    recent = in_flight
    if newest is not None:
        horizon = newest - timedelta(days=INDEX_HORIZON_DAYS)
        recent = f"created_at >= '{horizon.isoformat()}'::timestamptz or {in_flight}"
    latest = f"select id, account_id, status, updated_us, detailed_us from ({_stored_runs_sql(recent)})"
    # Read only if a page changed, maybe from a listing thread while this connection loads:
    # it gets a connection of its own, closed with the sync's.
    reader = con.cursor()
    if database:
        reader.execute(f"use {database}")
    index.read_latest = lambda: reader.execute(latest).to_arrow_table()
    flying = con.execute(f"""
        select account_id, list(id order by id) from ({_stored_runs_sql(in_flight)})
        where not coalesce(list_contains(?, status), false)
          and id not in (select run_id from {RAW_DATASET}.lost_runs)
        group by account_id
    """, [terminal]).fetchall()  # fmt: skip
    index.in_flight_ids = dict(flying)
    if options.details != "none":
        failed = set(_detail_statuses("failed"))
        for run_id, account, status, created_us in con.execute(
            _backlog_sql(), [_detail_statuses(options.details)]
        ).fetchall():
            job = Job(run_id, account, status in failed, created_us or 0, listed=True)
            index.backlog.setdefault(account, []).append(job)
    index.stored_runs = dict(
        con.execute(f"select account_id, count(*) from {RAW_DATASET}.runs group by account_id").fetchall()
    )
    index.page_book = PageBook(read_source_state(con).get(STATE_KEY, {}), index.stored_runs, str(options))
    index.pages = index.page_book.known()
    return index


STATES_KEPT = 10  # dlt appends a state row at every load that changed it; older ones are never read


def keep_recent_states(con: duckdb.DuckDBPyConnection) -> None:
    """Deletes all but the newest states dlt stored (each holds every account's page mark)."""
    con.execute(f"""
        delete from {RAW_DATASET}._dlt_pipeline_state where created_at < (
            select min(created_at) from (
                select created_at from {RAW_DATASET}._dlt_pipeline_state order by created_at desc limit {STATES_KEPT}))
    """)  # fmt: skip


def read_source_state(con: duckdb.DuckDBPyConnection) -> dict:
    """The state of the source `recoup` as dlt last stored it in the warehouse.

    It is what dlt itself restores when its local folder is gone; empty before dlt first loaded.
    """
    exists = scalar(
        con.execute(
            "select count(*) from information_schema.tables"
            " where table_catalog = current_database() and table_schema = ? and table_name = ?",
            [RAW_DATASET, "_dlt_pipeline_state"],
        )
    )
    if not exists:
        return {}
    row = con.execute(f"""
        select state from {RAW_DATASET}._dlt_pipeline_state where pipeline_name = ?
        order by created_at desc, version desc limit 1
    """, [PIPELINE_NAME]).fetchone()  # fmt: skip
    if row is None:
        return {}
    return decompress_state(row[0]).get("sources", {}).get(SOURCE_NAME, {})


def details_pending(con: duckdb.DuckDBPyConnection, details: str) -> dict[str, int]:
    """Each account's details backlog as the warehouse now holds it."""
    if details == "none":
        return {}
    rows = con.execute(
        f"select account_id, count(*) from ({_backlog_sql()}) group by account_id",
        [_detail_statuses(details)],
    ).fetchall()
    return dict(rows)
