"""dlt's own tools work on a synced warehouse: its CLI, its trace and `dlt.dataset()`."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import dlt
import duckdb

from pipelines import warehouse
from pipelines.recoup.pages import STATE_KEY
from pipelines.recoup.settings import PIPELINE_NAME, RAW_DATASET
from pipelines.warehouse import Paths
from tests.conftest import ROOT, venv_script

Query = Callable[..., list[tuple]]


def _dlt(pipelines_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The dlt command line, as an analyst would type it."""
    command = [str(venv_script("dlt")), "pipeline", "--pipelines-dir", str(pipelines_dir), *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_dlt_lists_the_pipeline_and_shows_its_info_and_trace_after_a_sync(sync, db_path: Path) -> None:
    sync()
    folder = Paths(db_path).pipelines_dir
    listed = _dlt(folder, "--list-pipelines")
    assert listed.returncode == 0, listed.stderr
    assert PIPELINE_NAME in listed.stdout
    info = _dlt(folder, PIPELINE_NAME, "info")
    assert info.returncode == 0, info.stderr
    assert RAW_DATASET in info.stdout
    trace = _dlt(folder, PIPELINE_NAME, "trace")
    assert trace.returncode == 0, trace.stderr
    assert "load" in trace.stdout
    # dlt's state names no private working copy, and keeps no copy of the loaded rows.
    assert Paths(db_path).work.name not in (folder / PIPELINE_NAME / "state.json").read_text()
    assert not list(folder.rglob("*.parquet"))


def test_dlt_dataset_reads_the_published_tables(sync, db_path: Path, query: Query) -> None:
    sync()
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        pipeline = dlt.pipeline(
            PIPELINE_NAME,
            pipelines_dir=str(Paths(db_path).pipelines_dir),
            destination=dlt.destinations.duckdb(con),
            dataset_name=RAW_DATASET,
        )
        runs = pipeline.dataset().runs.select("id").arrow()
    finally:
        con.close()
    assert runs.num_rows == query("select count(*) from raw.runs")[0][0] > 0
    # The same through `dlt.dataset()`, with no pipeline at all.
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        dataset = dlt.dataset(dlt.destinations.duckdb(con), RAW_DATASET)
        assert dataset.runs.select("id").arrow().num_rows == runs.num_rows
    finally:
        con.close()


def test_wiping_dlts_folder_loses_nothing(world, sync, db_path: Path, query: Query) -> None:
    import shutil

    sync()
    state = query(f"select count(*) from {RAW_DATASET}._dlt_pipeline_state")[0][0]
    shutil.rmtree(Paths(db_path).pipelines_dir)
    world.advance(minutes=5)
    summary = sync()
    assert summary.exit_code == 0
    assert query(f"select count(*) from {RAW_DATASET}._dlt_pipeline_state")[0][0] >= state
    assert _dlt(Paths(db_path).pipelines_dir, PIPELINE_NAME, "info").returncode == 0


def test_each_accounts_page_mark_is_in_dlts_state_and_spares_the_next_sync_a_parse(
    world, sync, db_path: Path, query: Query
) -> None:
    sync()
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        state = warehouse.read_source_state(con)
    finally:
        con.close()
    assert sorted(state[STATE_KEY]) == sorted(world.account_ids)
    assert all(len(mark["digest"]) == 32 for mark in state[STATE_KEY].values())
    assert not query("select * from information_schema.tables where table_name = 'list_pages'")
    summary = sync()
    assert sum(r.unchanged_page for r in summary.results) == len(world.account_ids)


def test_dlt_creates_every_raw_table_even_one_no_row_was_loaded_into(sync, query: Query) -> None:
    sync(RECOUP_DETAILS="none")
    kinds = dict(
        query("select table_name, table_type from information_schema.tables where table_schema = 'raw'")
    )
    assert {name: kinds.get(name) for name in warehouse.RAW_TABLES} == dict.fromkeys(
        warehouse.RAW_TABLES, "BASE TABLE"
    )
    assert query("select count(*) from raw.run_details") == [(0,)]
    assert query("select count(*) from analytics.runs")[0][0] > 0


def test_only_the_newest_states_are_kept(tmp_path: Path) -> None:
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        con.execute("create schema raw")
        con.execute("create table raw._dlt_pipeline_state (version bigint, created_at timestamptz)")
        con.execute("insert into raw._dlt_pipeline_state select i, timestamptz '2026-01-01' + i * interval 1 minute"
                    " from range(25) t(i)")  # fmt: skip
        warehouse.keep_recent_states(con)
        kept = [
            v for (v,) in con.execute("select version from raw._dlt_pipeline_state order by 1").fetchall()
        ]
    assert kept == list(range(25 - warehouse.sync_state.STATES_KEPT, 25))
