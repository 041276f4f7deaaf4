"""`make sync` as cron runs it: a subprocess, its exit code, its output, the files it leaves."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import filelock
import pytest

from pipelines.emulator import EmulatorServer, World
from tests.conftest import sync_env

ROOT = Path(__file__).resolve().parent.parent


def run_cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Runs a module of the project the way the Makefile does, with only `env` configured."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("RECOUP_", "SOURCES__"))}
    clean.update(env)
    module = args[0] if args else "pipelines.recoup_pipeline"
    return subprocess.run(
        [sys.executable, "-m", module, *args[1:]],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _text_values(db: Path) -> str:
    """Every text value of every table and view of a DuckDB file, joined."""
    chunks = []
    with duckdb.connect(str(db), read_only=True) as con:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables where table_type = 'BASE TABLE'"
        ).fetchall()
        for schema, table in tables:
            chunks.append(str(con.execute(f'select * from "{schema}"."{table}"').fetchall()))
    return "\n".join(chunks)


def test_sync_cli_exit_0_with_a_summary_and_the_key_nowhere(
    world: World, emulator: EmulatorServer, tmp_path: Path
) -> None:
    db = tmp_path / "data" / "recoup.duckdb"
    done = run_cli(sync_env(world, emulator, db))
    assert done.returncode == 0, done.stderr
    assert "sync: 3/3 accounts ok, 0 failed" in done.stdout
    assert "accounts 3/3" in done.stderr, "progress is logged"
    assert world.demo_key not in done.stdout + done.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert world.demo_key.encode() not in path.read_bytes(), path
    assert world.demo_key not in _text_values(db)


def test_one_failed_account_exits_1_and_names_it(
    world: World, emulator: EmulatorServer, tmp_path: Path
) -> None:
    world.inject("500", count=1000, mode="list", account=world.account_ids[0])
    env = sync_env(
        world, emulator, tmp_path / "recoup.duckdb", RECOUP_ACCOUNTS=",".join(world.account_ids[:2])
    )
    env["RECOUP_RETRY_ATTEMPTS"] = "2"
    done = run_cli(env, timeout=300)
    assert done.returncode == 1
    assert f"account {world.account_ids[0]}: FAILED" in done.stdout
    assert "1/2 accounts ok, 1 failed" in done.stdout


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"RECOUP_API_KEY": ""}, "RECOUP_API_KEY is not set"),
        ({"RECOUP_ACCOUNTS": "not-a-uuid"}, "is not an account id"),
        ({"RECOUP_BASE_URL": "http://example.com"}, "refusing to send the API key over plain http"),
        ({"RECOUP_BASE_URL": "ftp://127.0.0.1"}, "must be an http(s) URL"),
        ({"RECOUP_MAX_CONCURRENCY": "0"}, "RECOUP_MAX_CONCURRENCY must be at least 1"),
        ({"RECOUP_MAX_RPM": "lots"}, "RECOUP_MAX_RPM must be a whole number"),
        ({"RECOUP_DETAILS": "some"}, "RECOUP_DETAILS must be one of"),
        ({"RECOUP_API_KEY": "recoup_sk_wrong"}, "the API key was refused (401"),
    ],
)
def test_bad_configuration_is_one_line_exit_2_and_writes_nothing(
    world: World, emulator: EmulatorServer, tmp_path: Path, change: dict[str, str], message: str
) -> None:
    db = tmp_path / "data" / "recoup.duckdb"
    done = run_cli(sync_env(world, emulator, db, **change))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert message in lines[-1] and lines[-1].startswith("sync: ")
    assert "Traceback" not in done.stderr
    assert not db.exists()
    assert "recoup_sk_wrong" not in done.stderr


def test_unwritable_database_folder_is_exit_2(world: World, emulator: EmulatorServer, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    done = run_cli(sync_env(world, emulator, blocker / "recoup.duckdb"))
    assert done.returncode == 2
    assert "cannot create the database folder" in done.stderr


def test_unreachable_url_is_a_clear_error(world: World, tmp_path: Path) -> None:
    env = {"RECOUP_API_KEY": world.demo_key, "RECOUP_BASE_URL": "http://127.0.0.1:9", "RECOUP_ACCOUNTS": "",
           "RECOUP_DB": str(tmp_path / "recoup.duckdb"), "RECOUP_RETRY_ATTEMPTS": "2"}  # fmt: skip
    done = run_cli(env)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "sync: own account: transport error (ConnectError) (gave up after 2 tries)"
    )


def test_a_second_sync_exits_75_while_the_lock_is_held(
    world: World, emulator: EmulatorServer, tmp_path: Path
) -> None:
    db = tmp_path / "recoup.duckdb"
    with filelock.FileLock(tmp_path / ".recoup.duckdb.lock"):
        done = run_cli(sync_env(world, emulator, db))
    assert done.returncode == 75
    assert "another sync is running" in done.stderr
    assert not db.exists()


def test_a_file_that_is_not_a_warehouse_is_a_clear_error_and_left_alone(
    world: World, emulator: EmulatorServer, tmp_path: Path
) -> None:
    db = tmp_path / "recoup.duckdb"
    db.write_bytes(b"this is not a DuckDB file" * 100)
    done = run_cli(sync_env(world, emulator, db))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("sync: the warehouse cannot be used:")
    assert "Traceback" not in done.stderr
    assert db.read_bytes() == b"this is not a DuckDB file" * 100
