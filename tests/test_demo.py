"""`recoup demo` keeps to a folder of its own: a real warehouse is never read, replaced or erased."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import psycopg
import pytest

from tests.conftest import run_recoup
from tools.local_postgres import PG_PASSWORD, PostgresCluster


@pytest.fixture
def real_warehouse(sync: Callable, db_path: Path) -> Path:
    """A warehouse holding synced runs, as a real `recoup sync` leaves it."""
    sync()
    return db_path


@pytest.mark.slow
@pytest.mark.parametrize("configured", ["RECOUP_DB", "default data/recoup.duckdb"])
def test_the_demo_leaves_an_existing_warehouse_byte_for_byte(
    real_warehouse: Path, tmp_path: Path, configured: str
) -> None:
    cwd = tmp_path / "cron-cwd"
    if configured == "RECOUP_DB":
        real, env = real_warehouse, {"RECOUP_DB": str(real_warehouse)}
    else:
        real, env = cwd / "data" / "recoup.duckdb", {}
        real.parent.mkdir(parents=True)
        shutil.copyfile(real_warehouse, real)
    before, mtime = real.read_bytes(), real.stat().st_mtime_ns
    demo = tmp_path / "demo"
    done = run_recoup({**env, "RECOUP_DEMO_DIR": str(demo)}, "demo", cwd=cwd if cwd.exists() else tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert real.read_bytes() == before and real.stat().st_mtime_ns == mtime
    assert f"== demo folder: {demo}" in done.stdout, "it says where it writes"
    with duckdb.connect(str(demo / "recoup.duckdb"), read_only=True) as con:
        assert con.execute("select count(distinct account_id) from analytics.runs").fetchone()[0] == 36
    assert any((demo / "reports").rglob("report.html"))


@pytest.mark.slow
def test_the_demo_refuses_a_folder_that_holds_a_real_warehouse(real_warehouse: Path) -> None:
    before = real_warehouse.read_bytes()
    done = run_recoup(
        {
            "RECOUP_DB": str(real_warehouse.with_name("other.duckdb")),
            "RECOUP_DEMO_DIR": str(real_warehouse.parent),
        },
        "demo",
    )
    assert done.returncode == 2
    assert "was not written by a demo" in done.stderr
    assert real_warehouse.read_bytes() == before


def _lake_config(folder: Path, lake: str, data: Path) -> None:
    (folder / ".dlt").mkdir(parents=True)
    (folder / ".dlt" / "config.toml").write_text(f'[sources.recoup]\nlake = "{lake}"\nlake_data = "{data}"\n')


@pytest.mark.slow
def test_the_demo_never_writes_into_the_projects_lake(
    postgres: PostgresCluster, lake_env: dict[str, str], tmp_path: Path
) -> None:
    project, data = tmp_path / "project", Path(lake_env["RECOUP_LAKE_DATA"])
    _lake_config(project, lake_env["RECOUP_LAKE"], data)  # as the project's .dlt/config.toml suggests
    env = {"SOURCES__RECOUP__LAKE": lake_env["RECOUP_LAKE"], "SOURCES__RECOUP__LAKE_DATA": str(data),
           "PGPASSWORD": PG_PASSWORD, "RECOUP_DEMO_DIR": str(tmp_path / "demo")}  # fmt: skip
    done = run_recoup(env, "demo", cwd=project, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    database = lake_env["RECOUP_LAKE"].split("dbname=")[1].split()[0]
    with psycopg.connect(postgres.conninfo(database), password=PG_PASSWORD) as con:
        tables = con.execute("select count(*) from information_schema.tables where table_schema = 'public'")
        assert tables.fetchone() == (0,), "the lake's catalog was never created"
    assert not data.exists()
    with duckdb.connect(str(tmp_path / "demo" / "recoup.duckdb"), read_only=True) as con:
        assert con.execute("select count(distinct account_id) from analytics.runs").fetchone() == (36,)


def test_the_demo_refuses_when_its_own_folder_would_point_it_at_a_lake(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    _lake_config(demo, "postgres:dbname=lake host=127.0.0.1 user=recoup password=hunter2", tmp_path / "data")
    done = run_recoup({"RECOUP_DEMO_DIR": str(demo)}, "demo", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "demo: refusing to run: its sync would still write into the lake postgres dbname=lake host=127.0.0.1"
        f" user=recoup password=*** (set in {demo}/.dlt/ or dlt's global configuration)"
    ]
    assert not (demo / "recoup.duckdb").exists()
