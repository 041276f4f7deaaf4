"""`recoup` as cron runs it: a subprocess of the console script, its exit code, its output, its files."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import duckdb
import filelock
import orjson
import pytest

from pipelines.emulator import EmulatorServer, World
from tests.conftest import (
    ISO_UTC,
    closed_port,
    run_cli,
    run_recoup,
    start_recoup,
    sync_env,
    venv_script,
    wait_until,
)

COMMANDS = ("sync", "status", "models", "report", "demo", "emulator")


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


@pytest.mark.slow
def test_sync_cli_exit_0_with_a_summary_and_the_key_nowhere(
    world: World, emulator: EmulatorServer, tmp_path: Path
) -> None:
    db = tmp_path / "data" / "recoup.duckdb"
    done = run_recoup(sync_env(world, emulator, db), "sync")
    assert done.returncode == 0, done.stderr
    assert "sync: 3/3 accounts ok, 0 failed" in done.stdout
    assert "accounts 3/3" in done.stderr, "progress is logged"
    assert world.demo_key not in done.stdout + done.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert world.demo_key.encode() not in path.read_bytes(), path
    assert world.demo_key not in _text_values(db)


@pytest.mark.slow
def test_every_log_line_and_summary_line_starts_with_an_iso_utc_time(
    world: World, emulator: EmulatorServer, tmp_path: Path
) -> None:
    done = run_recoup(sync_env(world, emulator, tmp_path / "recoup.duckdb"), "sync")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines() + done.stdout.splitlines()
    assert len(lines) > 5
    assert [line for line in lines if not ISO_UTC.match(line)] == []


@pytest.mark.slow
def test_every_line_of_every_command_after_a_sync_starts_with_an_iso_utc_time(
    world: World, emulator: EmulatorServer, tmp_path: Path
) -> None:
    env = sync_env(world, emulator, tmp_path / "recoup.duckdb", RECOUP_ARCHIVE=str(tmp_path / "archive"),
                   RECOUP_REPORTS_DIR=str(tmp_path / "reports"))  # fmt: skip
    assert run_recoup(env, "sync").returncode == 0
    commands = [("status",), ("status", "--max-age", "1s"), ("models",), ("report",), ("alert",),
                ("archive", "status"), ("restore", "--to", str(tmp_path / "restored" / "recoup.duckdb"))]  # fmt: skip
    for args in commands:
        done = run_recoup(env, *args)
        lines = done.stderr.splitlines() + done.stdout.splitlines()
        assert done.returncode in (0, 1) and lines, (args, done.stderr)
        assert [line for line in lines if not ISO_UTC.match(line)] == [], args


@pytest.mark.slow
def test_log_format_json_gives_one_object_per_line(
    world: World, emulator: EmulatorServer, tmp_path: Path
) -> None:
    done = run_recoup(sync_env(world, emulator, tmp_path / "recoup.duckdb"), "--log-format", "json", "sync")
    assert done.returncode == 0, done.stderr
    entries = [orjson.loads(line) for line in done.stderr.splitlines() + done.stdout.splitlines()]
    assert all(re.match(r"^\d{4}-\d{2}-\d{2}T[\d:.]+Z$", e["ts"]) and e["level"] for e in entries)
    assert any(e["msg"].startswith("sync: 3/3 accounts ok") for e in entries)


@pytest.mark.slow
def test_a_failed_account_is_an_error_in_text_and_json_and_the_totals_carry_their_numbers(
    world: World, emulator: EmulatorServer, tmp_path: Path
) -> None:
    denied = world.account_ids[1]
    world.revoke(world.demo_key, denied)
    env = sync_env(world, emulator, tmp_path / "recoup.duckdb")
    text = run_recoup(env, "sync")
    assert text.returncode == 1
    assert re.search(rf"^\S+ ERROR account {denied}: FAILED: .*access denied", text.stdout, re.M), text.stdout
    done = run_recoup(env, "--log-format", "json", "sync")
    entries = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert [e["level"] for e in entries if e["msg"].startswith(f"account {denied}: FAILED")] == ["error"]
    totals = next(e for e in entries if e["msg"].startswith("sync: 2/3 accounts ok"))
    assert totals["level"] == "info" and totals["accounts_failed"] == 1 and totals["exit_code"] == 1
    assert totals["runs_new"] == 0 and totals["requests"] >= 3 and isinstance(totals["seconds"], float)


@pytest.mark.slow
def test_every_account_failing_the_same_way_is_one_line(tmp_path: Path) -> None:
    world = World(accounts=6, runs_per_account=3, seed=2)
    with EmulatorServer(world) as server:
        for account in world.account_ids[1:]:  # the key keeps its own account only
            world.revoke(world.demo_key, account)
        done = run_recoup(sync_env(world, server, tmp_path / "recoup.duckdb"), "sync")
    failed = [line for line in done.stdout.splitlines() if "FAILED" in line]
    assert len(failed) == 1 and " ERROR 5 accounts FAILED: " in failed[0], done.stdout


@pytest.mark.slow
def test_the_module_command_of_older_cron_lines_is_the_same_sync(
    world: World, emulator: EmulatorServer, tmp_path: Path
) -> None:
    done = run_cli(
        sync_env(world, emulator, tmp_path / "recoup.duckdb")
    )  # python -m pipelines.recoup_pipeline
    assert done.returncode == 0, done.stderr
    assert "sync: 3/3 accounts ok, 0 failed" in done.stdout
    assert ISO_UTC.match(done.stdout)


@pytest.mark.slow
def test_one_failed_account_exits_1_and_names_it(
    world: World, emulator: EmulatorServer, tmp_path: Path
) -> None:
    world.inject("500", count=1000, mode="list", account=world.account_ids[0])
    env = sync_env(
        world, emulator, tmp_path / "recoup.duckdb", RECOUP_ACCOUNTS=",".join(world.account_ids[:2])
    )
    env["RECOUP_RETRY_ATTEMPTS"] = "2"
    done = run_recoup(env, "sync", timeout=300)
    assert done.returncode == 1
    assert f"account {world.account_ids[0]}: FAILED" in done.stdout
    assert "1/2 accounts ok, 1 failed" in done.stdout


@pytest.mark.slow
def test_a_forbidden_account_exits_1_and_the_others_load(
    world: World, emulator: EmulatorServer, tmp_path: Path
) -> None:
    own, forbidden, other = world.account_ids  # the demo key belongs to the first
    world.revoke(world.demo_key, forbidden)
    db = tmp_path / "recoup.duckdb"
    done = run_recoup(sync_env(world, emulator, db), "sync")
    assert done.returncode == 1, done.stderr
    assert f"account {forbidden}: FAILED: account {forbidden}: list: access denied (403)" in done.stdout
    assert "2/3 accounts ok, 1 failed" in done.stdout
    with duckdb.connect(str(db), read_only=True) as con:
        loaded = {row[0] for row in con.execute("select distinct account_id from analytics.runs").fetchall()}
    assert loaded == {own, other}


@pytest.mark.slow
def test_every_account_forbidden_is_exit_2_nothing_could_be_listed(
    world: World, emulator: EmulatorServer, tmp_path: Path
) -> None:
    key = world.add_key(world.account_ids[0])  # may read only its own account
    env = sync_env(world, emulator, tmp_path / "recoup.duckdb", RECOUP_API_KEY=key,
                   RECOUP_ACCOUNTS=",".join(world.account_ids[1:]))  # fmt: skip
    done = run_recoup(env, "sync")
    assert done.returncode == 2, done.stderr
    assert "0/2 accounts ok, 2 failed" in done.stdout
    host = emulator.url.removeprefix("http://")
    assert done.stderr.splitlines()[-1].endswith(
        f"sync: no account could be listed from {host} (RECOUP_BASE_URL)"
    )


@pytest.mark.slow
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
        ({"RECOUP_STORE_PAYLOADS": "maybe"}, "RECOUP_STORE_PAYLOADS must be true or false, got 'maybe'"),
        ({"RECOUP_API_KEY": "recoup_sk_wrong"}, "the API key was refused (401"),
    ],
)
def test_bad_configuration_is_one_line_exit_2_and_writes_nothing(
    world: World, emulator: EmulatorServer, tmp_path: Path, change: dict[str, str], message: str
) -> None:
    db = tmp_path / "data" / "recoup.duckdb"
    done = run_recoup(sync_env(world, emulator, db, **change), "sync")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert message in lines[-1] and ISO_UTC.sub("", lines[-1]).startswith("ERROR sync: ")
    assert "Traceback" not in done.stderr
    assert not db.exists()
    assert "recoup_sk_wrong" not in done.stderr


@pytest.mark.slow
def test_unwritable_database_folder_is_exit_2(world: World, emulator: EmulatorServer, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    done = run_recoup(sync_env(world, emulator, blocker / "recoup.duckdb"), "sync")
    assert done.returncode == 2
    assert "cannot create the database folder" in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("accounts", ["own", "listed"])
def test_an_unreachable_host_is_one_line_naming_it_and_exit_2(
    world: World, tmp_path: Path, accounts: str
) -> None:
    port = closed_port()
    env = {"RECOUP_API_KEY": world.demo_key, "RECOUP_BASE_URL": f"http://127.0.0.1:{port}",
           "RECOUP_ACCOUNTS": "" if accounts == "own" else ",".join(world.account_ids),
           "RECOUP_DB": str(tmp_path / "recoup.duckdb"), "RECOUP_RETRY_ATTEMPTS": "2"}  # fmt: skip
    done = run_recoup(env, "sync")
    assert done.returncode == 2, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and f"cannot reach 127.0.0.1:{port} (RECOUP_BASE_URL)" in errors[0], errors
    assert "transport error (ConnectError)" in errors[0]
    assert "FAILED" not in done.stdout, "one line, not one per account"
    assert world.demo_key not in done.stdout + done.stderr


def test_a_second_sync_exits_75_while_the_lock_is_held(
    world: World, emulator: EmulatorServer, tmp_path: Path
) -> None:
    db = tmp_path / "recoup.duckdb"
    with filelock.FileLock(tmp_path / ".recoup.duckdb.lock"):
        done = run_recoup(sync_env(world, emulator, db), "sync")
    assert done.returncode == 75
    assert "another sync is running" in done.stderr
    assert not db.exists()


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_waiting_for_the_lock_exits_130_without_a_traceback(
    world: World, emulator: EmulatorServer, tmp_path: Path, signum: int
) -> None:
    db = tmp_path / "recoup.duckdb"
    with filelock.FileLock(tmp_path / ".recoup.duckdb.lock"):
        process = start_recoup(sync_env(world, emulator, db, RECOUP_LOCK_WAIT="60"), "--verbose", "sync")
        for line in process.stderr:
            if "Attempting to acquire lock" in line:  # filelock's debug line: it is waiting
                break
        process.send_signal(signum)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 130, out + err
    assert "Traceback" not in err
    name = signal.Signals(signum).name
    assert err.splitlines()[-1] == f"sync: {name} before the work began: aborted; nothing was changed"
    assert not db.exists() and world.requests(mode="list") == [], "nothing was listed or published"


@pytest.mark.slow
def test_a_file_that_is_not_a_warehouse_is_a_clear_error_and_left_alone(
    world: World, emulator: EmulatorServer, tmp_path: Path
) -> None:
    db = tmp_path / "recoup.duckdb"
    db.write_bytes(b"this is not a DuckDB file" * 100)
    done = run_recoup(sync_env(world, emulator, db), "sync")
    assert done.returncode == 1
    assert ISO_UTC.sub("", done.stderr.strip().splitlines()[-1]).startswith(
        "ERROR sync: the warehouse cannot be used:"
    )
    assert "Traceback" not in done.stderr
    assert db.read_bytes() == b"this is not a DuckDB file" * 100


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_runs_nothing(
    world: World, emulator: EmulatorServer, tmp_path: Path, command: str | None
) -> None:
    env = sync_env(world, emulator, tmp_path / "data" / "recoup.duckdb", RECOUP_DEMO_DIR=str(tmp_path / "demo"),
                   RECOUP_REPORTS_DIR=str(tmp_path / "reports"))  # fmt: skip
    done = run_recoup(env, *([command] if command else []), "--help", cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: ")
    assert list(tmp_path.iterdir()) == [], "nothing written"
    assert world.requests() == [], "no request sent"


@pytest.mark.slow
def test_the_duckdb_cli_from_the_package_index_reads_the_warehouse_read_only(
    sync: Callable, db_path: Path, query: Callable
) -> None:
    sync()
    before = db_path.read_bytes()
    done = subprocess.run(
        [str(venv_script("duckdb")), "-readonly", "-noheader", "-list", str(db_path),
         "select count(*) from analytics.runs"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip()) == query("select count(*) from analytics.runs")[0][0] > 0
    assert db_path.read_bytes() == before


@pytest.mark.slow
def test_recoup_shell_reads_the_warehouse_read_only_and_a_sync_runs_while_it_is_open(
    world: World, emulator: EmulatorServer, db_path: Path, query: Callable
) -> None:
    env = sync_env(world, emulator, db_path)
    assert run_recoup(env, "sync").returncode == 0
    count = run_recoup(env, "shell", "-c", "select count(*) as n from analytics.runs")
    assert count.returncode == 0, count.stderr
    assert str(query("select count(*) from analytics.runs")[0][0]) in count.stdout
    write = run_recoup(env, "shell", "-c", "create table analytics.mine (a int)")
    assert write.returncode != 0 and "read-only" in (write.stdout + write.stderr).lower()
    session = subprocess.Popen([str(venv_script("recoup")), "shell"], env={**os.environ, **env}, text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:  # an analyst's session, left open on the warehouse
        assert session.stdin is not None and session.stdout is not None
        session.stdin.write("select 4242 as opened;\n")
        session.stdin.flush()
        wait_until(lambda: "4242" in session.stdout.readline(), "the session answered")
        world.advance(minutes=5)
        world.add_run(world.account_ids[0], created_at=world.now)
        done = run_recoup(env, "sync")
        assert done.returncode == 0, done.stderr
    finally:
        session.kill()
        session.wait()
    assert not db_path.with_name(db_path.name + ".wal").exists()
    missing = run_recoup({"RECOUP_DB": str(db_path.parent / "none.duckdb")}, "shell", "-c", "select 1")
    assert missing.returncode == 2 and "no warehouse at" in missing.stderr
