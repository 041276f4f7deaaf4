"""What a sync starts from: the runs the warehouse holds, their backlog, and dlt's stored state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
from dlt.common.versioned_state import decompress_state

from pipelines.query import scalar, timestamptz
from pipelines.recoup.index import Index, Job
from pipelines.recoup.options import FetchOptions
from pipelines.recoup.pages import OPEN_KEY, SOURCE_NAME, STATE_KEY, PageBook
from pipelines.recoup.settings import (
    CLOCK_MARGIN,
    GROUP_OF_STATUS,
    PIPELINE_NAME,
    RAW_DATASET,
    TERMINAL_GROUPS,
)
from pipelines.warehouse.raw_schema import table_kinds

# The list shows runs of about the last 7 days; the index holds twice that, measured back from
# the newest stored run (not the wall clock), plus every run still in flight or awaiting details.
INDEX_HORIZON_DAYS = 14
# A run created later than this after its answer arrived carries a wrong clock: it does not
# count as the newest run, or one such run would push every real one out of the index.
FUTURE_SKEW = timedelta(days=1)


def _stored_runs_sql(where: str = "true", since: str | None = None) -> str:
    """Each run's latest status and updatedAt, for the runs whose list answer matches `where`.

    Filtering the list answers first keeps the join small on a large history; `since` (a
    timestamptz literal) skips the runs, and the retrieve answers, created before it.
    """
    # The same rule as sql/intermediate/run_versions.sql (a later retrieve answer wins), read
    # from the raw tables so that a failed model build never misleads the next sync.
    # A retrieve answer left out by `since` only makes its run look undetailed: fetched again.
    created = "true" if since is None else f"created_at >= {since}"
    return f"""
        select l.id, l.account_id,
               case when d.seen_at > l.seen_at then d.status else l.status end as status,
               epoch_us(case when d.seen_at > l.seen_at then d.updated_at else l.updated_at end) as updated_us,
               epoch_us(d.updated_at) as detailed_us,
               epoch_us(l.created_at) as created_us
        from (select * from {RAW_DATASET}.runs where {created} and ({where})) l
        left join (select * from {RAW_DATASET}.run_details where {created}) d on d.id = l.id
    """


def _backlog_sql(since: str | None = None) -> str:
    """Finished runs not yet detailed at their current updatedAt (`?` = the statuses that qualify).

    A list answer that carried attempts and error needs no details; a retrieve answer newer
    than the list answer is itself the details.
    """
    listed = "coalesce(list_contains(?, status), false) and not coalesce(has_attempts and has_error, false)"
    return f"""
        select id, account_id, status, created_us from ({_stored_runs_sql(listed, since)})
        where detailed_us is distinct from updated_us
          and id not in (select run_id from {RAW_DATASET}.lost_runs)
    """


def open_since(con: duckdb.DuckDBPyConnection, state: dict[str, Any], options: FetchOptions) -> str | None:
    """A creation time before which no stored run is recent, in flight or awaiting details; None: unknown.

    The open-runs mark in the source state says that of the runs stored when an earlier sync
    read them (`since`, read at `through`, under the same options). A run enters one of those
    sets only by an answer, and every answer since then arrived after `through`: so the bound
    is the mark or the oldest creation among those answers, whichever is older. As a
    timestamptz literal, it lets DuckDB skip the row groups (and DuckLake the files) of older runs.
    """
    mark = state.get(OPEN_KEY)
    if not isinstance(mark, dict) or mark.get("options") != str(options):
        return None
    try:
        since, through = datetime.fromisoformat(mark["since"]), datetime.fromisoformat(mark["through"])
    except (KeyError, TypeError, ValueError):
        return None
    if since.tzinfo is None or through.tzinfo is None:
        return None
    answered = scalar(con.execute(f"""
        select least((select min(created_at) from {RAW_DATASET}.runs where seen_at >= $1 - {CLOCK_MARGIN}),
                     (select min(created_at) from {RAW_DATASET}.run_details where seen_at >= $1 - {CLOCK_MARGIN}))
    """, [through]))  # fmt: skip
    return timestamptz(since if answered is None else min(since, answered))


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
    read_at = datetime.now(UTC)  # every answer loaded after this read arrives later
    state = read_source_state(con)
    since = open_since(con, state, options)
    terminal = _detail_statuses("all")
    in_flight = f"not coalesce(list_contains({terminal!r}, status), false)"  # a finished run stays finished
    newest = _newest(con, since) or (_newest(con, None) if since else None)
    recent = in_flight
    if newest is not None:
        horizon = newest - timedelta(days=INDEX_HORIZON_DAYS)
        recent = f"created_at >= {timestamptz(horizon)} or {in_flight}"
    latest = (
        f"select id, account_id, status, updated_us, detailed_us from ({_stored_runs_sql(recent, since)})"
    )
    # Read only if a page changed, maybe from a listing thread while this connection loads:
    # it gets a connection of its own, closed with the sync's.
    reader = con.cursor()
    if database:
        reader.execute(f"use {database}")
    index.read_latest = lambda: reader.execute(latest).to_arrow_table()
    flying = con.execute(f"""
        select account_id, list(id order by id), min(created_us) from ({_stored_runs_sql(in_flight, since)})
        where not coalesce(list_contains(?, status), false)
          and id not in (select run_id from {RAW_DATASET}.lost_runs)
        group by account_id
    """, [terminal]).fetchall()  # fmt: skip
    index.in_flight_ids = {account: ids for account, ids, _ in flying}
    oldest = [created for *_, created in flying]
    if options.details != "none":
        failed = set(_detail_statuses("failed"))
        for run_id, account, status, created_us in con.execute(
            _backlog_sql(since), [_detail_statuses(options.details)]
        ).fetchall():
            job = Job(run_id, account, status in failed, created_us or 0, listed=True)
            index.backlog.setdefault(account, []).append(job)
            oldest.append(created_us)
    if newest is not None:
        marked = min([horizon, *(datetime.fromtimestamp(us / 1e6, UTC) for us in oldest if us is not None)])
        index.open_mark = {
            "since": marked.isoformat(),
            "through": read_at.isoformat(),
            "options": str(options),
        }
    index.stored_runs = dict(
        con.execute(f"select account_id, count(*) from {RAW_DATASET}.runs group by account_id").fetchall()
    )
    index.page_book = PageBook(state.get(STATE_KEY, {}), index.stored_runs, str(options))
    index.pages = index.page_book.known()
    return index


def _newest(con: duckdb.DuckDBPyConnection, since: str | None) -> datetime | None:
    """The newest stored run's creation, not counting runs whose clock runs a day ahead."""
    created = "true" if since is None else f"created_at >= {since}"
    return scalar(con.execute(
        f"select max(created_at) from {RAW_DATASET}.runs where {created} and created_at <= seen_at + ?", [FUTURE_SKEW]
    ))  # fmt: skip


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


def details_pending(con: duckdb.DuckDBPyConnection, options: FetchOptions) -> dict[str, int]:
    """Each account's details backlog as the warehouse now holds it."""
    if options.details == "none":
        return {}
    since = open_since(con, read_source_state(con), options)
    rows = con.execute(
        f"select account_id, count(*) from ({_backlog_sql(since)}) group by account_id",
        [_detail_statuses(options.details)],
    ).fetchall()
    return dict(rows)
