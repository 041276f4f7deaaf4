"""`recoup status`: freshness per account from the published warehouse, for healthchecks and alerting."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import duckdb
import orjson
import pytest

from pipelines.emulator import World
from pipelines.status import iso, parse_duration
from tests.conftest import ISO_UTC, run_recoup


def _status(db: Path, *args: str, accounts: list[str] | None = None) -> tuple[int, str, str]:
    env = {"RECOUP_DB": str(db)} | ({"RECOUP_ACCOUNTS": ",".join(accounts)} if accounts is not None else {})
    done = run_recoup(env, "status", *args, timeout=60)
    lines = done.stdout.splitlines()
    if "--json" not in args:  # every text line is dated; the tests read what follows the date
        assert all(ISO_UTC.match(line) for line in lines), done.stdout
        lines = [ISO_UTC.sub("", line) for line in lines]
    return done.returncode, "\n".join(lines), done.stderr


def _age_last_syncs(db: Path, account: str, hours: int) -> None:
    """Moves an account's sync history `hours` into the past, as if it had stopped syncing."""
    with duckdb.connect(str(db)) as con:
        con.execute(
            f"update raw.sync_log set synced_at = synced_at - interval {hours} hour, "
            f"finished_at = finished_at - interval {hours} hour where account_id = ?",
            [account],
        )


@pytest.mark.slow
def test_max_age_exits_0_when_every_account_synced_recently(
    sync: Callable, db_path: Path, world: World
) -> None:
    sync()
    code, out, err = _status(db_path, "--max-age", "15m")
    assert code == 0, out + err
    for account in world.account_ids:
        assert f"account {account}: ok · last good sync " in out
    assert "status: 3 accounts, 0 failed, 0 without a good sync in 15m" in out


@pytest.mark.slow
def test_max_age_exits_1_on_a_stale_account_and_names_it(sync: Callable, db_path: Path, world: World) -> None:
    sync()
    stale = world.account_ids[1]
    _age_last_syncs(db_path, stale, hours=2)
    code, out, _ = _status(db_path, "--max-age", "1h")
    assert code == 1
    assert [line for line in out.splitlines() if "STALE" in line] == [
        next(line for line in out.splitlines() if line.startswith(f"account {stale}:"))
    ]
    assert _status(db_path, "--max-age", "3h")[0] == 0, "younger than the limit"
    assert _status(db_path)[0] == 0, "without --max-age nothing is stale"


@pytest.mark.slow
def test_an_account_that_never_synced_well_is_failed_and_stale(
    sync: Callable, db_path: Path, world: World
) -> None:
    forbidden = world.account_ids[2]
    world.revoke(world.demo_key, forbidden)
    sync()
    code, out, _ = _status(db_path, "--max-age", "1d", "--quiet")
    assert code == 1
    lines = out.splitlines()
    assert len(lines) == 3, "--quiet: the warehouse, the account with a problem, the count"
    assert lines[1].startswith(f"account {forbidden}: FAILED at ")
    assert "last good sync never" in lines[1]


@pytest.mark.slow
def test_json_holds_every_account_and_its_details_backlog(
    sync: Callable, db_path: Path, world: World, query: Callable
) -> None:
    sync()
    with duckdb.connect(str(db_path)) as con:
        con.execute("update raw.sync_log set details_pending = 7")
    code, out, _ = _status(db_path, "--json", "--max-age", "90s")
    assert code == 0
    status = orjson.loads(out)
    assert status["run_count"] == query("select count(*) from analytics.runs")[0][0] > 0
    assert status["size_bytes"] == db_path.stat().st_size
    assert status["max_age_seconds"] == 90
    assert sorted(a["account_id"] for a in status["accounts"]) == sorted(world.account_ids)
    assert {a["details_pending"] for a in status["accounts"]} == {7}
    assert status["failed"] == [] and status["stale"] == []


@pytest.mark.slow
def test_a_warehouse_from_before_the_details_backlog_still_reports(sync: Callable, db_path: Path) -> None:
    sync()
    with duckdb.connect(str(db_path)) as con:  # sync_log as it was before details_pending and finished_at
        con.execute("alter table raw.sync_log drop column details_pending")
        con.execute("alter table raw.sync_log drop column finished_at")
        started = con.execute("select max(synced_at) from raw.sync_log").fetchone()[0]
    code, out, err = _status(db_path, "--json")
    assert code == 0, err
    accounts = orjson.loads(out)["accounts"]
    assert {a["details_pending"] for a in accounts} == {None}
    assert {a["last_good_sync_at"] for a in accounts} == {iso(started)}, "fresh as of its start then"


@pytest.mark.slow
def test_no_warehouse_or_a_bad_duration_is_one_line_exit_2(
    sync: Callable, db_path: Path, tmp_path: Path
) -> None:
    code, out, err = _status(tmp_path / "missing.duckdb")
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and "no warehouse at" in err
    sync()
    code, out, err = _status(db_path, "--max-age", "15 minutes")
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and "is not a duration" in err


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400), ("15M", 900)]
)
def test_durations_read_as_operators_write_them(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.slow
def test_an_account_no_longer_configured_is_retired_and_the_alert_clears(
    sync: Callable, db_path: Path, world: World
) -> None:
    sync()
    gone, *kept = world.account_ids
    _age_last_syncs(db_path, gone, hours=2)  # it left: no sync has listed it since
    assert _status(db_path, "--max-age", "1h")[0] == 1, "judged while RECOUP_ACCOUNTS is unset"
    code, out, err = _status(db_path, "--max-age", "1h", accounts=kept)
    assert code == 0, out + err
    assert f"retired: 1 account(s) in the sync log but not in RECOUP_ACCOUNTS, not judged: {gone}" in out
    assert "STALE" not in out and f"status: {len(kept)} accounts, 0 failed" in out
    status = orjson.loads(_status(db_path, "--json", "--max-age", "1h", accounts=kept)[1])
    assert status["retired"] == [gone] and status["verdict"] == "ok" and status["stale"] == []


@pytest.mark.slow
def test_a_configured_account_that_never_synced_is_named_and_stale(
    sync: Callable, db_path: Path, world: World
) -> None:
    sync()
    new = "0f0f0f0f-0000-4000-8000-00000000abcd"
    code, out, _ = _status(db_path, "--max-age", "15m", accounts=[*world.account_ids, new])
    assert code == 1
    assert f"account {new}: never synced (it is in RECOUP_ACCOUNTS) · STALE (older than 15m)" in out
    status = orjson.loads(
        _status(db_path, "--json", "--max-age", "15m", accounts=[*world.account_ids, new])[1]
    )
    assert status["never_synced"] == [new] and status["stale"] == [new] and status["verdict"] == "stale"


@pytest.mark.slow
def test_freshness_is_when_the_sync_finished_not_when_it_started(sync: Callable, db_path: Path) -> None:
    """A long first sync is fresh as of its end: a sync that took 20 minutes is not STALE at 15m."""
    sync()
    with duckdb.connect(str(db_path)) as con:
        con.execute("update raw.sync_log set synced_at = synced_at - interval 20 minute")
    code, out, _ = _status(db_path, "--max-age", "15m")
    assert code == 0 and "STALE" not in out
