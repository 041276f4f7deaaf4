"""Nothing lost, nothing blocked: readers, concurrent syncs, kills at any moment, bad data."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import httpx
import orjson
import pytest

from pipelines.emulator import EmulatorServer, World
from pipelines.emulator.render import to_list_item
from pipelines.recoup.client import RecoupClient
from pipelines.recoup.errors import AccessDenied, ApiError
from tests.conftest import (
    CONSISTENT,
    FAST_RETRY,
    NOW,
    ROOT,
    is_consistent,
    json_lines,
    run_cli,
    sync_env,
    wait_until,
)


def _sync_process(env: dict[str, str]) -> subprocess.Popen[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RECOUP_")}
    clean.update(env)
    return subprocess.Popen([sys.executable, "-m", "pipelines.recoup_pipeline"], cwd=ROOT, env=clean,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


# -- 1. analysts and cron never block each other -------------------------------------------------


@pytest.mark.slow
def test_a_reader_holding_the_file_through_a_sync_never_fails_it(world: World, sync, db_path: Path) -> None:
    sync()
    reader = duckdb.connect(str(db_path), read_only=True)
    before = reader.execute("select count(*) from analytics.runs").fetchone()[0]
    world.add_run(world.account_ids[0], created_at=world.now - timedelta(seconds=10))
    summary = sync()
    assert summary.exit_code == 0
    assert reader.execute("select count(*) from analytics.runs").fetchone()[0] == before, (
        "the reader's snapshot holds"
    )
    reader.close()
    fresh = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import duckdb
        print(duckdb.connect({str(db_path)!r}, read_only=True).execute('select count(*) from analytics.runs').fetchone()[0])
    """)], capture_output=True, text=True, check=True)  # fmt: skip
    assert int(fresh.stdout) == before + 1


def test_a_publish_puts_a_new_file_at_the_path_and_a_reader_of_the_old_one_reads_it_whole(
    world: World, sync, db_path: Path, tmp_path: Path
) -> None:
    """Publishing renames a new file over the path: whoever opened the old one (a backup, `cp`,
    an analyst's tool reading pages) keeps reading the old complete warehouse, never a mix.
    Copying the new file over the old one in place would show them the new bytes half written."""
    sync()
    with duckdb.connect(str(db_path), read_only=True) as con:
        before = con.execute(CONSISTENT).fetchone()
    inode = os.stat(db_path).st_ino
    old_copy = tmp_path / "read-through-the-old-handle.duckdb"
    with open(db_path, "rb") as old:  # opened before the publish, read after it
        world.add_run(world.account_ids[0], created_at=world.now - timedelta(seconds=10))
        assert sync().exit_code == 0
        assert os.stat(db_path).st_ino != inode, "the published path names a new file"
        with old_copy.open("wb") as sink:
            shutil.copyfileobj(old, sink)
    with duckdb.connect(str(old_copy), read_only=True) as con:
        assert con.execute(CONSISTENT).fetchone() == before, "the old handle reads the old warehouse whole"
    with duckdb.connect(str(db_path), read_only=True) as con:
        now = con.execute(CONSISTENT).fetchone()
    assert is_consistent(now) and now[0] == before[0] + 1


# DuckDB opens a database file three times by path while connecting; an open that straddles
# the publishing rename can fail with an IO error (measured: 2 of 1,565 opens while a file was
# renamed over the path 766 times in 40 s). Like any analyst's tool, the reader then opens again; what it must never
# get is an answer from an incomplete warehouse.
READER = textwrap.dedent("""
    import json, os, sys, time, duckdb
    db, stop, until = sys.argv[1], sys.argv[2], time.monotonic() + 300
    while not os.path.exists(stop) and time.monotonic() < until:
        for attempt in range(3):
            try:
                with duckdb.connect(db, read_only=True) as con:
                    print(json.dumps(con.execute(sys.argv[3]).fetchone()), flush=True)
                break
            except duckdb.IOException as exc:
                if attempt == 2:
                    print(json.dumps({"error": str(exc)[:200]}), flush=True)
                time.sleep(0.05)
        time.sleep(0.01)
""")


@pytest.mark.slow
def test_readers_polling_during_syncs_always_see_a_complete_state(
    world: World, emulator: EmulatorServer, db_path: Path
) -> None:
    env = sync_env(world, emulator, db_path)
    assert run_cli(env).returncode == 0
    stop = db_path.parent / "stop-readers"
    outputs = [db_path.parent / f"reader-{i}.jsonl" for i in range(3)]
    readers = []
    for output in outputs:
        with output.open("w") as sink:
            readers.append(subprocess.Popen([sys.executable, "-c", READER, str(db_path), str(stop), CONSISTENT],
                                            stdout=sink))  # fmt: skip
    try:
        for round_ in range(3):
            for account in world.account_ids:
                world.add_run(account, created_at=world.now - timedelta(seconds=round_ + 1))
            done = run_cli(env)
            assert done.returncode == 0, done.stderr
        with duckdb.connect(str(db_path), read_only=True) as con:
            final = con.execute("select count(*) from analytics.runs").fetchone()[0]

        def saw_the_last_sync(output: Path) -> bool:
            return any(isinstance(a, list) and a[0] == final for a in json_lines(output))

        wait_until(lambda: all(saw_the_last_sync(o) for o in outputs), "every reader to see the last sync")
    finally:
        stop.touch()
        for reader in readers:
            reader.wait(timeout=60)
    answers = [answer for output in outputs for answer in json_lines(output)]
    assert len(answers) > 30
    assert not [a for a in answers if isinstance(a, dict)], "every query was answered"
    incomplete = [a for a in answers if not is_consistent(tuple(a))]
    assert incomplete == [], incomplete[:3]
    assert len({a[0] for a in answers}) >= 2, "the readers saw the syncs land"


# -- 2. one sync at a time ------------------------------------------------------------------------

HOLD_LOCK = textwrap.dedent("""
    import filelock, sys, time
    lock = filelock.FileLock(sys.argv[1])
    lock.acquire()
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
    lock.release()
    print(time.time(), flush=True)
""")


@pytest.mark.slow
def test_a_second_sync_waits_for_the_lock_when_asked(
    world: World, emulator: EmulatorServer, db_path: Path
) -> None:
    db_path.parent.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(db_path.parent / ".recoup.duckdb.lock"), "3"],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert holder.stdout.readline().strip() == "held"
    done = run_cli(sync_env(world, emulator, db_path, RECOUP_LOCK_WAIT="30"))
    assert done.returncode == 0, done.stderr
    released = float(holder.stdout.readline())
    holder.wait()
    assert db_path.stat().st_mtime >= released, "published only after the other sync let go"


@pytest.mark.slow
def test_a_lock_left_by_a_killed_process_is_recovered(
    world: World, emulator: EmulatorServer, db_path: Path
) -> None:
    db_path.parent.mkdir(parents=True)
    lock = db_path.parent / ".recoup.duckdb.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(lock), "600"], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"
    assert run_cli(sync_env(world, emulator, db_path)).returncode == 75
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert lock.exists(), "the dead holder's lock file is still there"
    assert run_cli(sync_env(world, emulator, db_path)).returncode == 0


@pytest.mark.slow
def test_two_syncs_started_at_once_leave_one_clean_warehouse(
    world: World, emulator: EmulatorServer, db_path: Path
) -> None:
    env = sync_env(world, emulator, db_path)
    first, second = _sync_process(env), _sync_process(env)
    codes = sorted([first.wait(timeout=120), second.wait(timeout=120)])
    assert codes in ([0, 0], [0, 75])
    with duckdb.connect(str(db_path), read_only=True) as con:
        assert is_consistent(con.execute(CONSISTENT).fetchone())


# -- 3. crash safety ------------------------------------------------------------------------------

PHASES = ("syncing", "accounts", "normalizing", "loading into", "building models", "publishing")


@pytest.mark.slow
def test_sigkill_at_any_phase_loses_and_duplicates_nothing(db_path: Path) -> None:
    world = World(accounts=6, runs_per_account=60, seed=21, now=NOW)
    world.latency = 0.02
    rng = random.Random(5)
    kills = 0
    with EmulatorServer(world) as server:
        env = sync_env(world, server, db_path)
        for trial in range(12):
            for account in world.account_ids:  # upstream moves on between trials
                world.add_run(account, created_at=world.now - timedelta(seconds=trial + 1))
                in_flight = world.in_flight(account)
                if in_flight:
                    world.complete_run(in_flight[0])
            phase = PHASES[trial % len(PHASES)]
            process = _sync_process(env)
            for line in process.stderr:
                if phase in line:
                    time.sleep(rng.uniform(0, 0.05))
                    process.send_signal(signal.SIGKILL)
                    kills += 1
                    break
            process.wait(timeout=120)
            process.stdout.close()
            process.stderr.close()
        done = run_cli(env)
        assert done.returncode == 0, done.stderr
    assert kills >= 10
    expected = {r["id"]: r for a in world.account_ids for r in world.visible(a, 100)}
    with duckdb.connect(str(db_path), read_only=True) as con:
        rows = con.execute("select run_id, status, updated_at from analytics.runs").fetchall()
        assert con.execute("select count(*), count(distinct id) from raw.runs").fetchone()[0] == len(rows)
    stored = {run_id: (status, updated) for run_id, status, updated in rows}
    assert len(stored) == len(rows), "no run twice"
    assert set(expected) <= set(stored), "no run lost"
    for run_id, run in expected.items():
        assert stored[run_id][1] == run["updatedAt"], run_id


# -- 4. bad data from the API --------------------------------------------------------------------


@pytest.mark.slow
def test_bad_runs_are_rejected_by_name_and_the_rest_of_the_page_loads(world: World, sync, query) -> None:
    account = world.account_ids[0]
    good = world.visible(account, 1)[0]
    base = {"status": "COMPLETED", "taskIdentifier": "t", "updatedAt": "2026-11-20T10:00:00.000Z",
            "tags": [f"account:{account}"], "costInCents": 1.5, "baseCostInCents": 0}  # fmt: skip
    world.extra_items[account] = [
        {**base, "createdAt": "2026-11-20T09:00:00.000Z"},  # no id
        {**base, "id": "run_nocreated"},
        {**base, "id": "run_badcost", "createdAt": "2026-11-20T09:00:00.000Z", "costInCents": "lots"},
        {**base, "id": "run_badtags", "createdAt": "2026-11-20T09:00:00.000Z", "tags": "a,b"},
        {**base, "id": "run_baddate", "createdAt": "yesterday"},
        {**base, "id": "run_unknown", "createdAt": "2026-11-20T09:00:00.000Z", "status": "HIBERNATING",
         "brandNewField": {"x": [1, 2]}},
        {**base, "id": "run_offset", "createdAt": "2026-11-20T11:00:00.000+02:00", "updatedAt": "2026-11-20T04:30:00-05:00"},
        {**base, "id": "run_huge", "createdAt": "2026-11-20T09:00:00.000Z", "metadata": {"blob": "x" * 2_000_000}},
        {**base, "id": "run_twice", "createdAt": "2026-11-20T09:00:00.000Z", "updatedAt": "2026-11-20T09:00:00.000Z"},
        {**base, "id": "run_twice", "createdAt": "2026-11-20T09:00:00.000Z", "updatedAt": "2026-11-20T09:30:00.000Z"},
        "not an object",
    ]  # fmt: skip
    summary = sync()
    assert summary.exit_code == 1
    log = dict(query("select account_id, error from analytics.sync_log"))
    rejected = [
        "rejected run has no id", "rejected run run_nocreated: createdAt is missing",
        "rejected run run_badcost: costInCents is not a number", "rejected run run_badtags: tags is not a list of strings",
        "rejected run run_baddate: createdAt is not an ISO-8601 date: 'yesterday'", "rejected run is not an object",
    ]  # fmt: skip
    assert sorted(log[account].split("; ")) == sorted(rejected), "every rejected run is named in sync_log"
    result = next(r for r in summary.results if r.account == account)
    assert sorted(result.problems) == sorted(rejected)
    assert any(line.endswith("(and 5 more)") for line in summary.lines()), "the summary stays one line"
    assert query("select status, status_group from analytics.runs where run_id = 'run_unknown'") == [
        ("HIBERNATING", "unknown")
    ]
    assert query("select extra::varchar from raw.runs where id = 'run_unknown'") == [
        ('{"brandNewField":{"x":[1,2]}}',)
    ]
    assert query("select created_at = timestamptz '2026-11-20 09:00:00+00', updated_at = timestamptz "
                 "'2026-11-20 09:30:00+00' from analytics.runs where run_id = 'run_offset'") == [(True, True)]  # fmt: skip
    assert query("select length(metadata::varchar) > 2_000_000 from raw.runs where id = 'run_huge'") == [
        (True,)
    ]
    assert query("select count(*), max(updated_at) from analytics.runs where run_id = 'run_twice'") == [
        (1, query("select timestamptz '2026-11-20 09:30:00+00'")[0][0])
    ]
    assert query("select count(*) from analytics.runs where run_id = ?", good["id"]) == [(1,)]


@pytest.mark.slow
def test_a_run_listed_by_a_second_account_stays_with_the_first(world: World, sync, query) -> None:
    a, b = world.account_ids[:2]
    run = world.visible(a, 1)[0]
    sync()
    world.extra_items[b] = [
        orjson.loads(orjson.dumps(to_list_item(run, world.profile)))
    ]  # the API leaks it into b
    leaked = sync()
    assert query("select account_id, count(*) over () from analytics.runs where run_id = ?", run["id"]) == [
        (a, 1)
    ]
    assert query(
        "select runs_foreign from analytics.sync_log where account_id = ? order by synced_at desc limit 1", b
    ) == [(1,)]
    assert any(f"account {b}: 1 listed run(s) belong to another account" in line for line in leaked.lines())
    del world.extra_items[b]
    after = {r.account: r.unchanged_page for r in sync().results}
    assert after[a] is False, "the owner's page is read in full again"
    assert query("select account_id from analytics.runs where run_id = ?", run["id"]) == [(a,)]


@pytest.mark.slow
def test_one_run_dated_in_the_future_does_not_make_every_stored_run_new(world: World, sync, query) -> None:
    """The index of known runs is measured back from the newest run: a wrong clock must not move it."""
    a = world.account_ids[0]
    sync()
    item = orjson.loads(orjson.dumps(to_list_item(world.visible(a, 1)[0], world.profile)))
    item["id"] = "run_from_the_future"
    # ahead of the emulator's clock and of the sync's (the wall clock stamps each answer)
    ahead = max(world.now, datetime.now(UTC)) + timedelta(days=16)
    item["createdAt"] = item["updatedAt"] = ahead.isoformat().replace("+00:00", "Z")
    world.extra_items[a] = [item]
    stored = query("select count(*) from raw.runs")[0][0]
    for round_ in range(2):
        world.advance(minutes=5)
        for account in world.account_ids:
            world.add_run(account, created_at=world.now - timedelta(seconds=1), status="COMPLETED")
        summary = sync()
        new = sum(r.new for r in summary.results)
        assert new == len(world.account_ids) + (round_ == 0), f"round {round_}: {new} runs counted new"
        assert summary.followups.planned <= len(world.account_ids) + 1, "no stored run is fetched again"
    assert query("select count(*) from raw.runs")[0][0] == stored + 2 * len(world.account_ids) + 1


@pytest.mark.slow
def test_an_answer_older_than_the_stored_one_never_overwrites_it(world: World, sync, query) -> None:
    """A lagging copy of the API lists a finished run as still executing, at an earlier updatedAt."""
    sync()
    run_id, updated_at = query(
        "select run_id, updated_at from analytics.runs where status = 'COMPLETED' order by run_id limit 1"
    )[0]
    stored = query("select status, cost_cents, updated_at from analytics.runs where run_id = ?", run_id)
    world.change_run(run_id, status="EXECUTING", costInCents=0.5, updatedAt=updated_at - timedelta(minutes=3))
    summary = sync()
    assert summary.exit_code == 0 and sum(len(r.updated) for r in summary.results) == 0
    assert (
        query("select status, cost_cents, updated_at from analytics.runs where run_id = ?", run_id) == stored
    )
    world.change_run(run_id, costInCents=99.0, updatedAt=updated_at + timedelta(minutes=3))
    sync()  # a newer answer still replaces it
    assert query("select cost_cents from analytics.runs where run_id = ?", run_id)[0][0] == 99


@pytest.mark.slow
def test_a_new_run_on_two_accounts_pages_in_one_sync_is_counted_and_fetched_once(
    world: World, sync, query
) -> None:
    a, b = world.account_ids[:2]
    sync()
    world.advance(minutes=5)
    run = world.add_run(a, created_at=world.now - timedelta(seconds=1), status="FAILED")
    world.extra_items[b] = [orjson.loads(orjson.dumps(to_list_item(run, world.profile)))]
    summary = sync(RECOUP_ACCOUNTS=f"{a},{b}")
    logs = {r.account: r for r in summary.results}
    assert logs[a].new + logs[b].new == 1, "counted new once"
    assert len(logs[a].foreign) + len(logs[b].foreign) == 1, "the other page reports it as another's"
    assert [e for e in world.requests(mode="retrieve") if e["query"]["runId"] == run["id"]][1:] == []
    assert query("select count(*) from analytics.runs where run_id = ?", run["id"]) == [(1,)]


def test_an_empty_page_is_fine(world: World, sync, query) -> None:
    empty = world.add_account()
    world.grant(world.demo_key, empty)
    summary = sync(RECOUP_ACCOUNTS=empty)
    assert summary.exit_code == 0
    assert query("select runs_seen, possible_gap, error from analytics.sync_log") == [(0, False, None)]


@pytest.mark.slow
def test_a_bad_page_loses_no_stored_data(world: World, sync, query) -> None:
    sync()
    before = query("select count(*) from analytics.runs")[0][0]
    world.inject("not_json", count=100, mode="list")
    assert sync().exit_code == 1
    assert query("select count(*) from analytics.runs")[0][0] == before


# -- 6. security ----------------------------------------------------------------------------------


class _Answering(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.seen.append(dict(self.headers))  # type: ignore[attr-defined]
        body = b'{"status":"success","accountId":"acc_tls"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _TlsServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a refused handshake is the expected outcome here


@contextlib.contextmanager
def _self_signed_tls_server(folder: Path) -> Iterator[tuple[str, Path, list[dict]]]:
    """An https server on 127.0.0.1 whose certificate (valid for 127.0.0.1) no authority signed."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: no certificate to serve")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = _TlsServer(("127.0.0.1", 0), _Answering)
    server.seen = []  # type: ignore[attr-defined]
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", cert, server.seen  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


def test_tls_verification_stays_on(tmp_path: Path) -> None:
    with _self_signed_tls_server(tmp_path) as (url, cert, seen):
        with httpx.Client(verify=ssl.create_default_context(cafile=str(cert))) as trusting:
            assert trusting.get(f"{url}/api/accounts/id").status_code == 200, (
                "the server answers who trusts it"
            )
        seen.clear()
        with RecoupClient(url, "recoup_sk_never_sent", retry=FAST_RETRY) as client, \
                pytest.raises(ApiError, match=r"own account: transport error"):  # fmt: skip
            client.fetch_own_account()
    assert seen == [], "no request, so no key, reached a server with an unverified certificate"


def test_account_ids_are_url_encoded(world: World, emulator: EmulatorServer) -> None:
    odd = "a&limit=1/../x y"
    with RecoupClient(emulator.url, world.add_key(world.account_ids[1]), retry=FAST_RETRY) as client, \
            pytest.raises(AccessDenied):  # fmt: skip
        client.fetch_runs(odd)
    assert world.requests()[-1]["query"] == {"limit": "100", "account_id": odd}


@pytest.mark.parametrize("url", ["http://10.0.0.5", "http://api.recoupable.com", "http://[::2]:80"])
def test_plain_http_is_refused_beyond_loopback(url: str) -> None:
    with pytest.raises(Exception, match="refusing to send the API key over plain http"):
        RecoupClient(url, "recoup_sk_x")


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8787", "http://localhost:1", "http://[::1]:8787", "http://127.8.9.10"]
)
def test_plain_http_is_allowed_on_loopback(url: str) -> None:
    RecoupClient(url, "recoup_sk_x").close()
