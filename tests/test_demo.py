"""`recoup demo` keeps to a folder of its own: a real warehouse is never read, replaced or erased."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from tests.conftest import run_recoup


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
