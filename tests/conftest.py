"""Shared fixtures and helpers: a seeded emulator World over real HTTP on 127.0.0.1, syncs, waits."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import duckdb
import httpx
import pytest

from pipelines.config import load_settings
from pipelines.emulator import EmulatorServer, World
from pipelines.recoup.client import RetryPolicy
from pipelines.sync import SyncSummary, run_sync
from tools.local_postgres import PG_PASSWORD, PostgresCluster, PostgresMissing

NOW = datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parent.parent
ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z ")  # how every output line begins

T = TypeVar("T")

# A published warehouse is consistent when every run loaded is counted once as new in sync_log
# and the analytics tables agree with the raw ones.
CONSISTENT = """
    select (select count(*) from analytics.runs),
           (select sum(runs_new) from analytics.sync_log),
           (select count(*) from raw.runs),
           (select count(distinct run_id) from analytics.runs),
           (select count(*) from analytics.run_tags t anti join analytics.runs r using (run_id))
"""


def is_consistent(row: tuple) -> bool:
    """Whether one answer of CONSISTENT describes a whole warehouse."""
    runs, new, raw, distinct, orphans = row
    return runs == new == raw == distinct and orphans == 0


def wait_until(condition: Callable[[], T], what: str, timeout: float = 60) -> T:
    """Polls `condition` until it returns something true, and returns that; fails after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"waited {timeout:g} s for {what}"
        time.sleep(0.02)
    return value


def json_lines(path: Path) -> list:
    """The complete JSON lines a background process has written to `path` so far."""
    text = path.read_text() if path.exists() else ""
    return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]


@pytest.fixture
def world() -> World:
    return World(accounts=3, runs_per_account=40, seed=11, now=NOW)


@pytest.fixture
def emulator(world: World) -> Iterator[EmulatorServer]:
    with EmulatorServer(world) as server:
        yield server


@pytest.fixture
def http(emulator: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.url, timeout=10) as client:
        yield client


FAST_RETRY = RetryPolicy(attempts=4, max_seconds=20, backoff=0.001, max_wait=0.05)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "warehouse" / "recoup.duckdb"


def sync_env(world: World, server: EmulatorServer, db: Path, **overrides: str) -> dict[str, str]:
    """The environment of a sync of every world account through the emulator."""
    env = {
        "RECOUP_API_KEY": world.demo_key,
        "RECOUP_BASE_URL": server.url,
        "RECOUP_ACCOUNTS": ",".join(world.account_ids),
        "RECOUP_DB": str(db),
        "RECOUP_MAX_RPM": "0",
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


@pytest.fixture
def sync(world: World, emulator: EmulatorServer, db_path: Path) -> Callable[..., SyncSummary]:
    """Runs one real sync against the emulator into a DuckDB file in a temp folder."""

    def run(**overrides: str) -> SyncSummary:
        return run_sync(load_settings(sync_env(world, emulator, db_path, **overrides)), retry=FAST_RETRY)

    return run


@pytest.fixture
def query(db_path: Path) -> Callable[..., list[tuple]]:
    """Reads the published warehouse read-only, as an analyst would."""

    def run(sql: str, *params: object) -> list[tuple]:
        with duckdb.connect(str(db_path), read_only=True) as con:
            return con.execute(sql, list(params)).fetchall()

    return run


def _only(env: dict[str, str]) -> dict[str, str]:
    """The test process's environment without any recoup setting, plus `env`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("RECOUP_", "SOURCES__"))}
    clean.update(env)
    return clean


def run_cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Runs a module of the project (`python -m`, as older cron lines do), with only `env` configured."""
    module = args[0] if args else "pipelines.recoup_pipeline"
    return subprocess.run([sys.executable, "-m", module, *args[1:]], cwd=ROOT, env=_only(env),
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def venv_script(name: str) -> Path:
    """A console script installed into the venv that runs the tests (`.venv/bin/<name>`)."""
    path = Path(sys.executable).parent / name
    assert path.is_file(), f"{path} is missing: run `make install`"
    return path


def run_recoup(
    env: dict[str, str], *args: str, cwd: Path = ROOT, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Runs the `recoup` console script as cron does, with only `env` configured."""
    return subprocess.run([str(venv_script("recoup")), *args], cwd=cwd, env=_only(env),
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def start_recoup(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """Starts the `recoup` console script in the background, its output piped."""
    return subprocess.Popen([str(venv_script("recoup")), *args], cwd=ROOT, env=_only(env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- DuckLake: a private PostgreSQL cluster for the catalog (tests/test_lake.py) ------------------


def skip_without_postgres() -> PostgresCluster:
    """A cluster, not started yet; the test is skipped with the reason if PostgreSQL cannot run."""
    try:
        return PostgresCluster()
    except PostgresMissing as exc:
        pytest.skip(f"{exc}: DuckLake tests skipped")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """One private PostgreSQL cluster for the session; skipped, with the reason, if not installed."""
    cluster = skip_without_postgres()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def lake_env(postgres: PostgresCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """RECOUP_LAKE settings of a new, empty lake (its own catalog database and data folder).

    The password reaches libpq through PGPASSWORD, as in production; it is set for this
    process too, for syncs run in-process.
    """
    database = postgres.new_database()
    monkeypatch.setenv("PGPASSWORD", PG_PASSWORD)
    return {
        "RECOUP_LAKE": f"postgres:{postgres.conninfo(database)}",
        "RECOUP_LAKE_DATA": str(tmp_path / "lake-data") + "/",
        "PGPASSWORD": PG_PASSWORD,
    }


@pytest.fixture
def raw_con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """An empty warehouse whose raw tables are real tables, ready for hand-written rows."""
    from pipelines.warehouse import RAW_TABLES, create_sync_tables

    with duckdb.connect(str(tmp_path / "given.duckdb")) as con:
        con.execute("create schema raw")
        for name, columns in RAW_TABLES.items():
            con.execute(f"create table raw.{name} ({', '.join(f'{c} {t}' for c, t in columns.items())})")
        create_sync_tables(con)
        yield con
