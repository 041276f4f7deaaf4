"""`make maintain` deletes only the files its own catalog wrote and let go, never anything else on the data path."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipelines.config import load_settings
from pipelines.emulator import EmulatorServer, World
from pipelines.sync import run_sync
from tests.conftest import FAST_RETRY, run_cli, sync_env
from tests.test_lake import EVERY_ANSWER, _upstream_moves_on, lake_query
from tools.local_postgres import PostgresCluster

pytestmark = pytest.mark.timeout(240)


@pytest.mark.slow
def test_maintenance_leaves_a_second_lake_on_the_same_data_path_and_foreign_files_alone(
    world: World,
    emulator: EmulatorServer,
    postgres: PostgresCluster,
    lake_env: dict[str, str],
    tmp_path: Path,
) -> None:
    second = {**lake_env, "RECOUP_LAKE": f"postgres:{postgres.conninfo(postgres.new_database())}"}
    for name, env in (("a", lake_env), ("b", second)):
        settings = load_settings(sync_env(world, emulator, tmp_path / name / "recoup.duckdb", **env))
        assert run_sync(settings, retry=FAST_RETRY).exit_code == 0
    for round_ in range(2):  # the first lake's older files are let go as its runs change
        _upstream_moves_on(world, round_)
        settings = load_settings(sync_env(world, emulator, tmp_path / "a" / "recoup.duckdb", **lake_env))
        assert run_sync(settings, retry=FAST_RETRY).exit_code == 0
    data = Path(lake_env["RECOUP_LAKE_DATA"])
    table_folder = next(data.rglob("*.parquet")).parent
    foreign = [data / "operator-backup.parquet", table_folder / "copied-by-hand.parquet"]
    with duckdb.connect() as con:
        for path in foreign:
            con.execute(f"copy (select 42 as answer) to '{path}' (format parquet)")
    first_before, second_before = lake_query(lake_env, EVERY_ANSWER), lake_query(second, EVERY_ANSWER)
    files_before = set(data.rglob("*.parquet"))
    done = run_cli(
        {**lake_env, "RECOUP_LAKE_KEEP_DAYS": "0", "RECOUP_LAKE_GRACE_MINUTES": "0"},
        "pipelines.cli",
        "maintain",
    )
    assert done.returncode == 0, done.stderr
    assert lake_query(second, EVERY_ANSWER) == second_before, "the second lake reads as before"
    assert lake_query(lake_env, EVERY_ANSWER) == first_before
    assert all(path.exists() for path in foreign), "files no catalog wrote stay"
    assert files_before - set(data.rglob("*.parquet")), "the files the first lake let go are deleted"
