"""Cases 8 and 6: a small sync into a warehouse of millions of runs, then the models and the report over it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from statistics import median
from typing import cast

import duckdb
from dlt.common.versioned_state import TVersionedState, compress_state, decompress_state

from pipelines import warehouse
from pipelines.models import apply_models
from pipelines.recoup.pages import OPEN_KEY, SOURCE_NAME, STATE_KEY
from pipelines.recoup.settings import GROUP_OF_STATUS, TERMINAL_GROUPS
from tools.bench.harness import (
    ROOT,
    Emulator,
    Row,
    check,
    first_row,
    our_sync,
    sync_process,
    timed,
    warehouse_counts,
)
from tools.bench.lake import lakes

_TEXT_KEYS = ("id", "observation_id", "run_id", "attempt_id", "_dlt_id", "_dlt_root_id", "_dlt_parent_id")
_TIMES = ("created_at", "updated_at", "started_at", "finished_at", "delayed_until", "expired_at", "completed_at",
          "seen_at")  # fmt: skip


def recount_page_marks(con: duckdb.DuckDBPyConnection) -> None:
    """Gives each account's page mark, in dlt's latest stored state, the grown count of runs.

    The open-runs mark is dropped, so the next sync looks at every stored run once.
    """
    state_id, packed = first_row(con, "select _dlt_id, state from raw._dlt_pipeline_state"
                                      " order by created_at desc, version desc limit 1")  # fmt: skip
    state = decompress_state(packed)
    counts = dict(con.execute("select account_id, count(*) from raw.runs group by 1").fetchall())
    source = state["sources"][SOURCE_NAME]
    for account, mark in source[STATE_KEY].items():
        mark["stored"] = counts.get(account, mark["stored"])
    source.pop(OPEN_KEY, None)  # the copies are older than the open-runs mark: read them all once
    con.execute(
        "update raw._dlt_pipeline_state set state = ? where _dlt_id = ?",
        [compress_state(cast(TVersionedState, state)), state_id],
    )


def shifted(table: str, names: list[str], copy: str, star: str = "*") -> str:
    """`select * replace (...)` of a raw run table (`star` names it in a join): the row as copy `copy`.

    Its ids get the suffix `~copy` and its times move `14 * copy` days back; runs that old have
    finished long ago.
    """
    finished = tuple(status for status, group in GROUP_OF_STATUS.items() if group in TERMINAL_GROUPS)
    columns = [f"{c} || '~' || {copy} as {c}" for c in names if c in _TEXT_KEYS]
    columns += [f"{c} - to_days((14 * {copy})::integer) as {c}" for c in names if c in _TIMES]
    if table in ("runs", "run_details"):
        columns.append(f"case when status in {finished} then status else 'COMPLETED' end as status")
    return f"{star} replace ({', '.join(columns)})"


def run_tables(con: duckdb.DuckDBPyConnection, catalog: str) -> dict[str, list[str]]:
    """The raw tables of runs and their answers' tags and attempts, with their columns."""
    tables: dict[str, list[str]] = {}
    for table, column in con.execute(
        "select table_name, column_name from duckdb_columns() where database_name = ? and schema_name = 'raw'"
        " and table_name like 'run%' and table_name in (select table_name from duckdb_tables()"
        " where database_name = ? and schema_name = 'raw')",
        [catalog, catalog],
    ).fetchall():
        tables.setdefault(table, []).append(column)
    return tables


def grow_history(db: Path, target: int) -> int:
    """Copies the synced runs back in time until the warehouse holds `target` runs.

    Every copy keeps the real rows' shape (tags, attempts, metadata, list and details answers)
    and moves them two weeks further back per copy, as an older history would be.
    """
    with duckdb.connect(str(db), config={"memory_limit": "4GB"}) as con:  # setting up, not measured
        base = first_row(con, "select count(*) from raw.runs")[0]
        tables = run_tables(con, first_row(con, "select current_database()")[0])
        for copy in range(1, -(-target // base)):
            for table, names in tables.items():
                con.execute(f"insert into raw.{table} select {shifted(table, names, str(copy))} from raw.{table}"
                            f" where {'id' if 'id' in names else 'run_id'} not like '%~%'")  # fmt: skip
        # The accounts hold more runs now: their last pages stay known, as they would have.
        recount_page_marks(con)
        warehouse.create_sync_tables(con)
        apply_models(con)
        con.execute("checkpoint")
        return first_row(con, "select count(*) from raw.runs")[0]


def case_history(work: Path, accounts: int, rows: list[Row], repeat: int, big: int) -> Path:
    """The same small sync on a warehouse of `big` runs and on one of about 100 runs an account."""
    emu = Emulator(accounts, 100)
    try:
        small = work / "history-small" / "recoup.duckdb"
        summary = our_sync(emu, small)
        check(summary.exit_code == 0 and warehouse_counts(small)[0] == emu.run_count, "history base sync")
        large = work / "history-large" / "recoup.duckdb"
        large.parent.mkdir(parents=True)
        shutil.copyfile(small, large)
        stored = grow_history(large, big)
        sizes = {db: db.stat().st_size / 2**30 for db in (small, large)}
        times: dict[Path, list[float]] = {small: [], large: []}
        peaks: list[float] = []
        for i in range(repeat):
            emu.truth = emu.send("add", (10, 5))
            for db in (small, large) if i % 2 == 0 else (large, small):
                seconds, code, peak = sync_process(emu, db)
                check(code == 0, f"history sync exit {code}")
                times[db].append(seconds)
                if db == large:
                    peaks.append(peak)
        check(warehouse_counts(large)[0] == stored + 50 * repeat, "history sync row count")
        fast, slow = median(times[small]), median(times[large])
        rows.append(Row(f"8. history: a sync adding 50 runs to 10 of {accounts:,} accounts, {stored:,} runs stored"
                        f" ({sizes[large]:.2f} GB)", f"ours {slow:.2f} s",
                        f"{emu.run_count:,} stored ({sizes[small]:.2f} GB): {fast:.2f} s", slow / fast, "<=1.5x"))  # fmt: skip
        rows.append(Row(f"8. history: peak RSS of that sync at {stored:,} runs", f"{max(peaks):.0f} MB",
                        "target 300 MB", max(peaks), "<=300 MB"))  # fmt: skip
        lakes(work, emu, {"small": small, "large": large}, stored, rows, repeat)
        copies = []
        for _ in range(repeat):
            copies.append(timed(shutil.copyfile, large, large.with_name("copy.duckdb"))[0])
            with open(large.with_name("copy.duckdb"), "rb+") as handle:
                copies[-1] += timed(os.fsync, handle.fileno())[0]
            large.with_name("copy.duckdb").unlink()
        per_gb = median(copies) / sizes[large]
        rows.append(Row("8. history: the working copy (copy + fsync) per GB of warehouse", f"{per_gb:.2f} s/GB",
                        f"{median(copies):.2f} s for {sizes[large]:.2f} GB", None, ""))  # fmt: skip
        return large
    finally:
        emu.stop()


def _rebuild_limits(runs: int) -> dict[str, str | int]:
    return warehouse.step_limits("rebuild", runs=runs)  # as `make models` does


def case_analytics(work: Path, db: Path, rows: list[Row], repeat: int) -> None:
    """`make models` (a full rebuild) and the report over the large synced history."""
    with duckdb.connect(str(db), read_only=True) as con:
        runs = first_row(con, "select count(*) from analytics.runs")[0]
    env = {**os.environ, "RECOUP_DB": str(db), "RECOUP_REPORTS_DIR": str(work / "reports")}
    builds, reports = [], []
    for _ in range(repeat):
        with warehouse.connect(db, warehouse.step_limits("models")) as con:  # as `make models` does
            builds.append(timed(apply_models, con, rebuild_limits=_rebuild_limits)[0])
            check(
                first_row(con, "select count(*) from analytics.runs")[0] == runs,
                "analytics row count",
            )
        seconds, done = timed(lambda: subprocess.run([sys.executable, "-m", "pipelines.cli", "report"], cwd=ROOT, env=env,
                                                     capture_output=True, text=True))  # fmt: skip
        reports.append(seconds)
        check(done.returncode == 0, f"report failed: {done.stderr.strip()}")
    models, report = median(builds), median(reports)
    rows.append(Row(f"6. full model rebuild (`make models`) over {runs:,} synced runs", f"{models:.2f} s",
                    "target 10 s", models, "<=10.0s"))  # fmt: skip
    rows.append(Row(f"6. make report over {runs:,} synced runs", f"{report:.2f} s", "target 3 s", report, "<=3.0s"))  # fmt: skip
