"""Applies the SQL models in `sql/` to a warehouse, in dependency order, all or nothing.

All or nothing: a broken model changes nothing and is reported with its file name and
DuckDB's message. An update runs in one transaction; a full rebuild is staged in committed
steps and swapped in by one (`staged.py`), so that its memory stays within budget. A sync updates the tables for the runs it loaded instead of
rebuilding them: an incremental table (see `files.py`) is rebuilt only for the keys the changed
runs' source rows hold, before and after the change (a run id, or a day and an account).
A full rebuild (`recoup models`) gives the same tables.

The build records the newest answer it covered (`built_through`), committed with the models:
a build that fails leaves it behind, so the next sync's update also covers the runs the failed
one loaded, and `recoup status` can tell that the models lag the raw tables.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

import duckdb

from pipelines.models.checks import check_models
from pipelines.models.comments import describe
from pipelines.models.files import CHANGED_RUNS, SQL_DIR, Model, ModelError, creation_bound, load_models
from pipelines.models.staged import rebuild
from pipelines.query import one_row, scalar, use_settings, utc
from pipelines.recoup.settings import RAW_DATASET

FINGERPRINT_TABLE = "intermediate.models_fingerprint"
DLT_STAGING = f"{RAW_DATASET}_staging"
LARGE_CHANGE = 100_000  # changed runs from which a sync may rebuild the models whole (below)


def _fingerprint(models: list[Model]) -> str:
    return hashlib.sha256("\n".join(f"{m.name}\n{m.kind}\n{m.sql}" for m in models).encode()).hexdigest()


def _stored(con: duckdb.DuckDBPyConnection) -> tuple[str | None, datetime | None]:
    """The fingerprint of the models built and the newest answer that build covered."""
    try:
        row = con.execute(f"select fingerprint, built_through from {FINGERPRINT_TABLE}").fetchone()
    except (duckdb.CatalogException, duckdb.BinderException):  # never built, or before this record
        return None, None
    return (row[0], utc(row[1])) if row else (None, None)


def newest_answer(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """When the newest answer in the raw tables arrived; None before the first load."""
    try:
        return utc(scalar(con.execute(
            "select greatest((select max(seen_at) from raw.runs), (select max(seen_at) from raw.run_details))"
        )))  # fmt: skip
    except duckdb.CatalogException:
        return None


def models_behind(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """The newest answer the built models cover, when the raw tables hold newer ones; else None.

    A failed build leaves the models there until a build succeeds (the next sync's, or
    `recoup models`). Models never built, or built before this record existed, give None.
    """
    _, through = _stored(con)
    return through if _lags(through, newest_answer(con)) else None


def _lags(through: datetime | None, newest: datetime | None) -> bool:
    """True when the raw tables hold an answer newer than the last build covered."""
    return through is not None and newest is not None and newest > through


def _update(
    con: duckdb.DuckDBPyConnection, models: list[Model], built: set[str], since: datetime | None
) -> None:
    """Brings table models up to date for the runs in CHANGED_RUNS; views need nothing.

    For each incremental table: the keys the changed runs held before anything moved and the
    keys they hold now; the rows of those keys are deleted and built again from the source
    rows of those keys only. `since`, when given, is a time before which no row of a changed
    run lies, stored or new (see `apply_models`' `fixed_creation`); otherwise those rows are
    found by key among every row. A table keyed by a UTC day reads its keys' source rows from
    that day's midnight either way: they include unchanged runs created before any changed one.
    """
    tables = [m for m in models if m.kind == "table"]
    rebuilt: set[str] = set()
    for model in tables:
        if model.incremental and model.name in built:
            con.execute(
                f"create or replace temp table keys_{model.path.stem} as {model.incremental.touched(since)}"
            )
    for model in tables:
        plan = model.incremental
        if not plan or model.name not in built:
            con.execute(f"create or replace table {model.name} as\n{model.sql}")
            rebuilt.add(model.name)
            continue
        keys = f"keys_{model.path.stem}"
        if plan.keys != [("run_id", "run_id")]:  # a run's id does not change; other keys may
            con.execute(f"insert into {keys} {plan.touched(since)}")
        con.execute(f"delete from {model.name} where {plan.stored(keys, since)}")
        oldest = plan.oldest(con, keys, since)
        sql = re.sub(rf"\b{re.escape(plan.source)}\b", plan.matching(keys, oldest), model.sql)
        con.execute(f"insert into {model.name} {sql}")
    describe(con, models, only=rebuilt)


def _built(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "select table_schema || '.' || table_name from information_schema.tables where table_type = 'BASE TABLE'"
    ).fetchall()
    return {name for (name,) in rows}


def apply_models(
    con: duckdb.DuckDBPyConnection,
    sql_dir: Path = SQL_DIR,
    unless_unchanged: bool = False,
    changed_since: datetime | None = None,
    own_transaction: bool = True,
    fixed_creation: bool = False,
    rebuild_limits: Callable[[int], Mapping[str, str | int]] | None = None,
) -> list[str]:
    """Builds every model, all or nothing; returns their names in build order.

    Args:
        unless_unchanged: skip the build when the models are the ones already built and
            cover every answer (the caller knows no data changed since); returns [] then.
        changed_since: update the tables only for the runs answered since then (a sync's
            start) or since the newest answer the last build covered, whichever is older,
            when the models are the ones already built and the change is a small part of the
            runs; otherwise rebuild everything.
        own_transaction: build in transactions of its own (a full rebuild in committed steps,
            see `staged.py`); False builds inside the caller's (as the lake's one snapshot per
            sync does), leaving the commit or rollback to the caller.
        fixed_creation: every answer about a run gives the same `created_at`, as the lake's
            merge also relies on (Trigger.dev sets it once). An update then reads the stored
            rows of the changed runs from a day before the oldest changed run's creation, as
            the data tests do, instead of looking them up by run id among every run.
        rebuild_limits: DuckDB's settings for a full rebuild in committed steps, given the
            stored runs (its joins over every run spill less with more memory); the connection
            keeps them after the build. None keeps the connection's own.

    Raises:
        ModelError: a model or data test failed, or DuckDB ran out of its memory budget.
    """
    models = load_models(sql_dir)
    fingerprint = _fingerprint(models)
    stored, through = _stored(con)
    same = stored == fingerprint
    newest = newest_answer(con)
    if unless_unchanged and same and not _lags(through, newest):
        return []
    # An earlier build that failed left `through` before this sync: its runs are updated too.
    since = min(changed_since, through) if same and changed_since and through else None
    record = (fingerprint, newest)
    try:
        if not own_transaction:
            _build(con, models, record, sql_dir, since, fixed_creation)
        elif since is None or _mostly_changed(con, since):

            def swap_in() -> None:  # inside the swap's transaction, before it commits
                _describe(con, models)
                _finish(con, models, record, sql_dir, updated=False)

            if rebuild_limits:
                use_settings(con, rebuild_limits(_stored_runs(con)))
            rebuild(con, models, sql_dir, swap_in)
        else:
            con.execute("begin transaction")
            try:
                _build(con, models, record, sql_dir, since, fixed_creation)
            except BaseException:
                con.execute("rollback")
                raise
            con.execute("commit")
    except duckdb.OutOfMemoryException as exc:
        budget = scalar(con.execute("select current_setting('memory_limit')"))
        raise ModelError(
            f"out of memory within {budget} (RECOUP_MEMORY_MB caps every step): {str(exc).splitlines()[0]}"
        ) from None
    return [m.name for m in models]


def _stored_runs(con: duckdb.DuckDBPyConnection) -> int:
    try:
        return int(scalar(con.execute("select count(*) from raw.runs")))
    except duckdb.CatalogException:
        return 0


def _mostly_changed(con: duckdb.DuckDBPyConnection, since: datetime) -> bool:
    """True when the runs answered since `since` are many, and a tenth of the runs or more.

    Updating that many keys inside one transaction holds them all in memory; the staged
    rebuild commits as it goes and costs little more than such an update.
    """
    changed = scalar(con.execute(  # a few runs answered since, found without counting them all
        "select count(*) from (select 1 from raw.runs where seen_at >= $1 limit $2)", [since, LARGE_CHANGE]
    ))  # fmt: skip
    if changed < LARGE_CHANGE:
        return False
    changed, stored = one_row(con.execute(
        "select count(*) filter (where seen_at >= $1), count(*) from raw.runs", [since]
    ))  # fmt: skip
    return changed * 10 >= stored


def _describe(con: duckdb.DuckDBPyConnection, models: list[Model]) -> None:
    """The comments of every model; a failure is a ModelError naming them."""
    try:
        describe(con, models)
    except duckdb.OutOfMemoryException:
        raise
    except duckdb.Error as exc:
        raise ModelError(f"the comments: {str(exc).splitlines()[0]}") from None


def _build(
    con: duckdb.DuckDBPyConnection,
    models: list[Model],
    record: tuple[str, datetime | None],
    sql_dir: Path,
    changed_since: datetime | None,
    fixed_creation: bool,
) -> None:
    """The statements of one build, inside the caller's transaction.

    `record` is what the build stores beside the models: their fingerprint and the newest
    answer they cover.
    """
    for schema in {m.schema for m in models}:
        con.execute(f"create schema if not exists {schema}")
    current = None
    try:
        if changed_since is not None:
            current = "the changed runs"
            con.execute(f"""
                create or replace temp table {CHANGED_RUNS} as
                select id as run_id, min(created_at) as created_at, bool_or(created_at is null) as undated
                from (select id, created_at from raw.runs where seen_at >= $1
                      union all select id, created_at from raw.run_details where seen_at >= $1)
                group by id
            """, [changed_since])  # fmt: skip
            _update(con, models, _built(con), creation_bound(con) if fixed_creation else None)
        else:
            for model in models:
                current = str(model.path.relative_to(sql_dir.parent))
                con.execute(f"create or replace {model.kind} {model.name} as\n{model.sql}")
    except duckdb.OutOfMemoryException:
        raise
    except duckdb.Error as exc:
        raise ModelError(f"{current}: {str(exc).splitlines()[0]}") from None
    if changed_since is None:
        _describe(con, models)  # an update described the tables it rebuilt
    _finish(con, models, record, sql_dir, updated=changed_since is not None)


def _finish(
    con: duckdb.DuckDBPyConnection,
    models: list[Model],
    record: tuple[str, datetime | None],
    sql_dir: Path,
    updated: bool,
) -> None:
    """What every build ends with, inside its transaction: the data tests, then the record.

    `updated`: the build updated the changed runs' rows only (the scoped tests check those).
    """
    check_models(con, sql_dir, updated=updated)
    fingerprint, newest = record
    con.execute(
        f"create or replace table {FINGERPRINT_TABLE} as select ? as fingerprint, ?::timestamp as built_through",
        [fingerprint, None if newest is None else newest.replace(tzinfo=None)],
    )
    # dlt's merge staging (its `<dataset>_staging` layout) only holds the last load's copy, and
    # dlt creates it again at the next load: out of the analysts' catalog once models are built.
    con.execute(f"drop schema if exists {DLT_STAGING} cascade")
