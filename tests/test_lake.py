"""The warehouse as a DuckLake: the same tables, one snapshot per sync, one writer at a time.

Every test runs against a real PostgreSQL catalog that the `postgres` fixture starts (skipped,
with the reason, when PostgreSQL is not installed) and the emulator over HTTP.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import duckdb
import psycopg
import pytest

from pipelines import lake
from pipelines.config import load_settings
from pipelines.emulator import EmulatorServer, World
from pipelines.lake import publish as lake_publish
from pipelines.recoup.errors import RecoupError
from pipelines.sync import SyncSummary, run_sync
from tests.conftest import (
    CONSISTENT,
    FAST_RETRY,
    ROOT,
    is_consistent,
    json_lines,
    run_cli,
    skip_without_postgres,
    sync_env,
    wait_until,
)
from tools.local_postgres import PG_PASSWORD, PG_READER, PostgresCluster

pytestmark = pytest.mark.timeout(240)


def attach_sql(env: dict[str, str], alias: str = "recoup", read_only: bool = True) -> str:
    """What an analyst types (docs/lake.md, "Analysts")."""
    mode = ", READ_ONLY" if read_only else ""
    return f"ATTACH 'ducklake:{env['RECOUP_LAKE']}' AS {alias} (DATA_PATH '{env['RECOUP_LAKE_DATA']}'{mode})"


def lake_query(env: dict[str, str], sql: str, *params: object) -> list[tuple]:
    with duckdb.connect() as con:
        con.execute(attach_sql(env))
        con.execute("use recoup")
        return con.execute(sql, list(params)).fetchall()


@pytest.fixture
def lake_sync(world: World, emulator: EmulatorServer, tmp_path: Path, lake_env: dict[str, str]) -> Callable:
    """One sync in this process into the test's lake (working files in `machine`'s folder)."""

    def run(machine: str = "a", **overrides: str) -> SyncSummary:
        env = sync_env(world, emulator, tmp_path / machine / "recoup.duckdb", **lake_env, **overrides)
        return run_sync(load_settings(env), retry=FAST_RETRY)

    return run


def _upstream_moves_on(world: World, round_: int) -> None:
    """New runs in every account, a finished run, a run whose tags changed."""
    world.advance(minutes=5)
    for account in world.account_ids:
        world.add_run(account, created_at=world.now - timedelta(seconds=round_ + 1))
        in_flight = world.in_flight(account)
        if in_flight:
            world.complete_run(in_flight[0])
    first = world.visible(world.account_ids[0], 5)[-1]
    world.change_run(first["id"], tags=[f"account:{world.account_ids[0]}", f"round:{round_}"])


# -- extensions ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_extensions_load_from_their_packages_without_a_download(tmp_path: Path) -> None:
    folder = tmp_path / "extensions"
    config = {"extension_directory": str(folder), "autoinstall_known_extensions": False,
              "custom_extension_repository": str(tmp_path / "no-repository")}  # fmt: skip
    with duckdb.connect(config=config) as con:
        with pytest.raises(duckdb.Error):
            con.execute("load ducklake")  # nothing installed in this fresh folder
        lake.load_extensions(con, data="s3://bucket/prefix")
        loaded = dict(
            con.execute(
                "select extension_name, install_path from duckdb_extensions() where loaded"
            ).fetchall()
        )
    for name in ("ducklake", "postgres_scanner", "httpfs"):
        assert name in loaded, name
        assert loaded[name].startswith(str(folder)), "installed from the package into the folder"


# -- the same tables as the file -------------------------------------------------------------------


def _analytics_tables(con: duckdb.DuckDBPyConnection, catalog: str) -> dict[str, list[tuple]]:
    rows = con.execute("""
        select table_name, list((column_name, data_type) order by ordinal_position)
        from information_schema.columns where table_catalog = ? and table_schema = 'analytics'
        group by table_name
    """, [catalog]).fetchall()  # fmt: skip
    return dict(rows)


SYNC_TIMES = (
    "synced_at",
    "published_at",
    "finished_at",
    "ended_at",
    "duration_seconds",
    "answered_at",
)  # when each sync ran


@pytest.mark.slow
def test_two_rounds_into_a_file_and_into_a_lake_give_identical_analytics(
    world: World, emulator: EmulatorServer, tmp_path: Path, lake_env: dict[str, str], lake_sync
) -> None:
    file_db = tmp_path / "file" / "recoup.duckdb"
    for round_ in range(2):
        if round_:
            _upstream_moves_on(world, round_)
        assert run_sync(load_settings(sync_env(world, emulator, file_db)), retry=FAST_RETRY).exit_code == 0
        assert lake_sync().exit_code == 0
    with duckdb.connect() as con:
        con.execute(f"attach '{file_db}' as file (read_only)")
        con.execute(attach_sql(lake_env))
        tables = _analytics_tables(con, "file")
        assert tables == _analytics_tables(con, "recoup"), "the same tables, columns and types"
        assert {"runs", "run_tags", "run_attempts", "daily_cost", "sync_log"} <= set(tables)
        for table, columns in tables.items():
            # Sums of DOUBLE differ in the last bits with the order rows are read in.
            select = ", ".join(f"round({c}, 9)" if kind == "DOUBLE" else c for c, kind in columns
                               if c not in SYNC_TIMES)  # fmt: skip
            one, other = (
                f"select {select} from {catalog}.analytics.{table}" for catalog in ("file", "recoup")
            )
            differ = con.execute(
                f"select count(*) from (({one} except all {other}) union all ({other} except all {one}))"
            )
            assert differ.fetchone()[0] == 0, table
        assert con.execute("select count(*) from recoup.analytics.runs").fetchone()[0] == sum(
            len(world.visible(a, 100)) for a in world.account_ids
        )


# -- readers see one snapshot or the next ----------------------------------------------------------

READER = textwrap.dedent("""
    import json, os, sys, time, duckdb
    attach, stop, query = sys.argv[1], sys.argv[2], sys.argv[3]
    until = time.monotonic() + 200
    with duckdb.connect() as con:
        con.execute("set enable_progress_bar = false")  # it would write to stdout
        con.execute(attach)
        con.execute("use recoup")
        while not os.path.exists(stop) and time.monotonic() < until:
            try:
                print(json.dumps(con.execute(query).fetchall()), flush=True)
            except duckdb.Error as exc:
                print(json.dumps({"error": str(exc)[:200]}), flush=True)
            time.sleep(0.005)
""")


def _reader_outputs(tmp_path: Path, readers: int = 2) -> list[Path]:
    """Where each background reader writes its answers, one JSON line per query."""
    return [tmp_path / f"lake-reader-{i}.jsonl" for i in range(readers)]


def _rows(output: Path) -> list:
    """A reader's answers so far: the row of each query, or the error it met."""
    return [a if isinstance(a, dict) else a[0] for a in json_lines(output)]


def _start_readers(outputs: list[Path], attach: str, stop: Path, query: str, env: dict[str, str]) -> list:
    readers = []
    for output in outputs:
        with output.open("w") as sink:
            readers.append(subprocess.Popen([sys.executable, "-c", READER, attach, str(stop), query],
                                            stdout=sink, stderr=subprocess.PIPE, text=True, env=env))  # fmt: skip
    return readers


def _poll_during_syncs(
    world: World, lake_env: dict[str, str], lake_sync, tmp_path: Path, rounds: int
) -> list:
    assert lake_sync().exit_code == 0
    stop = tmp_path / "stop-readers"
    outputs = _reader_outputs(tmp_path)
    env = {**os.environ, "PGPASSWORD": lake_env["PGPASSWORD"]}
    readers = _start_readers(outputs, attach_sql(lake_env), stop, CONSISTENT, env)

    def every_reader(saw: Callable[[list], bool]) -> bool:
        assert all(reader.poll() is None for reader in readers), "a reader ended early"
        return all(saw(_rows(output)) for output in outputs)

    try:
        wait_until(lambda: every_reader(bool), "every reader to attach and answer")
        for round_ in range(rounds):
            _upstream_moves_on(world, round_)
            assert lake_sync().exit_code == 0
        final = lake_query(lake_env, "select count(*) from analytics.runs")[0][0]
        wait_until(lambda: every_reader(lambda rows: any(isinstance(r, list) and r[0] == final for r in rows)),
                   "every reader to see the last sync")  # fmt: skip
    finally:
        stop.touch()
    answers = []
    for reader, output in zip(readers, outputs, strict=True):
        _, err = reader.communicate(timeout=60)
        assert reader.returncode == 0, (reader.returncode, err[-2000:], output.read_text()[-300:])
        answers += _rows(output)
    return answers


@pytest.mark.slow
def test_readers_polling_during_lake_syncs_see_each_snapshot_whole(
    world: World, lake_env: dict[str, str], lake_sync, tmp_path: Path
) -> None:
    answers = _poll_during_syncs(world, lake_env, lake_sync, tmp_path, rounds=4)
    assert len(answers) > 50
    assert not [a for a in answers if isinstance(a, dict)], "every query was answered"
    incomplete = [a for a in answers if not is_consistent(tuple(a))]
    assert incomplete == [], incomplete[:3]
    assert len({a[0] for a in answers}) >= 3, "the readers saw the syncs land"


@pytest.mark.slow
def test_control_a_commit_split_between_raw_and_models_is_seen_by_readers(
    world: World, lake_env: dict[str, str], lake_sync, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Proves the readers above can see a mixed state: committing the raw changes before the
    models (as loading statement by statement would) shows runs the models do not have yet."""
    build = lake_publish.build_models
    outputs = _reader_outputs(tmp_path)

    def split_commit(
        con: duckdb.DuckDBPyConnection, memory_mb: int, changed: bool = True, changed_since=None
    ) -> None:
        con.execute("commit")
        if all(output.exists() for output in outputs):  # the readers are running: let each query twice
            asked = [len(json_lines(output)) for output in outputs]
            wait_until(lambda: all(len(json_lines(o)) >= n + 2 for o, n in zip(outputs, asked, strict=True)),
                       "the readers to query the state between the two commits")  # fmt: skip
        con.execute("begin transaction")
        build(con, memory_mb, changed, changed_since)

    monkeypatch.setattr(lake_publish, "build_models", split_commit)  # where the publish looks it up
    answers = _poll_during_syncs(world, lake_env, lake_sync, tmp_path, rounds=3)
    assert [a for a in answers if isinstance(a, list) and not is_consistent(tuple(a))], (
        "a mixed state was seen"
    )


# -- one writer at a time --------------------------------------------------------------------------

UNLOCKED = textwrap.dedent("""
    import contextlib, sys
    import pipelines.lake
    class NoLock(pipelines.lake.LakeLock):
        def __init__(self): pass
        def check(self): pass
        def index_catalog(self): pass
    pipelines.lake.lake_lock = lambda settings: contextlib.nullcontext(NoLock())
    from pipelines.cli import main
    sys.exit(main(["sync"]))
""")


def _two_machines(
    world: World, emulator: EmulatorServer, tmp_path: Path, lake_env: dict, locked: bool
) -> list:
    """Two syncs started at once from two machines (two working folders) into one lake."""
    processes = []
    for machine in ("a", "b"):
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECOUP_")}
        env.update(
            sync_env(
                world, emulator, tmp_path / machine / "recoup.duckdb", **lake_env, RECOUP_LOCK_WAIT="120"
            )
        )
        command = ["-m", "pipelines.recoup_pipeline"] if locked else ["-c", UNLOCKED]
        processes.append(subprocess.Popen([sys.executable, *command], cwd=ROOT, env=env,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))  # fmt: skip
    return [p.communicate(timeout=180) and p.returncode for p in processes]


def _clean(world: World, lake_env: dict[str, str]) -> bool:
    expected = sum(len(world.visible(a, 100)) for a in world.account_ids)
    (state,) = lake_query(lake_env, CONSISTENT)
    (raw_tags, distinct_tags) = lake_query(
        lake_env, "select count(*), count(distinct (observation_id, tag_index)) from raw.runs__tags"
    )[0]
    return is_consistent(state) and state[0] == expected and raw_tags == distinct_tags


@pytest.mark.slow
def test_two_syncs_from_two_machines_lose_and_duplicate_nothing(
    world: World, emulator: EmulatorServer, tmp_path: Path, lake_env: dict[str, str]
) -> None:
    world.latency = 1.0  # both have read the index before the first commits
    codes = _two_machines(world, emulator, tmp_path, lake_env, locked=True)
    assert codes == [0, 0]
    assert _clean(world, lake_env)
    runs_new = lake_query(
        lake_env, "select sum(runs_new) from analytics.sync_log group by synced_at order by 1"
    )
    assert [n for (n,) in runs_new] == [0, 114], "the second waited and found everything stored"


@pytest.mark.slow
def test_control_without_the_lock_two_syncs_do_not_leave_a_clean_lake(
    world: World, emulator: EmulatorServer, tmp_path: Path, lake_env: dict[str, str]
) -> None:
    world.latency = 1.0
    codes = _two_machines(world, emulator, tmp_path, lake_env, locked=False)
    state = lake_query(lake_env, CONSISTENT)[0]
    assert codes != [0, 0] or not _clean(world, lake_env), f"without the lock: exits {codes}, counts {state}"


@pytest.mark.slow
def test_a_second_sync_exits_75_while_another_holds_the_lake_or_waits_when_asked(
    world: World, emulator: EmulatorServer, tmp_path: Path, lake_env: dict[str, str]
) -> None:
    holder = psycopg.connect(
        lake_env["RECOUP_LAKE"].removeprefix("postgres:"), password=PG_PASSWORD, autocommit=True
    )
    holder.execute("select pg_advisory_lock(%s)", [lake.LOCK_KEY])
    env = sync_env(world, emulator, tmp_path / "a" / "recoup.duckdb", **lake_env)
    done = run_cli(env)
    assert done.returncode == 75, done.stderr
    assert "another sync is writing the lake" in done.stderr and PG_PASSWORD not in done.stderr
    released = []
    threading.Timer(3, lambda: (holder.close(), released.append(time.time()))).start()
    done = run_cli({**env, "RECOUP_LOCK_WAIT": "60"})
    assert done.returncode == 0, done.stderr
    assert released and lake_query(lake_env, "select count(*) from analytics.runs")[0][0] > 0
    assert PG_PASSWORD not in done.stdout + done.stderr
    syncs = "select published, exit_code, outcome_recorded from analytics.syncs order by synced_at"
    assert lake_query(lake_env, syncs) == [(False, 75, True), (True, None, False)], (
        "the lake records each sync"
    )


class _LoseTheLockAfterTheMerge(logging.Handler):
    """Ends the PostgreSQL session holding the lake lock when the sync logs that it has merged.

    The sync's DEBUG line after the merge (`pipelines/lake/merge.py`) is the only hook: the lock
    is lost as it would be to a network cut or an operator, after the merge and before the commit.
    """

    def __init__(self, conninfo: str) -> None:
        super().__init__(logging.DEBUG)
        self.conninfo = conninfo
        self.ended: list[int] = []
        self.failures: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.getMessage().startswith("merged this sync's changes into the lake") or self.ended:
            return
        try:
            with psycopg.connect(self.conninfo, password=PG_PASSWORD, autocommit=True) as admin:
                holders = admin.execute(
                    "select pid from pg_locks where locktype = 'advisory' and granted"
                    " and classid = %s and objid = %s and objsubid = 1",
                    [lake.LOCK_KEY >> 32, lake.LOCK_KEY & 0xFFFFFFFF],
                ).fetchall()
                for (pid,) in holders:  # waits until the session is gone
                    if admin.execute("select pg_terminate_backend(%s, 10000)", [pid]).fetchone() == (True,):
                        self.ended.append(pid)
        except Exception as exc:  # logging would swallow it: the test reports it
            self.failures.append(repr(exc))


@pytest.mark.slow
def test_a_lake_lock_lost_between_the_merge_and_the_commit_aborts_the_publish(
    world: World, lake_env: dict[str, str], lake_sync, caplog: pytest.LogCaptureFixture
) -> None:
    assert lake_sync().exit_code == 0
    snapshots = "select count(*), max(snapshot_id) from ducklake_snapshots('recoup')"
    before = lake_query(lake_env, snapshots), lake_query(lake_env, CONSISTENT)
    for account in world.account_ids:
        world.add_run(account, created_at=world.now - timedelta(seconds=10))
    caplog.set_level(logging.DEBUG, logger="recoup")
    cut = _LoseTheLockAfterTheMerge(lake_env["RECOUP_LAKE"].removeprefix("postgres:"))
    logging.getLogger("recoup").addHandler(cut)
    try:
        with pytest.raises(RecoupError, match="lost the connection that holds the lake lock"):
            lake_sync()
    finally:
        logging.getLogger("recoup").removeHandler(cut)
    assert cut.failures == [] and len(cut.ended) == 1, "the lock's session was ended after the merge"
    after = lake_query(lake_env, snapshots), lake_query(lake_env, CONSISTENT)
    assert after == before, "no snapshot was committed"
    assert lake_sync().exit_code == 0, "the next sync takes the lock again and commits"
    assert lake_query(lake_env, CONSISTENT)[0][0] == before[1][0][0] + len(world.account_ids)


@pytest.mark.slow
def test_a_broken_model_commits_the_raw_changes_alone_and_fails_the_sync(
    world: World, lake_env: dict[str, str], lake_sync, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As with the file: the runs keep flowing, the previous models stay, the sync says so."""
    import shutil

    from pipelines import models

    assert lake_sync().exit_code == 0
    broken = tmp_path / "sql"
    shutil.copytree(models.SQL_DIR, broken)
    (broken / "marts" / "daily_cost.sql").write_text("select * from no_such_table")

    def build_broken(
        con: duckdb.DuckDBPyConnection, memory_mb: int, changed: bool = True, changed_since=None
    ) -> None:
        con.execute(f"use {lake.ALIAS}")
        models.apply_models(con, sql_dir=broken, own_transaction=False)

    working = lake_publish.build_models
    monkeypatch.setattr(lake_publish, "build_models", build_broken)  # where the publish looks it up
    _upstream_moves_on(world, 0)
    summary = lake_sync()
    assert summary.exit_code == 1 and "daily_cost.sql" in (summary.model_error or "")
    raw, modelled = lake_query(
        lake_env, "select (select count(*) from raw.runs), (select count(*) from analytics.runs)"
    )[0]
    assert raw == modelled + 3, "the new runs are stored; the models are the previous ones"
    monkeypatch.setattr(lake_publish, "build_models", working)
    assert lake_sync().exit_code == 0, "the API shows nothing new"
    raw, modelled = lake_query(
        lake_env, "select (select count(*) from raw.runs), (select count(*) from analytics.runs)"
    )[0]
    assert modelled == raw, "the runs the failed build left out reach analytics at the next sync"


@pytest.mark.slow
def test_a_password_from_dlt_secrets_reaches_the_catalog_and_is_stored_nowhere(
    world: World,
    emulator: EmulatorServer,
    tmp_path: Path,
    lake_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PGPASSWORD")
    env = {k: v for k, v in lake_env.items() if k != "PGPASSWORD"}
    env = sync_env(world, emulator, tmp_path / "a" / "recoup.duckdb", **env)
    without = run_cli(env)
    assert without.returncode == 1 and "cannot reach the lake catalog" in without.stderr
    done = run_cli({**env, "SOURCES__RECOUP__LAKE_PASSWORD": PG_PASSWORD})
    assert done.returncode == 0, done.stderr
    assert PG_PASSWORD not in done.stdout + done.stderr + without.stdout + without.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert PG_PASSWORD.encode() not in path.read_bytes(), path


@pytest.mark.parametrize(
    ("lake_vars", "message"),
    [
        ({"RECOUP_LAKE": "postgres:dbname=x"}, "RECOUP_LAKE_DATA .* must be set"),
        ({"RECOUP_LAKE": "metadata.ducklake", "RECOUP_LAKE_DATA": "/d"}, "must be a PostgreSQL catalog"),
    ],
)
def test_lake_settings_are_checked(lake_vars: dict[str, str], message: str) -> None:
    from pipelines.recoup.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        load_settings({"RECOUP_API_KEY": "recoup_sk_x", **lake_vars})


def test_without_postgresql_the_lake_tests_are_skipped_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import shutil

    monkeypatch.setattr(shutil, "which", lambda *args, **kwargs: None)
    with pytest.raises(pytest.skip.Exception, match="PostgreSQL is not installed"):
        skip_without_postgres()


# -- crash safety ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_sigkill_during_the_lake_commit_leaves_the_previous_snapshot(
    world: World, emulator: EmulatorServer, tmp_path: Path, lake_env: dict[str, str]
) -> None:
    env = sync_env(world, emulator, tmp_path / "a" / "recoup.duckdb", **lake_env)
    assert run_cli(env).returncode == 0
    kills = 0
    for trial in range(4):
        _upstream_moves_on(world, trial)
        before = lake_query(lake_env, "select count(*) from analytics.runs")[0][0]
        process = subprocess.Popen([sys.executable, "-m", "pipelines.recoup_pipeline"], cwd=ROOT, text=True,
                                   env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        for line in process.stderr:
            if "publishing into the lake" in line:
                time.sleep(0.6 * trial)  # at the attach, the merge, the models, the commit
                process.send_signal(signal.SIGKILL)
                kills += 1
                break
        process.wait(timeout=120)
        process.stdout.close()
        process.stderr.close()
        (state,) = lake_query(lake_env, CONSISTENT)
        assert is_consistent(state), state
        everything = sum(len(world.visible(a, 100)) for a in world.account_ids)
        assert state[0] in (before, everything), "the previous snapshot, or the whole sync"
    assert kills == 4
    assert run_cli(env).returncode == 0
    assert _clean(world, lake_env)


# -- the read-only role ----------------------------------------------------------------------------


@pytest.mark.slow
def test_the_read_only_role_reads_the_models_and_cannot_write(
    lake_env: dict[str, str], lake_sync, postgres: PostgresCluster
) -> None:
    assert lake_sync().exit_code == 0
    reader = {**lake_env, "RECOUP_LAKE": lake_env["RECOUP_LAKE"].replace("user=recoup", f"user={PG_READER}")}
    assert lake_query(reader, "select count(*) from analytics.runs")[0][0] == 114
    with duckdb.connect() as con:
        con.execute(attach_sql(reader, read_only=False))
        for statement in ("insert into recoup.raw.sync_log (account_id) values ('x')",
                          "delete from recoup.raw.runs", "create table recoup.analytics.mine (x int)"):  # fmt: skip
            with pytest.raises(duckdb.Error, match=r"(?i)permission denied"):
                con.execute(statement)
    assert lake_query(lake_env, "select count(*) from raw.runs")[0][0] == 114


# -- maintenance -----------------------------------------------------------------------------------

EVERY_ANSWER = """
    select 'runs', count(*), sum(hash(run_id, status, updated_at, cost_cents, attempt_count)) from analytics.runs
    union all select 'tags', count(*), sum(hash(run_id, tag)) from analytics.run_tags
    union all select 'attempts', count(*), sum(hash(run_id, attempt_id)) from analytics.run_attempts
    union all select 'daily', count(*), sum(hash(day, account_id, total_cost_usd)) from analytics.daily_cost
    union all select 'log', count(*), sum(hash(account_id, runs_new)) from analytics.sync_log
    order by 1
"""


MERGED = {"raw": ("runs", "runs__tags", "runs__attempts"), "intermediate": ("run_versions",),
          "analytics": ("daily_cost",)}  # the tables a sync deletes from  # fmt: skip


def _delete_files(lake_env: dict[str, str]) -> dict[str, int]:
    """The tables whose current data files carry delete files, with how many."""
    counts = {}
    for schema, tables in MERGED.items():
        for table in tables:
            sql = f"select count(delete_file) from ducklake_list_files('recoup', '{table}', schema => '{schema}')"
            (n,) = lake_query(lake_env, sql)[0]
            if n:
                counts[f"{schema}.{table}"] = n
    return counts


@pytest.mark.slow
def test_maintenance_changes_no_query_result_while_readers_read(
    world: World, lake_env: dict[str, str], lake_sync, tmp_path: Path
) -> None:
    assert lake_sync().exit_code == 0
    for round_ in range(3):
        _upstream_moves_on(world, round_)
        assert lake_sync().exit_code == 0
    before = lake_query(lake_env, EVERY_ANSWER)
    data = Path(lake_env["RECOUP_LAKE_DATA"])
    files = len(list(data.rglob("*.parquet")))
    stop = tmp_path / "stop-reader"
    (output,) = _reader_outputs(tmp_path, readers=1)
    (reader,) = _start_readers([output], attach_sql(lake_env), stop, EVERY_ANSWER, {**os.environ, **lake_env})
    try:
        wait_until(lambda: json_lines(output), "the reader to attach and answer")
        done = run_cli({**lake_env, "RECOUP_LAKE_KEEP_DAYS": "0"}, "pipelines.cli", "maintain")
        assert done.returncode == 0, done.stderr
    finally:
        stop.touch()
    reader.communicate(timeout=60)
    answers = json_lines(output)
    expected = [list(row) for row in before]
    assert answers, "the reader answered"
    assert [a for a in answers if a != expected] == [], "readers ran through it unharmed"
    assert lake_query(lake_env, EVERY_ANSWER) == before
    assert len(lake_query(lake_env, "select * from ducklake_snapshots('recoup')")) == 1, "older ones expired"
    assert _delete_files(lake_env) == {}, "every file with deletes rewritten, then merged"
    set_aside = len(list(data.rglob("*.parquet")))
    assert set_aside >= files, "nothing deleted while it may still be read"
    done = run_cli({**lake_env, "RECOUP_LAKE_GRACE_MINUTES": "0"}, "pipelines.cli", "maintain")
    assert done.returncode == 0, done.stderr
    assert len(list(data.rglob("*.parquet"))) < set_aside, "files of expired snapshots deleted"
    assert lake_query(lake_env, EVERY_ANSWER) == before
    _upstream_moves_on(world, 9)
    assert lake_sync().exit_code == 0, "the lake still takes syncs"


@pytest.mark.slow
def test_make_models_and_make_report_use_the_lake(
    lake_env: dict[str, str], lake_sync, tmp_path: Path
) -> None:
    assert lake_sync().exit_code == 0
    env = {**lake_env, "RECOUP_DB": str(tmp_path / "nowhere" / "recoup.duckdb")}
    done = run_cli(env, "pipelines.cli", "models")
    assert done.returncode == 0 and "in the lake" in done.stdout, done.stderr
    done = run_cli({**env, "RECOUP_REPORTS_DIR": str(tmp_path / "reports")}, "pipelines.cli", "report")
    assert done.returncode == 0, done.stderr
    (summary,) = (tmp_path / "reports").glob("*/summary.md")
    assert "Total cost" in summary.read_text()
    assert not (tmp_path / "nowhere").exists(), "the file warehouse was never touched"


# -- migration -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_migrating_a_file_warehouse_into_a_lake_loses_nothing(
    world: World, emulator: EmulatorServer, tmp_path: Path, lake_env: dict[str, str], lake_sync
) -> None:
    file_db = tmp_path / "a" / "recoup.duckdb"
    for round_ in range(2):
        assert run_sync(load_settings(sync_env(world, emulator, file_db)), retry=FAST_RETRY).exit_code == 0
        _upstream_moves_on(world, round_)
    done = run_cli({**lake_env, "RECOUP_DB": str(file_db)}, "pipelines.cli", "lake", "migrate")
    assert done.returncode == 0, done.stderr
    with duckdb.connect() as con:
        con.execute(f"attach '{file_db}' as file (read_only)")
        con.execute(attach_sql(lake_env))
        tables = con.execute("""
            select table_name from information_schema.tables
            where table_catalog = 'file' and table_schema = 'raw' and table_type = 'BASE TABLE'
        """).fetchall()  # fmt: skip
        assert len(tables) >= 6
        for (table,) in tables:
            one, other = f"select * from file.raw.{table}", f"select * from recoup.raw.{table}"
            differ = con.execute(
                f"select count(*) from (({one} except all {other}) union all ({other} except all {one}))"
            )
            assert differ.fetchone()[0] == 0, table
        one, other = "select * from file.analytics.runs", "select * from recoup.analytics.runs"
        assert con.execute(f"select count(*) from ({one} except all {other})").fetchone()[0] == 0
        assert (
            con.execute(f"select count(*) from ({one})").fetchone()
            == con.execute(f"select count(*) from ({other})").fetchone()
        )
    again = run_cli({**lake_env, "RECOUP_DB": str(file_db)}, "pipelines.cli", "lake", "migrate")
    assert again.returncode == 2 and "already holds runs" in again.stderr
    summary = lake_sync(machine="b")
    assert summary.exit_code == 0 and sum(r.new for r in summary.results) == 3, "the lake goes on from there"


@pytest.mark.slow
def test_recoup_shell_reads_the_lake_read_only_with_the_installed_duckdb_cli(
    world: World, emulator: EmulatorServer, tmp_path: Path, lake_env: dict[str, str], lake_sync
) -> None:
    """The CLI installed with the project loads the lake's extensions offline (the same DuckDB version)."""
    assert lake_sync().exit_code == 0
    env = {**lake_env, "RECOUP_DB": str(tmp_path / "a" / "recoup.duckdb")}
    done = run_cli(env, "pipelines.cli", "shell", "-c", "select count(*) as n from analytics.runs")
    assert done.returncode == 0, done.stderr
    assert str(lake_query(lake_env, "select count(*) from analytics.runs")[0][0]) in done.stdout
    write = run_cli(env, "pipelines.cli", "shell", "-c", "create table raw.mine (a int)")
    assert write.returncode != 0 and "read-only" in (write.stdout + write.stderr).lower()
    assert PG_PASSWORD not in done.stdout + done.stderr + write.stdout + write.stderr


@pytest.mark.slow
def test_the_lake_setup_indexes_the_catalogs_column_statistics(lake_env: dict[str, str], lake_sync) -> None:
    assert lake_sync().exit_code == 0
    conninfo = lake_env["RECOUP_LAKE"].removeprefix("postgres:")
    with psycopg.connect(conninfo, password=PG_PASSWORD) as pg:
        rows = pg.execute(
            "select indexdef from pg_indexes where indexname = %s", [lake.lock.CATALOG_INDEX]
        ).fetchall()
    assert len(rows) == 1 and rows[0][0].endswith(
        "ducklake_file_column_stats USING btree (table_id, column_id)"
    )
    assert lake_sync().exit_code == 0, "and a second sync finds it in place"


@pytest.mark.slow
def test_the_runs_of_a_lake_lie_in_one_folder_per_month_of_their_creation(
    lake_env: dict[str, str], lake_sync
) -> None:
    assert lake_sync().exit_code == 0
    done = run_cli(lake_env, "pipelines.cli", "maintain")  # flushes the rows the catalog inlined
    assert done.returncode == 0, done.stderr
    for table in ("runs", "run_details"):
        months = {(year, month) for year, month in lake_query(
            lake_env, f"select distinct year(created_at), month(created_at) from recoup.raw.{table}"
        )}  # fmt: skip
        files = [path for (path,) in lake_query(
            lake_env, f"select data_file from ducklake_list_files('recoup', '{table}', schema => 'raw')"
        )]  # fmt: skip
        if table == "run_details" and not months:
            continue  # no details fetched in this world
        assert months and files, f"raw.{table} has runs in files"
        found = [re.search(r"year=(\d+)/month=(\d+)/", path) for path in files]
        folders = {(int(m[1]), int(m[2])) if m else None for m in found}
        assert folders == months, f"raw.{table}: one folder per month of created_at"


@pytest.mark.slow
def test_a_lake_whose_tags_predate_their_answer_time_gets_it_and_keeps_one_set_per_run(
    world: World, lake_env: dict[str, str], lake_sync
) -> None:
    assert lake_sync().exit_code == 0
    writer = duckdb.connect()
    writer.execute(attach_sql(lake_env, read_only=False))
    writer.execute("alter table recoup.raw.runs__tags drop column seen_at")  # as an older lake was
    writer.close()
    _upstream_moves_on(world, 0)  # one run's tags change: its stored ones must be replaced
    assert lake_sync().exit_code == 0
    undated, repeated = lake_query(lake_env, """
        select (select count(*) from recoup.raw.runs__tags where seen_at is null),
               (select count(*) from (select run_id, tag from recoup.analytics.run_tags group by all having count(*) > 1))
    """)[0]  # fmt: skip
    assert (undated, repeated) == (0, 0)
    changed = world.visible(world.account_ids[0], 5)[-1]["id"]
    tags = lake_query(
        lake_env, "select value from recoup.raw.runs__tags where run_id = ? order by 1", changed
    )
    assert tags == [(f"account:{world.account_ids[0]}",), ("round:0",)]
