"""The real sync against the emulator over HTTP, into a DuckDB file in a temp folder."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines.config import load_settings
from pipelines.emulator import EmulatorServer, World
from pipelines.emulator.world import WINDOW
from pipelines.recoup.client import RetryPolicy
from pipelines.recoup.errors import AuthError
from pipelines.sync import run_sync
from tests.conftest import FAST_RETRY, NOW, sync_env

Query = Callable[..., list[tuple]]


def _visible_ids(world: World) -> set[str]:
    return {r["id"] for account in world.account_ids for r in world.visible(account, 100)}


@pytest.mark.slow
def test_first_sync_loads_every_visible_run_with_its_values(world: World, sync, query: Query) -> None:
    summary = sync()
    assert summary.exit_code == 0
    expected = _visible_ids(world)
    assert {r[0] for r in query("select run_id from analytics.runs")} == expected
    assert sum(r.new for r in summary.results) == len(expected)

    run = next(r for r in world.runs.values() if r["id"] in expected and r["status"] == "FAILED")
    row = query(
        "select account_id, status, status_group, task_identifier, env_name, cost_cents, base_cost_cents,"
        " total_cost_usd, attempt_count, error_message, created_at from analytics.runs where run_id = ?",
        run["id"],
    )[0]
    account = run["tags"][0].removeprefix("account:")
    assert row[:5] == (account, "FAILED", "failed", run["taskIdentifier"], run["env"]["name"])
    assert float(row[5]) == pytest.approx(run["costInCents"]) and float(row[6]) == pytest.approx(
        run["baseCostInCents"]
    )
    assert float(row[7]) == pytest.approx((run["costInCents"] + run["baseCostInCents"]) / 100)
    assert row[8] == len(run["attempts"]) and row[9] == run["error"]["message"]
    assert row[10] == run["createdAt"]
    tags = [
        t[0] for t in query("select tag from analytics.run_tags where run_id = ? order by tag", run["id"])
    ]
    assert tags == sorted(run["tags"])
    attempts = query(
        "select attempt_number, attempt_id, status from analytics.run_attempts where run_id = ? order by 1",
        run["id"],
    )
    assert attempts == [(i + 1, a["id"], a["status"]) for i, a in enumerate(run["attempts"])]


def test_second_sync_adds_no_duplicates_and_writes_nothing(world: World, sync, query: Query) -> None:
    sync()
    loads = query("select count(*) from raw._dlt_loads")[0][0]
    before = query("select count(*) from analytics.runs")[0][0]
    summary = sync()
    assert summary.exit_code == 0
    assert sum(r.new + len(r.updated) + r.refreshed for r in summary.results) == 0
    assert world.requests(mode="retrieve") == [], "runs still listed are not fetched one by one"
    assert query("select count(*), count(distinct run_id) from analytics.runs")[0] == (before, before)
    assert query("select count(*) from raw._dlt_loads")[0][0] == loads, "an unchanged sync loads nothing"
    assert query("select count(*) from raw.runs")[0][0] == before
    assert "3 pages unchanged" in summary.lines()[-1], "pages the same to the byte are not read again"
    assert query("select runs_seen from analytics.sync_log where synced_at = (select max(synced_at) from"
                 " analytics.sync_log) order by account_id") == [
        (len(world.visible(account, 100)),) for account in sorted(world.account_ids)
    ]  # fmt: skip


def _one_account_with_an_executing_run() -> tuple[World, str, dict]:
    world = World(accounts=1, runs_per_account=10, seed=2, now=NOW)
    account = world.account_ids[0]
    return (
        world,
        account,
        world.add_run(account, created_at=world.now - timedelta(minutes=30), status="EXECUTING"),
    )


def _push_out_of_the_page(world: World, account: str) -> None:
    for _ in range(100):
        world.add_run(account, created_at=world.now - timedelta(minutes=1))


@pytest.mark.slow
def test_an_in_flight_run_past_the_window_is_followed_while_the_page_stays_the_same(db_path: Path) -> None:
    world, account, run = _one_account_with_an_executing_run()
    with EmulatorServer(world) as server:
        settings = load_settings(sync_env(world, server, db_path))
        run_sync(settings, retry=FAST_RETRY)
        _push_out_of_the_page(world, account)
        run_sync(settings, retry=FAST_RETRY)  # the run is out of the page now, still executing
        still = run_sync(settings, retry=FAST_RETRY).results[0]
        world.complete_run(run["id"])
        done = run_sync(settings, retry=FAST_RETRY).results[0]
    assert still.unchanged_page and still.refreshed == 1 and not still.updated
    assert done.unchanged_page and done.refreshed == 1 and done.updated == {run["id"]}
    with duckdb.connect(str(db_path), read_only=True) as con:
        assert con.execute("select status from analytics.runs where run_id = ?", [run["id"]]).fetchall() == [
            ("COMPLETED",)
        ]


@pytest.mark.slow
def test_runs_deleted_from_the_warehouse_come_back_though_the_page_is_the_same(
    world: World, sync, db_path: Path, query: Query
) -> None:
    sync()
    victim = query("select run_id from analytics.runs order by run_id limit 1")[0][0]
    with duckdb.connect(str(db_path)) as con:  # an operator removes a run to have it read again
        con.execute("delete from raw.runs where id = ?", [victim])
    summary = sync()
    assert "2 pages unchanged" in summary.lines()[-1]
    assert sum(r.new for r in summary.results) == 1
    assert query("select count(*) from analytics.runs where run_id = ?", victim) == [(1,)]


@pytest.mark.slow
def test_pages_read_under_other_options_are_read_again(world: World, sync) -> None:
    world.profile = "observed"  # list items without attempts: details need a fetch per run
    sync(RECOUP_DETAILS="none")
    assert world.requests(mode="retrieve") == []
    summary = sync()  # details=all: the same pages now ask for details
    assert "0 pages unchanged" in summary.lines()[-1]
    assert len(world.requests(mode="retrieve")) > 0
    assert "3 pages unchanged" in sync().lines()[-1]


@pytest.mark.slow
def test_a_page_with_a_rejected_run_is_read_and_reported_at_every_sync(world: World, sync) -> None:
    bad = world.account_ids[0]
    world.extra_items[bad] = [{"id": "run_bad", "createdAt": "yesterday"}]
    sync()
    summary = sync()
    assert summary.exit_code == 1
    assert {r.account: r.unchanged_page for r in summary.results} == {
        account: account != bad for account in world.account_ids
    }, "the others' pages are skipped, the bad one is read again"
    assert "run_bad" in summary.failed[0].summary_error()


@pytest.mark.slow
def test_changed_runs_are_updated_and_a_dropped_tag_is_gone(world: World, sync, query: Query) -> None:
    account = world.account_ids[0]
    run = world.add_run(account, created_at=world.now - timedelta(minutes=3), status="EXECUTING")
    world.change_run(run["id"], tags=[f"account:{account}", "keep:me", "drop:me"])
    sync()
    world.advance(minutes=1)
    world.change_run(run["id"], status="COMPLETED")
    world.change_run(run["id"], costInCents=42.125, tags=[f"account:{account}", "keep:me"])
    summary = sync()
    assert sum(len(r.updated) for r in summary.results) == 1
    assert query("select status, cost_cents from analytics.runs where run_id = ?", run["id"]) == [
        ("COMPLETED", 42.125)
    ]
    tags = {t[0] for t in query("select tag from analytics.run_tags where run_id = ?", run["id"])}
    assert tags == {f"account:{account}", "keep:me"}
    assert query("select count(*) from raw.runs__tags where value = 'drop:me'") == [(0,)]


@pytest.mark.slow
def test_a_run_whose_tags_all_go_away_keeps_none_of_them(world: World, sync, query: Query) -> None:
    account = world.account_ids[0]
    run = world.add_run(account, created_at=world.now - timedelta(minutes=3), status="EXECUTING")
    world.change_run(run["id"], tags=["drop:me", "and:me"])
    sync()
    world.advance(minutes=1)
    world.change_run(run["id"], tags=[])
    sync()
    assert query("select count(*) from analytics.run_tags where run_id = ?", run["id"]) == [(0,)]
    assert query("select count(*) from raw.runs__tags where run_id = ?", run["id"]) == [(0,)], "no dead rows"


@pytest.mark.slow
def test_an_account_whose_newest_run_is_older_still_gets_new_runs(world: World, sync, query: Query) -> None:
    """The per-account cursor trap: one global high-water mark would skip B's new run."""
    a, b = world.account_ids[:2]
    world.add_run(a, created_at=world.now - timedelta(seconds=5))
    for rid in list(world.by_account[b]):
        if world.runs[rid]["createdAt"] > world.now - timedelta(days=3):
            world.runs[rid]["createdAt"] -= timedelta(days=3)
    sync()
    late = world.add_run(b, created_at=world.now - timedelta(days=3, hours=1))
    summary = sync()
    assert query("select account_id from analytics.runs where run_id = ?", late["id"]) == [(b,)]
    assert {r.account: r.new for r in summary.results}[b] == 1


def test_in_flight_run_past_the_100_run_window_is_followed_to_its_end(db_path: Path) -> None:
    world, account, run = _one_account_with_an_executing_run()
    with EmulatorServer(world) as server:
        settings = load_settings(sync_env(world, server, db_path))
        run_sync(settings, retry=FAST_RETRY)
        world.advance(minutes=10)
        _push_out_of_the_page(world, account)
        world.complete_run(run["id"])
        assert run["id"] not in {r["id"] for r in world.visible(account, 100)}
        summary = run_sync(settings, retry=FAST_RETRY)
    result = summary.results[0]
    assert result.refreshed == 1 and run["id"] in result.updated
    with duckdb.connect(str(db_path), read_only=True) as con:
        assert con.execute(
            "select status, status_group, env_name from analytics.runs where run_id = ?", [run["id"]]
        ).fetchall() == [("COMPLETED", "succeeded", run["env"]["name"])], (
            "env from the list outlives the refresh"
        )
        log = con.execute(
            "select runs_updated, runs_seen from analytics.sync_log order by synced_at desc limit 1"
        ).fetchall()
    assert log[0][0] >= 1 and log[0][1] == 101


def test_errors_and_attempt_counts_from_details_survive_a_later_list_answer_without_them(
    world: World, sync, query: Query
) -> None:
    world.profile = "observed"  # list items carry no error and no attempts; retrieve answers do
    run = world.add_run(world.account_ids[0], created_at=world.now - timedelta(minutes=1), status="FAILED")
    assert sync().exit_code == 0
    detailed = query("select error_message, attempt_count from analytics.runs where run_id = ?", run["id"])
    assert detailed == [(run["error"]["message"], len(run["attempts"]))]
    world.advance(minutes=1)
    world.change_run(run["id"], costInCents=run["costInCents"] + 1)
    retrieves = len(world.requests(mode="retrieve"))
    summary = sync(RECOUP_DETAILS="none")  # the new list answer alone, no details fetch after it
    updated = {r.account: r.updated for r in summary.results}
    assert summary.exit_code == 0 and updated[world.account_ids[0]] == {run["id"]}
    assert len(world.requests(mode="retrieve")) == retrieves
    after = query(
        "select cost_cents::double, error_message, attempt_count from analytics.runs where run_id = ?",
        run["id"],
    )
    assert after == [(pytest.approx(run["costInCents"]), *detailed[0])]


@pytest.mark.slow
def test_a_run_the_api_forgot_keeps_its_last_state_and_is_counted(world: World, sync, query: Query) -> None:
    account = world.account_ids[0]
    run = world.add_run(account, created_at=world.now - timedelta(minutes=5), status="QUEUED")
    sync()
    del world.runs[run["id"]]
    world.by_account[account].remove(run["id"])
    summary = sync()
    assert {r.account: r.lost for r in summary.results}[account] == [run["id"]]
    assert query("select status from analytics.runs where run_id = ?", run["id"]) == [("QUEUED",)]
    assert "1 unknown to the API" in summary.lines()[-1]
    summary = sync()
    assert {r.account: r.lost for r in summary.results}[account] == [], "asked about only once"


def test_a_full_first_list_is_a_first_sync_and_more_than_100_new_runs_a_possible_gap(db_path: Path) -> None:
    world = World(accounts=2, runs_per_account=150, seed=4, now=NOW)
    busy, quiet = world.account_ids
    world.by_account[quiet] = world.by_account[quiet][:20]
    with EmulatorServer(world) as server:
        settings = load_settings(sync_env(world, server, db_path))
        initial = run_sync(settings, retry=FAST_RETRY)
        first = {r.account: (r.first_sync, r.possible_gap) for r in initial.results}
        assert first == {busy: (True, False), quiet: (False, False)}, "a first full list is no alarm"
        assert any(f"account {busy}: first sync: history before 20" in line for line in initial.lines())
        assert not any("possible gap" in line for line in initial.lines())
        for _ in range(5):
            world.add_run(busy, created_at=world.now - timedelta(seconds=30))
        second = {r.account: r.possible_gap for r in run_sync(settings, retry=FAST_RETRY).results}
        assert second == {busy: False, quiet: False}
        world.advance(minutes=5)
        for _ in range(120):
            world.add_run(busy, created_at=world.now - timedelta(seconds=30))
        third = run_sync(settings, retry=FAST_RETRY)
    assert {r.account: r.possible_gap for r in third.results} == {busy: True, quiet: False}
    assert any("possible gap" in line and busy in line for line in third.lines())
    with duckdb.connect(str(db_path), read_only=True) as con:
        logged = con.execute(
            "select possible_gap, first_sync from analytics.sync_log where account_id = ? order by synced_at",
            [busy],
        ).fetchall()
    assert logged == [(False, True), (False, False), (True, False)]


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind", ["upstream_429", "500", "502", "503", "504", "truncated", "drop", "html", "not_json"]
)
def test_each_fault_kind_is_retried_to_success(world: World, sync, query: Query, kind: str) -> None:
    world.inject(kind, count=2, mode="list", account=world.account_ids[1])
    summary = sync()
    assert summary.exit_code == 0, summary.lines()
    assert summary.retries == 2
    assert {r[0] for r in query("select run_id from analytics.runs")} == _visible_ids(world)


class _ClockedWorld(World):
    """A World whose request log also notes when each answer went out (monotonic seconds)."""

    def record(self, entry: dict[str, Any]) -> None:
        entry["at"] = time.monotonic()
        super().record(entry)


@pytest.mark.slow
def test_retry_after_is_honoured(db_path: Path) -> None:
    world = _ClockedWorld(accounts=1, runs_per_account=5, seed=11, now=NOW)
    world.inject("503", retry_after=0.6, mode="list")
    # Our own backoff would wait a millisecond: only the server's Retry-After explains a longer wait.
    patient = RetryPolicy(attempts=4, max_seconds=20, backoff=0.001, max_wait=10)
    with EmulatorServer(world) as server:
        summary = run_sync(load_settings(sync_env(world, server, db_path)), retry=patient)
    assert summary.exit_code == 0 and summary.retries == 1
    refused, answered = world.requests(mode="list")
    assert (refused["status"], answered["status"]) == ("503", 200)
    waited = answered["at"] - refused["at"]
    assert 0.55 <= waited < 3, f"asked to wait 0.6 s, the client waited {waited:.2f} s"


@pytest.mark.slow
def test_a_slow_answer_is_waited_for(world: World, sync, query: Query) -> None:
    """An answer slower than httpx's default 5 s read timeout: a client that kept that default
    would give up and retry; ours waits up to RECOUP_REQUEST_TIMEOUT (60 s)."""
    slow = world.account_ids[0]
    world.inject("delay", delay=6, mode="list", account=slow)
    summary = sync()
    assert summary.exit_code == 0, summary.lines()
    assert "3/3 accounts ok, 0 failed" in summary.lines()[-1] and "0 retries" in summary.lines()[-1]
    assert len(world.requests(mode="list", account=slow)) == 1, "asked once, answered once"
    assert {r[0] for r in query("select run_id from analytics.runs")} == _visible_ids(world)


def test_persistent_failure_of_one_account_leaves_the_others_loaded(world: World, sync, query: Query) -> None:
    bad = world.account_ids[2]
    world.inject("upstream_429", count=1000, mode="list", account=bad)
    summary = sync()
    assert summary.exit_code == 1
    assert [r.account for r in summary.failed] == [bad]
    loaded = {r[0] for r in query("select distinct account_id from analytics.runs")}
    assert loaded == set(world.account_ids[:2])
    log = dict(query("select account_id, error from analytics.sync_log"))
    assert "Trigger.dev API error: 429" in log[bad] and "gave up after 4 tries" in log[bad]
    assert log[world.account_ids[0]] is None
    assert any(line.startswith(f"account {bad}: FAILED") for line in summary.lines())


@pytest.mark.slow
def test_forbidden_account_fails_alone_and_is_not_retried(
    world: World, emulator: EmulatorServer, db_path: Path, query: Query
) -> None:
    key = world.add_key(world.account_ids[0], readable=[world.account_ids[1]])
    env = sync_env(world, emulator, db_path, RECOUP_API_KEY=key)
    summary = run_sync(load_settings(env), retry=FAST_RETRY)
    assert summary.exit_code == 1
    assert [r.account for r in summary.failed] == [world.account_ids[2]]
    assert "access denied (403)" in summary.failed[0].error
    assert len(world.requests(account=world.account_ids[2])) == 1
    assert query("select count(distinct account_id) from analytics.runs") == [(2,)]


def test_a_refused_key_stops_the_sync_and_publishes_nothing(
    world: World, emulator: EmulatorServer, db_path: Path
) -> None:
    env = sync_env(world, emulator, db_path, RECOUP_API_KEY="recoup_sk_revoked")
    with pytest.raises(AuthError, match="401"):
        run_sync(load_settings(env), retry=FAST_RETRY)
    assert not db_path.exists()
    assert len(world.requests()) <= 8, "no retries on 401"


@pytest.mark.slow
def test_observed_profile_legacy_statuses_attempt_counts_and_errors(world: World, sync, query: Query) -> None:
    world.profile = "observed"
    frozen = world.add_run(world.account_ids[0], created_at=world.now - timedelta(minutes=1), status="FROZEN")
    summary = sync()
    assert summary.exit_code == 0
    assert query("select status, status_group from analytics.runs where run_id = ?", frozen["id"]) == [
        ("FROZEN", "waiting")
    ]
    failed = [r for r in world.runs.values() if r["id"] in _visible_ids(world) and r["status"] == "FAILED"]
    for run in failed:
        row = query("select attempt_count, error_message from analytics.runs where run_id = ?", run["id"])
        assert row == [(len(run["attempts"]), run["error"]["message"])]
    assert query("select count(*) from analytics.run_attempts") == [(0,)], (
        "observed answers carry no attempts"
    )
    retrieves = len(world.requests(mode="retrieve"))
    terminal = query(
        "select count(*) from analytics.runs where status_group in ('succeeded','failed','canceled','expired')"
    )
    assert retrieves == terminal[0][0], "each finished run is detailed once"
    sync()
    assert len(world.requests(mode="retrieve")) == retrieves, "never again while unchanged"


@pytest.mark.slow
def test_details_failed_only_and_none(world: World, sync, query: Query) -> None:
    world.profile = "observed"
    sync(RECOUP_DETAILS="failed")
    failed = query("select count(*) from analytics.runs where status_group = 'failed'")[0][0]
    assert len(world.requests(mode="retrieve")) == failed
    assert query(
        "select count(*) from analytics.runs where status_group = 'succeeded' and attempt_count is not null"
    ) == [(0,)]


@pytest.mark.slow
def test_documented_items_need_no_details_fetch(world: World, sync) -> None:
    sync()
    assert world.requests(mode="retrieve") == []


@pytest.mark.slow
def test_own_account_mode_lists_without_account_id(
    world: World, emulator: EmulatorServer, db_path: Path, query: Query
) -> None:
    key = world.add_key(world.account_ids[1])
    env = sync_env(world, emulator, db_path, RECOUP_API_KEY=key, RECOUP_ACCOUNTS="")
    summary = run_sync(load_settings(env), retry=FAST_RETRY)
    assert [r.account for r in summary.results] == [world.account_ids[1]]
    assert world.requests(path="/api/accounts/id")
    assert all("account_id" not in e["query"] for e in world.requests(mode="list"))
    assert query("select distinct account_id from analytics.runs") == [(world.account_ids[1],)]


@pytest.mark.slow
def test_moving_the_window_never_deletes_stored_runs(world: World, sync, query: Query) -> None:
    sync()
    before = query("select count(*) from analytics.runs")[0][0]
    world.advance(days=WINDOW.days + 1)
    sync()
    assert query("select count(*) from analytics.runs")[0][0] == before


@pytest.mark.slow
def test_wiping_the_working_state_loses_nothing(world: World, sync, db_path: Path, query: Query) -> None:
    """Everything beside the warehouse file is working state a user may delete (a clean-up,
    a new machine with only the file): the next sync continues where the last one stopped."""
    sync()
    stored = query("select count(*) from analytics.runs")[0][0]
    wiped = [path for path in db_path.parent.iterdir() if path != db_path]
    assert wiped, "a sync leaves something beside the warehouse"
    for path in wiped:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    busy = world.account_ids[0]
    new_run = world.add_run(busy, created_at=world.now - timedelta(seconds=5))
    summary = sync()
    assert summary.exit_code == 0, summary.lines()
    assert {r.account: r.new for r in summary.results} == {a: int(a == busy) for a in world.account_ids}
    assert "2 pages unchanged" in summary.lines()[-1], "what the last sync read is still known"
    assert query("select count(*), count(distinct run_id) from analytics.runs")[0] == (stored + 1, stored + 1)
    assert query("select account_id from analytics.runs where run_id = ?", new_run["id"]) == [(busy,)]


# -- change detection and the column path, on pages that change at every sync --------------------


def test_a_run_listed_legacy_and_retrieved_current_is_not_updated_when_every_page_changes(
    world: World, sync, query: Query
) -> None:
    """INTERRUPTED in a list is FAILED when retrieved: the same state, so no update is counted.

    One new run per account makes every page change, so change detection compares each stored
    run with its list item (an unchanged page would skip it).
    """
    world.profile = "observed"
    for account in world.account_ids:
        world.add_run(account, created_at=world.now - timedelta(minutes=1), status="INTERRUPTED")
    assert sync().exit_code == 0
    listed = {r["id"]: r["status"] for a in world.account_ids for r in world.visible(a, 100)}
    stored = dict(query("select run_id, status from analytics.runs"))
    renamed = {run_id for run_id, status in listed.items() if stored[run_id] != status}
    assert {stored[run_id] for run_id in renamed} >= {"FAILED"}, "the warehouse holds the retrieved name"
    for round_ in range(2):
        for account in world.account_ids:
            world.add_run(account, created_at=world.now - timedelta(seconds=10 + round_))
        summary = sync()
        assert summary.exit_code == 0
        assert [r.unchanged_page for r in summary.results] == [False] * len(world.account_ids)
        assert {r.account: (r.new, sorted(r.updated)) for r in summary.results} == {
            account: (1, []) for account in world.account_ids
        }
    logged = query("select runs_new, runs_updated from analytics.sync_log order by synced_at desc limit 3")
    assert logged == [(1, 0)] * len(world.account_ids)


@pytest.mark.parametrize("profile", ["documented", "observed"])
def test_a_sync_of_emulator_pages_reads_every_page_column_wise(
    world: World, sync, caplog: pytest.LogCaptureFixture, profile: str
) -> None:
    world.profile = profile
    caplog.set_level(logging.DEBUG, logger="recoup")
    assert sync().exit_code == 0
    for account in world.account_ids:
        world.add_run(account, created_at=world.now - timedelta(seconds=10))
    assert sync().exit_code == 0
    messages = [record.getMessage() for record in caplog.records]
    column_wise = [m for m in messages if m.endswith("is read column-wise")]
    run_by_run = [m for m in messages if m.endswith("is read run by run")]
    assert run_by_run == [], run_by_run[:3]
    assert len(column_wise) == 2 * len(world.account_ids), "every changed page of both syncs"
