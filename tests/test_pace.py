"""The sync at the API's pace: lists first, a time budget, a details backlog kept in the
warehouse, and signals that end a sync early without losing what it fetched."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from pipelines.config import load_settings
from pipelines.emulator import EmulatorServer, World
from pipelines.recoup.transform import status_group
from pipelines.sync import run_sync
from tests.conftest import FAST_RETRY, NOW, sync_env

ROOT = Path(__file__).resolve().parent.parent


def _observed(accounts: int = 3, runs: int = 40) -> World:
    """List items without attempts or errors: every finished run needs one details request."""
    return World(accounts=accounts, runs_per_account=runs, seed=5, now=NOW, profile="observed")


def _retrieved(world: World) -> list[str]:
    return [e["query"]["runId"] for e in world.requests(mode="retrieve")]


def _finished(world: World) -> set[str]:
    return {
        run["id"]
        for account in world.account_ids
        for run in world.visible(account, 100)
        if status_group(run["status"]) in ("succeeded", "failed", "canceled", "expired")
    }


def _pending(db: Path) -> list[tuple[str, int]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("""
            select account_id, details_pending from analytics.sync_log
            where synced_at = (select max(synced_at) from analytics.sync_log) order by account_id
        """).fetchall()


@pytest.mark.slow
def test_every_list_comes_before_any_details_under_a_request_cap(db_path: Path) -> None:
    world = _observed(accounts=12, runs=15)
    with EmulatorServer(world) as server:
        env = sync_env(world, server, db_path, RECOUP_MAX_RPM="6000", RECOUP_MAX_CONCURRENCY="2")
        summary = run_sync(load_settings(env), retry=FAST_RETRY)
    assert summary.exit_code == 0
    modes = [e["mode"] for e in world.requests() if e.get("mode")]
    assert modes.count("list") == 12 and "retrieve" in modes
    assert modes.index("retrieve") > max(i for i, mode in enumerate(modes) if mode == "list"), (
        "a details request went out before every account was listed"
    )


@pytest.mark.slow
def test_the_budget_defers_details_and_later_syncs_fetch_each_run_once(db_path: Path, tmp_path: Path) -> None:
    world = _observed()
    finished = _finished(world)
    with EmulatorServer(world) as server:
        budgeted = load_settings(
            sync_env(
                world,
                server,
                db_path,
                # 4 requests a second for 3 s: the lists and a few details, never all ~100
                # (a 1 s budget could be spent by the lists alone on a loaded machine)
                RECOUP_MAX_RPM="240",
                RECOUP_SYNC_SECONDS="3",
                RECOUP_MAX_CONCURRENCY="1",
            )
        )
        first = run_sync(budgeted, retry=FAST_RETRY)
        assert first.exit_code == 0, "a spent budget is no failure"
        fetched = _retrieved(world)
        assert 0 < len(fetched) < len(finished)
        assert first.followups.details_deferred == len(finished) - len(fetched)
        assert f"details {len(finished) - len(fetched)} deferred" in first.lines()[-1]
        # details_pending is exact: the finished runs of each account not yet fetched by id
        left = finished - set(fetched)
        owner = {run_id: account for account in world.account_ids for run_id in world.by_account[account]}
        expected = Counter(owner[run_id] for run_id in left)
        assert _pending(db_path) == sorted((a, expected.get(a, 0)) for a in world.account_ids)
        # failed runs first, then the newest
        order = [(status_group(world.runs[r]["status"]) != "failed", -world.runs[r]["createdAt"].timestamp())
                 for r in fetched]  # fmt: skip
        assert order == sorted(order)

        # The backlog lives in the warehouse: a machine holding only the published file goes on.
        moved = tmp_path / "elsewhere" / "recoup.duckdb"
        moved.parent.mkdir()
        shutil.copyfile(db_path, moved)
        unlimited = load_settings(sync_env(world, server, moved, RECOUP_SYNC_SECONDS="0"))
        second = run_sync(unlimited, retry=FAST_RETRY)
        assert second.followups.details_deferred == 0 and second.details_pending == 0
        third = run_sync(unlimited, retry=FAST_RETRY)
    assert third.followups.planned == 0
    counts = Counter(_retrieved(world))
    assert set(counts) == finished, "every finished run detailed"
    assert max(counts.values()) == 1, "no run fetched twice at the same updatedAt"
    assert _pending(moved) == [(a, 0) for a in sorted(world.account_ids)]


@pytest.mark.slow
def test_the_summary_says_when_the_lists_alone_exceed_the_budget(db_path: Path) -> None:
    world = _observed(accounts=3, runs=5)
    with EmulatorServer(world) as server:
        env = sync_env(
            world, server, db_path, RECOUP_MAX_RPM="60", RECOUP_SYNC_SECONDS="2", RECOUP_DETAILS="none"
        )
        summary = run_sync(load_settings(env), retry=FAST_RETRY)
    assert summary.exit_code == 0 and len(world.requests(mode="list")) == 3, "lists are never skipped"
    warning = next(line for line in summary.lines() if "more than RECOUP_SYNC_SECONDS" in line)
    assert "RECOUP_MAX_RPM to at least 90" in warning


def _start_sync(env: dict[str, str]) -> subprocess.Popen[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("RECOUP_", "SOURCES__"))}
    return subprocess.Popen(
        [sys.executable, "-m", "pipelines.recoup_pipeline"], cwd=ROOT, env={**clean, **env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _wait_for_details(world: World, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not world.requests(mode="retrieve"):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the sync never reached its details"
        time.sleep(0.05)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_details_publishes_the_listed_runs_within_30_s(db_path: Path, signum: int) -> None:
    world = _observed()
    with EmulatorServer(world) as server:
        process = _start_sync(sync_env(world, server, db_path, RECOUP_MAX_RPM="120", RECOUP_SYNC_SECONDS="0"))
        _wait_for_details(world, process)
        asked = time.monotonic()
        process.send_signal(signum)
        out, err = process.communicate(timeout=60)
        took = time.monotonic() - asked
    assert process.returncode == 0, err + out
    assert took < 30
    assert "stopping early" in err and "stopped early by a signal" in out
    listed = {run["id"] for account in world.account_ids for run in world.visible(account, 100)}
    with duckdb.connect(str(db_path), read_only=True) as con:
        stored = {row[0] for row in con.execute("select run_id from analytics.runs").fetchall()}
    assert stored == listed
    assert len(_retrieved(world)) < len(_finished(world)), "the signal stopped the details"


@pytest.mark.slow
def test_a_second_signal_aborts_and_leaves_the_last_published_warehouse(db_path: Path) -> None:
    world = _observed()
    with EmulatorServer(world) as server:
        run_sync(load_settings(sync_env(world, server, db_path, RECOUP_DETAILS="none")), retry=FAST_RETRY)
        before = _digest(db_path)
        stored = len({run["id"] for account in world.account_ids for run in world.visible(account, 100)})
        world.advance(minutes=5)
        for account in world.account_ids:
            world.add_run(account, created_at=world.now, status="COMPLETED")
        process = _start_sync(sync_env(world, server, db_path, RECOUP_MAX_RPM="120", RECOUP_SYNC_SECONDS="0"))
        _wait_for_details(world, process)
        process.send_signal(signal.SIGTERM)
        logged = []
        for line in process.stderr:  # the second signal once the first has been taken
            logged.append(line)
            if "stopping early" in line:
                break
        process.send_signal(signal.SIGTERM)
        _, rest = process.communicate(timeout=60)
        err = "".join(logged) + rest
    assert process.returncode == 130, err
    assert "aborted" in err
    assert _digest(db_path) == before, "the previous warehouse stands, byte for byte"
    with duckdb.connect(str(db_path), read_only=True) as con:
        assert con.execute("select count(*) from analytics.runs").fetchone()[0] == stored


@pytest.mark.slow
def test_a_sigterm_while_dlt_normalizes_still_publishes_what_was_fetched(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dlt's own handlers would turn the signal into a failed load; the sync's handlers own it."""
    from dlt.common.runners import pool_runner

    real_run_pool = pool_runner.run_pool
    sent = []

    def signalled_run_pool(config, step):  # the signal arrives inside dlt's normalize step
        if not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.3)  # the handler runs before the step's work goes on
        return real_run_pool(config, step)

    monkeypatch.setattr(pool_runner, "run_pool", signalled_run_pool)
    world = _observed()
    with EmulatorServer(world) as server:
        summary = run_sync(
            load_settings(sync_env(world, server, db_path, RECOUP_DETAILS="none")), retry=FAST_RETRY
        )
    assert sent and summary.stopped and summary.exit_code == 0
    listed = {run["id"] for account in world.account_ids for run in world.visible(account, 100)}
    with duckdb.connect(str(db_path), read_only=True) as con:
        assert {row[0] for row in con.execute("select run_id from analytics.runs").fetchall()} == listed
