"""Case 11: a lake of 20 million runs: a small sync against 95 k, a day of syncs and `make maintain`, a reader."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from statistics import median

import duckdb

from pipelines.config import LakeSettings, load
from pipelines.lake import ALIAS, attach
from pipelines.models import apply_models
from tools.bench.harness import ROOT, Emulator, Row, check, first_row, our_sync, sync_env, sync_process, timed
from tools.bench.history import recount_page_marks, run_tables, shifted
from tools.local_postgres import PG_PASSWORD, PostgresCluster, PostgresMissing

COPIES_PER_COMMIT = 10  # the grown history is committed ten copies (140 days) at a time, oldest last
DAY_ACCOUNTS = 10  # the accounts that get a new run before each sync of the simulated day
# What an analyst's first query of the day asks: attach the lake, then the last 30 days' cost by
# account (a mart) and last week's failed runs (the runs themselves).
READER = """
import sys, time
started = time.perf_counter()
from pipelines.config import load
from pipelines.lake import attach
import duckdb
con = duckdb.connect()
attach(con, load().lake, read_only=True)
con.execute("use lake")
con.execute("select account_id, sum(total_cost_usd) from analytics.daily_cost"
            " where day >= current_date - 30 group by 1").fetchall()
con.execute("select count(*) from analytics.runs where created_at >= now() - interval 7 day"
            " and status_group = 'failed'").fetchall()
print(time.perf_counter() - started)
"""


def grow_lake(lake: LakeSettings, target: int) -> int:
    """Copies the lake's runs back in time, as `grow_history` does a file's, until it holds `target` runs.

    The copies are written in commits of COPIES_PER_COMMIT copies each, sorted by copy, so that
    each Parquet file covers a few weeks of answers, as a lake filled by syncs and merged by
    `make maintain` does. Then the models are built over the whole history.
    """
    with duckdb.connect(config={"memory_limit": "8GB"}) as con:  # setting up, not measured
        attach(con, lake)
        con.execute(f"use {ALIAS}")
        base = first_row(con, "select count(*) from raw.runs")[0]
        tables = run_tables(con, ALIAS)
        for table in tables:  # the base rows, read once: the copies come from memory
            con.execute(f"create table memory.base_{table} as select * from raw.{table}")
        copies = -(-target // base)
        for start in range(1, copies, COPIES_PER_COMMIT):
            span = f"range({start}, {min(start + COPIES_PER_COMMIT, copies)}) as c(copy)"
            con.execute("begin transaction")
            for table, names in tables.items():
                con.execute(f"insert into raw.{table} select {shifted(table, names, 'copy', 'b.*')}"
                            f" from {span}, memory.base_{table} as b order by copy")  # fmt: skip
            con.execute("commit")
        recount_page_marks(con)
        con.execute("begin transaction")
        apply_models(con, own_transaction=False)
        con.execute("commit")
        return first_row(con, "select count(*) from raw.runs")[0]


def lake_files(lake: LakeSettings) -> tuple[int, int]:
    """The data files of the lake's current snapshot, and the delete files beside them."""
    with duckdb.connect() as con:
        attach(con, lake, read_only=True)
        meta = f"__ducklake_metadata_{ALIAS}"
        data, deletes = first_row(con, f"""
            select (select count(*) from {meta}.ducklake_data_file where end_snapshot is null),
                   (select count(*) from {meta}.ducklake_delete_file where end_snapshot is null)""")  # fmt: skip
        return data, deletes


def _cli(env: dict[str, str], *args: str) -> float:
    seconds, done = timed(lambda: subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=ROOT,
                                                 env={**os.environ, **env}, capture_output=True, text=True))  # fmt: skip
    check(done.returncode == 0, f"recoup {' '.join(args)}: {done.stderr.strip()[-300:]}")
    return seconds


def _reader(env: dict[str, str]) -> float:
    done = subprocess.run([sys.executable, "-c", READER], cwd=ROOT, env={**os.environ, **env},
                          capture_output=True, text=True)  # fmt: skip
    check(done.returncode == 0, f"the reader failed: {done.stderr.strip()[-300:]}")
    return float(done.stdout)


def case_huge_lake(work: Path, accounts: int, rows: list[Row], repeat: int, target: int, day: int) -> None:
    """A small sync into a lake grown to `target` runs against one of ~95 k; a day of syncs; a reader."""
    try:
        cluster = PostgresCluster()
    except PostgresMissing as exc:
        print(f"bench: the 20 M-run lake case skipped: {exc}", file=sys.stderr)
        return
    emu = Emulator(accounts, 100)
    cluster.start()
    password = os.environ.get("PGPASSWORD")
    os.environ["PGPASSWORD"] = PG_PASSWORD  # the syncs of the day run in this process
    try:
        envs = {}
        for name in ("small", "huge"):
            database = cluster.new_database()
            envs[name] = {"RECOUP_LAKE": f"postgres:{cluster.conninfo(database)}", "PGPASSWORD": PG_PASSWORD,
                          "RECOUP_LAKE_DATA": str(work / f"lake11-{name}") + "/"}  # fmt: skip
        dbs = {name: work / f"lake11-{name}-work" / "recoup.duckdb" for name in envs}
        settings: dict[str, LakeSettings] = {}
        for name in envs:
            lake = load({**sync_env(emu, dbs[name]), **envs[name]}).lake
            if lake is None:
                raise SystemExit(
                    f"bench: correctness check failed: RECOUP_LAKE does not name the {name} lake"
                )
            settings[name] = lake
        for name in envs:  # setting up: each lake's first sync
            check(sync_process(emu, dbs[name], **envs[name])[1] == 0, f"first sync into the {name} lake")
        grown, stored = timed(grow_lake, settings["huge"], target)
        print(f"bench:   grew the lake to {stored:,} runs in {grown:.0f} s", file=sys.stderr, flush=True)
        first_maintain = _cli(envs["huge"], "maintain")  # as a lake that old has been kept
        grown_files = lake_files(settings["huge"])
        times: dict[str, list[float]] = {name: [] for name in envs}
        for i in range(repeat):
            emu.truth = emu.send("add", (10, 5))
            for name in envs if i % 2 == 0 else reversed(list(envs)):
                seconds, code, _ = sync_process(emu, dbs[name], **envs[name])
                check(code == 0, f"sync into the {name} lake exit {code}")
                times[name].append(seconds)
        fast, slow = median(times["small"]), median(times["huge"])
        rows.append(Row(f"11. lake: a sync adding 50 runs to 10 accounts, {stored:,} runs in the lake",
                        f"ours {slow:.2f} s", f"{emu.run_count:,}-run lake: {fast:.2f} s", slow / fast, "<=1.5x"))  # fmt: skip
        started = time.perf_counter()
        few = ",".join(emu.accounts[:DAY_ACCOUNTS])
        for _ in range(day):  # every five minutes, a new run in each of ten accounts
            emu.send("add", (DAY_ACCOUNTS, 1))
            summary = our_sync(emu, dbs["huge"], RECOUP_ACCOUNTS=few, **envs["huge"])
            check(summary.exit_code == 0, f"a sync of the day exit {summary.exit_code}")
        each = (time.perf_counter() - started) / max(day, 1)
        with duckdb.connect() as con:
            attach(con, settings["huge"], read_only=True)
            held = first_row(con, f"select count(*), count(distinct run_id) from {ALIAS}.analytics.runs")
        expected = stored + 50 * repeat + DAY_ACCOUNTS * day
        check(held == (expected, expected), f"the lake holds {held} runs, not {expected}")
        before = lake_files(settings["huge"])
        maintained = _cli(envs["huge"], "maintain")
        data, deletes = lake_files(settings["huge"])
        rows.append(Row(f"11. lake: {day} syncs of {DAY_ACCOUNTS} accounts ({each:.2f} s each), then make maintain"
                        f" ({maintained:.1f} s)", f"{deletes:,} delete files, {data:,} data files",
                        f"before maintain: {before[1]:,} delete, {before[0]:,} data files; after growing and"
                        f" maintaining ({first_maintain:.0f} s): {grown_files[1]:,} delete, {grown_files[0]:,} data",
                        100 * deletes / data, "<=1.0%"))  # fmt: skip
        reads: dict[str, list[float]] = {name: [] for name in envs}
        for i in range(repeat):
            for name in envs if i % 2 == 0 else reversed(list(envs)):
                reads[name].append(_reader(envs[name]))
        fast, slow = median(reads["small"]), median(reads["huge"])
        rows.append(Row(f"11. lake: a reader's attach and two queries, {expected:,} runs in the lake",
                        f"{slow:.2f} s", f"{emu.run_count:,}-run lake: {fast:.2f} s ({slow / fast:.2f}x)", None, ""))  # fmt: skip
    finally:
        if password is None:
            os.environ.pop("PGPASSWORD", None)
        else:
            os.environ["PGPASSWORD"] = password
        cluster.stop()
        emu.stop()
