"""The warehouse file's guards: a foreign DuckDB file, a deleted lock, two files in one folder, a full disk."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import duckdb
import pytest

from pipelines import warehouse
from pipelines.emulator import EmulatorServer, World
from tests.conftest import ROOT, run_recoup, start_recoup, sync_env, wait_until

MB = 2**20


def test_a_duckdb_file_that_is_not_a_recoup_warehouse_is_refused_and_left_untouched(
    world: World, emulator: EmulatorServer, tmp_path: Path
) -> None:
    db = tmp_path / "recoup.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("create table customers as select 1 as id, 'someone else''s data' as name")
    before = db.read_bytes()
    done = run_recoup(sync_env(world, emulator, db), "sync")
    assert done.returncode == 2, done.stderr
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .endswith(
            f"ERROR sync: RECOUP_DB {db} is a DuckDB database but not a recoup-runs warehouse (no raw.sync_log);"
            " it is left untouched: point RECOUP_DB at another file"
        )
    )
    assert db.read_bytes() == before


@pytest.mark.slow
def test_a_deleted_lock_file_does_not_let_a_second_sync_run(
    world: World, emulator: EmulatorServer, db_path: Path
) -> None:
    world.latency = 0.5  # the first sync is still listing when the second starts
    first = start_recoup(sync_env(world, emulator, db_path, RECOUP_MAX_CONCURRENCY="1"), "sync")
    try:
        paths = warehouse.Paths(db_path)
        wait_until(lambda: paths.work.exists(), "the first sync to start its working copy")
        paths.lock.unlink()  # an operator's cleanup, or a tmp reaper
        second = run_recoup(sync_env(world, emulator, db_path), "sync")
        assert second.returncode == 75, second.stderr
        assert f"another sync is running in {db_path.parent}" in second.stderr
        assert first.wait(timeout=120) == 0
    finally:
        first.kill()


def test_two_warehouses_named_alike_in_one_folder_have_working_folders_of_their_own(tmp_path: Path) -> None:
    duck, db = warehouse.Paths(tmp_path / "recoup.duckdb"), warehouse.Paths(tmp_path / "recoup.db")
    assert duck.lock != db.lock
    assert duck.work != db.work and duck.pipelines_dir != db.pipelines_dir


# Runs a sync with RECOUP_DB on a small file system of its own (a private tmpfs mount).
ON_A_SMALL_DISK = textwrap.dedent("""
    set -e
    mount -t tmpfs -o size="$SIZE" tmpfs "$FOLDER"
    cp "$SOURCE" "$FOLDER/recoup.duckdb"
    set +e
    "$PYTHON" -m pipelines.recoup_pipeline
""")


@pytest.mark.slow
def test_a_sync_with_nothing_new_runs_on_a_nearly_full_disk(
    world: World, emulator: EmulatorServer, sync, db_path: Path, tmp_path: Path
) -> None:
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-m", "true"], check=False).returncode:
        pytest.skip("needs a private mount namespace (unshare -m) for a small file system")
    sync()
    size = db_path.stat().st_size
    folder = tmp_path / "small"
    folder.mkdir()
    # Room for the warehouse, its working copy and 8 MB: less than a fixed 64 MB margin.
    env = sync_env(world, emulator, folder / "recoup.duckdb") | {
        "SIZE": str(2 * size + 8 * MB), "FOLDER": str(folder), "SOURCE": str(db_path), "PYTHON": sys.executable,
    }  # fmt: skip
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("RECOUP_", "SOURCES__"))} | env
    done = subprocess.run(["unshare", "-m", "sh", "-c", ON_A_SMALL_DISK], cwd=ROOT, env=clean,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "3/3 accounts ok" in done.stdout


@pytest.mark.slow
def test_a_lake_sync_leaves_no_working_file_behind(
    world: World, emulator: EmulatorServer, lake_env: dict[str, str], tmp_path: Path
) -> None:
    db = tmp_path / "machine" / "recoup.duckdb"
    done = run_recoup({**sync_env(world, emulator, db, RECOUP_STORE_PAYLOADS="1"), **lake_env}, "sync")
    assert done.returncode == 0, done.stderr
    journal = db.parent / ".recoup.duckdb-outcomes.jsonl"  # how it ended, for the next sync to record
    assert sorted(p.name for p in db.parent.iterdir()) == [journal.name, ".recoup.duckdb.lock"], (
        "its answers are in the lake only"
    )
    (outcome,) = [json.loads(line) for line in journal.read_text().splitlines()]
    assert set(outcome) <= set(warehouse.SIDE_TABLES["sync_outcomes"]) and outcome["exit_code"] == 0


NOBODY = 65534
SETPRIV = shutil.which("setpriv")


def _as_nobody(env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    """Runs `command` as an unprivileged user (root ignores file modes), with only `env` configured."""
    assert SETPRIV
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("RECOUP_", "SOURCES__"))} | env
    return subprocess.run([SETPRIV, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *command],
                          cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120)  # fmt: skip


@pytest.mark.slow
@pytest.mark.skipif(
    os.geteuid() != 0 or SETPRIV is None, reason="needs root to run as another user (setpriv)"
)
def test_the_first_publish_is_read_only_by_mode_so_a_default_session_is_refused_not_locking(
    world: World, emulator: EmulatorServer, request: pytest.FixtureRequest
) -> None:
    """As a user other than root: DuckDB's CLI and `duckdb.connect(path)` are refused in one line."""
    folder = Path(tempfile.mkdtemp(prefix="recoup-nobody-"))  # pytest's own folders are root's alone
    request.addfinalizer(lambda: shutil.rmtree(folder, ignore_errors=True))
    folder.chmod(0o755)
    os.chown(folder, NOBODY, NOBODY)
    db = folder / "recoup.duckdb"
    env = sync_env(world, emulator, db, HOME=str(folder))
    recoup = str(Path(sys.executable).with_name("recoup"))
    first = _as_nobody(env, recoup, "sync")
    assert first.returncode == 0, first.stderr
    assert db.stat().st_mode & 0o777 == 0o444 and db.stat().st_uid == NOBODY

    cli = _as_nobody(env, str(Path(sys.executable).with_name("duckdb")), str(db), "-c", "select 1")
    assert cli.returncode == 1 and (cli.stdout + cli.stderr).strip().splitlines() == [
        f'IO Error: Cannot open file "{db}": Permission denied'
    ]
    default = _as_nobody(env, sys.executable, "-c", f"import duckdb; duckdb.connect({str(db)!r})")
    assert default.returncode == 1 and "Permission denied" in default.stderr
    reader = _as_nobody(env, sys.executable, "-c", "import duckdb; print(duckdb.connect("
                        f"{str(db)!r}, read_only=True).sql('select count(*) from analytics.runs').fetchone()[0])")  # fmt: skip
    assert reader.returncode == 0 and int(reader.stdout) > 0, reader.stderr

    assert _as_nobody(env, recoup, "sync").returncode == 0
    assert db.stat().st_mode & 0o777 == 0o444, "later publishes keep the mode"
    assert _as_nobody(env, "chmod", "0640", str(db)).returncode == 0
    assert _as_nobody(env, recoup, "sync").returncode == 0
    assert db.stat().st_mode & 0o777 == 0o640, "an operator's chmod is kept"
