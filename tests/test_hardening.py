"""Hostile conditions (issue 14): one bad run, a stale WAL, a trickling server, an echoed key or a
proxy never stops the job or leaks the key."""

from __future__ import annotations

import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, quote_plus

import duckdb
import orjson
import pytest

from pipelines import warehouse
from pipelines.config import load_settings
from pipelines.emulator import EmulatorServer, World
from pipelines.emulator.world import Key
from pipelines.recoup.client import RecoupClient
from pipelines.recoup.errors import ApiError, AuthError, ConfigError
from pipelines.sync import run_sync
from tests.conftest import FAST_RETRY, ROOT, run_cli, sync_env

Query = Callable[..., list[tuple]]
MB = 2**20


def _message(line: str) -> str:
    """A log line without its time and level (`2026-11-29T07:00:00.000Z ERROR sync: ...`)."""
    return re.sub(r"^\S+Z [A-Z]+ ", "", line)


def _visible_ids(world: World, *accounts: str) -> set[str]:
    return {r["id"] for account in accounts or world.account_ids for r in world.visible(account, 100)}


def _loaded(query: Query) -> set[str]:
    return {r[0] for r in query("select run_id from analytics.runs")}


def _run(account: str, run_id: str, created: str = "2026-11-20T09:00:00.000Z", **fields) -> dict:
    """A list item the API could send, with `fields` changed."""
    return {"id": run_id, "status": "COMPLETED", "taskIdentifier": "t", "createdAt": created,
            "updatedAt": created, "tags": [f"account:{account}"], "costInCents": 1.5,
            "baseCostInCents": 0.0, **fields}  # fmt: skip


def _payload_bytes(world: World, run_id: str) -> int:
    return len(orjson.dumps(world.runs[run_id]["payload"]))


# -- 1. a run too large to load --------------------------------------------------------------------


def test_a_run_too_large_to_load_is_rejected_by_name_with_its_size_and_the_rest_loads(
    world: World, sync, query: Query
) -> None:
    account = world.account_ids[0]
    huge = _run(account, "run_huge", error={"message": "boom", "stackTrace": "at x\n" * 1_800_000})
    world.extra_items[account] = [huge]
    summary = sync()
    assert summary.exit_code == 1
    result = next(r for r in summary.results if r.account == account)
    size = len(orjson.dumps(huge))
    assert result.problems == [
        f"rejected run run_huge: is {size:,} bytes of JSON, over the 4,194,304 a run may have (RECOUP_MAX_RUN_BYTES)"
    ]
    assert _loaded(query) == _visible_ids(world), "every other run of the page and the account loaded"


@pytest.mark.slow
def test_many_runs_with_large_metadata_load_together(db_path: Path) -> None:
    """300 runs of 200 KB metadata each: 60 MB of values DuckDB cannot spill within 64 MB."""
    world = World(accounts=3, runs_per_account=100, seed=3)
    for account in world.account_ids:
        for run in world.visible(account, 100):
            world.inflate(run["id"], "metadata", 200_000)
    with EmulatorServer(world) as server:
        summary = run_sync(load_settings(sync_env(world, server, db_path)), retry=FAST_RETRY)
    assert summary.exit_code == 0, summary.lines()
    with duckdb.connect(str(db_path), read_only=True) as con:
        sizes = con.execute("select count(*), min(length(metadata::varchar)) from raw.runs").fetchone()
    assert sizes[0] == len(_visible_ids(world)) and sizes[1] >= 199_000


@pytest.mark.slow
def test_a_20_mb_output_and_a_3_mb_metadata_are_stored_as_marks_and_their_runs_load(
    world: World, sync, query: Query
) -> None:
    account = world.account_ids[1]
    big_output, big_metadata, three_fields = [
        r["id"] for r in world.visible(account, 100) if r["status"] == "COMPLETED"
    ][:3]
    world.inflate(big_output, "output", 20 * MB)
    world.inflate(big_metadata, "metadata", 3 * MB)
    for field in ("metadata", "payload", "output"):  # each below the field limit, 4.5 MB together
        world.inflate(three_fields, field, 3 * MB // 2)
    summary = sync(RECOUP_STORE_PAYLOADS="true")
    assert summary.exit_code == 0, summary.lines()
    assert _loaded(query) == _visible_ids(world)
    stored = query(
        "select id, metadata->'_skipped', payload->'_skipped', output->'_skipped', length(payload::varchar)"
        " from raw.runs where id in (?, ?, ?)",
        big_output, big_metadata, three_fields,
    )  # fmt: skip
    mark = '{{"bytes":{},"limit":2097152}}'.format
    assert {row[0]: row[1:] for row in stored} == {
        big_output: (None, None, mark(20 * MB), _payload_bytes(world, big_output)),
        big_metadata: (mark(3 * MB), None, None, _payload_bytes(world, big_metadata)),
        three_fields: (mark(3 * MB // 2), None, None, 3 * MB // 2),  # the largest first, until it fits
    }


# -- 2. a file that cannot be published safely --------------------------------------------------

# A DuckDB session that opened the warehouse read-write and was killed before it closed.
KILLED_WRITER = textwrap.dedent("""
    import os, signal, sys, duckdb
    con = duckdb.connect(sys.argv[1])
    con.execute("create table main.scratch as select 1 as x")
    os.kill(os.getpid(), signal.SIGKILL)
""")


@pytest.mark.slow
def test_a_stale_wal_stops_the_sync_with_exit_2_and_says_what_to_do(
    world: World, emulator: EmulatorServer, db_path: Path
) -> None:
    env = sync_env(world, emulator, db_path)
    assert run_cli(env).returncode == 0
    subprocess.run([sys.executable, "-c", KILLED_WRITER, str(db_path)], check=False)
    wal = db_path.with_name("recoup.duckdb.wal")
    assert wal.exists()
    before = db_path.read_bytes()
    world.add_run(world.account_ids[0], created_at=world.now - timedelta(seconds=5))
    asked = len(world.requests())
    done = run_cli(env)
    assert done.returncode == 2
    assert len(world.requests()) == asked, "refused before anything was fetched"
    last = _message(done.stderr.strip().splitlines()[-1])
    assert last.startswith("sync: ") and "Traceback" not in done.stderr
    assert str(wal) in last and "read-write" in last and "remove recoup.duckdb.wal" in last
    assert db_path.read_bytes() == before and wal.exists(), "nothing published, the log left as it was"
    duckdb.connect(str(db_path)).close()  # what the message says: open it once read-write
    assert not wal.exists()
    assert run_cli(env).returncode == 0
    with duckdb.connect(str(db_path), read_only=True) as con:
        assert con.execute("select count(*) from analytics.runs").fetchone()[0] == len(_visible_ids(world))


LIVE_WRITER = textwrap.dedent("""
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])  # read-write, the default of every tool
    if sys.argv[2] == "write":
        con.execute("create table main.scratch as select 1 as x")
    print("open", flush=True)
    time.sleep(120)
""")


@pytest.mark.slow
@pytest.mark.parametrize("writes", [False, True])
def test_a_live_read_write_session_is_named_and_told_apart_from_a_dead_one(
    world: World, emulator: EmulatorServer, db_path: Path, writes: bool
) -> None:
    env = sync_env(world, emulator, db_path)
    assert run_cli(env).returncode == 0
    session = subprocess.Popen([sys.executable, "-c", LIVE_WRITER, str(db_path), "write" if writes else "read"],
                               stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert session.stdout is not None and session.stdout.readline().strip() == "open"
        done = run_cli(env)
        assert done.returncode == 2
        last = _message(done.stderr.strip().splitlines()[-1])
        assert f"is open read-write in a {'running ' if writes else ''}DuckDB session (python" in last, last
        assert f"PID {session.pid})" in last and "recoup shell" in last
        assert "remove recoup.duckdb.wal" not in last, "a live session's log is never to be deleted"
    finally:
        session.kill()
        session.wait()
    if writes:  # killed: its log stays, and now no one holds the file
        last = _message(run_cli(env).stderr.strip().splitlines()[-1])
        assert "left by a DuckDB session that did not close" in last and "remove recoup.duckdb.wal" in last
    else:
        assert run_cli(env).returncode == 0


@pytest.mark.slow
def test_a_wal_that_appears_during_a_sync_stops_the_publish(world: World, sync, db_path: Path) -> None:
    sync()
    before = db_path.read_bytes()
    paths = warehouse.Paths(db_path)
    warehouse.start_work_copy(paths)
    with warehouse.connect(paths.work_db) as con:
        con.execute("create table main.newer as select 1 as x")
    db_path.with_name("recoup.duckdb.wal").write_bytes(b"a reader's log")
    with pytest.raises(ConfigError, match=r"recoup\.duckdb\.wal is left by a DuckDB session"):
        warehouse.publish(paths)
    assert db_path.read_bytes() == before


@pytest.mark.slow
def test_publishing_keeps_the_files_mode_and_group(world: World, sync, db_path: Path) -> None:
    sync()
    group = next((g for g in os.getgroups() if g != os.stat(db_path).st_gid), None)
    if group is None and os.geteuid() == 0:
        group = os.stat(db_path).st_gid + 4242  # root may give a file any group
    if group is not None:
        os.chown(db_path, -1, group)
    os.chmod(db_path, 0o640)
    old_umask = os.umask(0o022)
    try:
        world.add_run(world.account_ids[0], created_at=world.now - timedelta(seconds=5))
        assert sync().exit_code == 0
    finally:
        os.umask(old_umask)
    after = os.stat(db_path)
    assert stat.S_IMODE(after.st_mode) == 0o640, oct(after.st_mode)
    if group is not None:
        assert after.st_gid == group


@pytest.fixture(params=["same file system", "another file system"])
def elsewhere(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """A folder for the file RECOUP_DB links to: beside it, or on another file system."""
    if request.param == "same file system":
        yield tmp_path / "real"
        return
    shm = Path("/dev/shm")
    if not os.access(shm, os.W_OK) or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second file system to link into")
    with tempfile.TemporaryDirectory(dir=shm) as folder:
        yield Path(folder)


@pytest.mark.slow
def test_a_symlinked_database_is_followed_and_the_link_stays(
    world: World, emulator: EmulatorServer, tmp_path: Path, elsewhere: Path
) -> None:
    target = elsewhere / "warehouse-v2.duckdb"
    target.parent.mkdir(exist_ok=True)
    link = tmp_path / "data" / "recoup.duckdb"
    link.parent.mkdir()
    link.symlink_to(target)
    settings = load_settings(sync_env(world, emulator, link))
    run_sync(settings, retry=FAST_RETRY)
    world.add_run(world.account_ids[0], created_at=world.now - timedelta(seconds=5))
    run_sync(settings, retry=FAST_RETRY)
    assert link.is_symlink() and os.readlink(link) == str(target)
    with duckdb.connect(str(link), read_only=True) as con:
        runs = con.execute("select count(*) from analytics.runs").fetchone()[0]
    assert runs == len(_visible_ids(world))
    # dlt's pipelines folder is kept beside the link (docs/warehouse.md, "dlt's own tools"); nothing else is left.
    assert sorted(p.name for p in link.parent.iterdir()) == [
        ".recoup.duckdb-dlt-pipelines",
        ".recoup.duckdb.lock",
        "recoup.duckdb",
    ]
    assert sorted(p.name for p in target.parent.iterdir()) == ["warehouse-v2.duckdb"]


# -- 3. a deadline and a size cap on every request -------------------------------------------------


@pytest.mark.slow
def test_a_trickling_server_is_a_failed_attempt_retried_within_the_deadline(
    world: World, emulator: EmulatorServer, db_path: Path
) -> None:
    slow = world.account_ids[1]
    world.inject("trickle", delay=0.02, mode="list", account=slow)  # the page would take ~20 minutes
    started = time.monotonic()
    done = run_cli(sync_env(world, emulator, db_path, RECOUP_REQUEST_TIMEOUT="1"), timeout=60)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 30
    assert "3/3 accounts ok" in done.stdout and "1 retries" in done.stdout
    assert [e.get("fault") for e in world.requests(account=slow)] == ["trickle", None]


@pytest.mark.slow
def test_an_answer_over_the_size_cap_fails_its_account_with_a_clear_message(
    world: World, sync, query: Query
) -> None:
    big = world.account_ids[2]
    world.inflate(world.visible(big, 1)[0]["id"], "metadata", 1 * MB)  # the other pages are ~60 KB
    summary = sync(RECOUP_MAX_RESPONSE_BYTES=str(MB // 2))
    assert [r.account for r in summary.failed] == [big]
    assert summary.failed[0].error == (
        f"account {big}: list: the answer is larger than 524,288 bytes (RECOUP_MAX_RESPONSE_BYTES)"
    )
    assert len(world.requests(account=big)) == 1, "not retried: the same answer would come again"
    assert _loaded(query) == _visible_ids(world, *world.account_ids[:2])


class _ChunkedAnswer(BaseHTTPRequestHandler):
    """Answers every request with 2 MB of valid JSON sent in chunks, with no Content-Length."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        parts = [b'{"status":"success","runs":[],"pad":"'] + [b"x" * 65536] * 32 + [b'"}']
        try:
            for part in parts:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        except OSError:  # the client stopped reading
            self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


def test_an_answer_without_a_length_is_cut_off_at_the_cap_while_streaming() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ChunkedAnswer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with RecoupClient(url, "recoup_sk_x", retry=FAST_RETRY, max_response_bytes=MB) as client:
            with pytest.raises(ApiError, match="the answer is larger than 1,048,576 bytes"):
                client.fetch_runs(None)
            assert client.requests == 1
        with RecoupClient(url, "recoup_sk_x", retry=FAST_RETRY, max_response_bytes=4 * MB) as client:
            assert client.fetch_runs(None).runs == [], "under the cap the same answer is read"
    finally:
        server.shutdown()
        server.server_close()


# -- 4. valid JSON that orjson refuses --------------------------------------------------------------


def _raw(account: str, run_id: str, extra: str) -> bytes:
    """A run as JSON text, with `extra` members no JSON writer would produce."""
    return (
        f'{{"id":"{run_id}","status":"COMPLETED","createdAt":"2026-11-20T09:00:00.000Z",'
        f'"tags":["account:{account}"],{extra}}}'
    ).encode()


@pytest.mark.slow
def test_valid_json_orjson_refuses_is_read_and_only_the_runs_it_must_are_rejected(
    world: World, sync, query: Query
) -> None:
    account = world.account_ids[0]
    world.raw_items[account] = [
        _raw(
            account,
            "run_surrogate",
            r'"taskIdentifier":"cut \ud83c emoji","metadata":{"\udf35":"\ud83c\udf35"}',
        ),
        _raw(account, "run_1e400", '"costInCents":1e400'),
        _raw(account, "run_inf_meta", '"metadata":{"a":[1,-1e999]}'),
        _raw(account, "run_deep", '"metadata":' + "[" * 1100 + "]" * 1100),
        _raw(account, "run_nested_300", '"metadata":' + "[" * 300 + "]" * 300),
    ]
    summary = sync()
    result = next(r for r in summary.results if r.account == account)
    assert sorted(result.problems) == [
        "rejected run run_1e400: holds a number no double can carry (such as 1e400)",
        "rejected run run_deep: nests its JSON too deeply to be read",
        "rejected run run_inf_meta: holds a number no double can carry (such as 1e400)",
        "rejected run run_nested_300: cannot be stored as JSON (Recursion limit reached)",
    ]
    assert [r.account for r in summary.failed] == [account], "the other accounts are fine"
    assert _loaded(query) == _visible_ids(world) | {"run_surrogate"}
    assert query("select task_identifier from analytics.runs where run_id = 'run_surrogate'") == [
        ("cut \ufffd emoji",)
    ]
    assert query("select metadata::varchar from raw.runs where id = 'run_surrogate'") == [
        ('{"\ufffd":"\U0001f335"}',)
    ]


# -- 5. the key stays where it belongs ---------------------------------------------------------------


@pytest.mark.slow
def test_a_key_the_api_echoes_is_masked_in_the_output_and_in_sync_log(
    world: World, emulator: EmulatorServer, tmp_path: Path
) -> None:
    key = "recoup_sk_Tr1cky+key/with=signs"  # URL-encoding changes it: both forms must go
    world.keys[key] = Key(account=world.account_ids[0], readable=set(world.account_ids))
    echoing = world.account_ids[1]
    world.inject("echo_key", count=100, mode="list", account=echoing)
    db = tmp_path / "data" / "recoup.duckdb"
    env = sync_env(world, emulator, db, RECOUP_API_KEY=key, RECOUP_RETRY_ATTEMPTS="2")
    done = run_cli(env)
    assert done.returncode == 1
    forms = {key, quote(key, safe=""), quote_plus(key)}
    assert (
        f"account {echoing}: FAILED: account {echoing}: list: HTTP 500 Trigger.dev API error: invalid token *** (x-api-key=***)"
        in done.stdout
    )
    for path in [p for p in tmp_path.rglob("*") if p.is_file()]:
        assert not any(form.encode() in path.read_bytes() for form in forms), path
    with duckdb.connect(str(db), read_only=True) as con:
        logged = con.execute("select string_agg(error, ' ') from analytics.sync_log").fetchone()[0]
    assert "invalid token ***" in logged
    assert not any(form in done.stdout + done.stderr + logged for form in forms)


class _Listener:
    """A TCP server that only counts the connections it gets: a proxy nobody should use."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()


@pytest.mark.slow
def test_proxies_from_the_environment_are_never_used(
    world: World, emulator: EmulatorServer, db_path: Path
) -> None:
    proxy = _Listener()
    url = f"http://127.0.0.1:{proxy.port}"
    environment = {
        name: url for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy")
    }
    environment |= {"NO_PROXY": "", "no_proxy": ""}
    done = run_cli(sync_env(world, emulator, db_path, **environment))
    assert done.returncode == 0, done.stderr
    https_proxy = f"https://127.0.0.1:{proxy.port}"
    done = run_cli(sync_env(world, emulator, db_path, RECOUP_PROXY=https_proxy))
    assert done.returncode == 0, "an https proxy is never used for a plain http (loopback) base URL"
    proxy.sock.close()
    assert proxy.connections == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"RECOUP_BASE_URL": "http://user:s3cret-pw@127.0.0.1:1"}, "RECOUP_BASE_URL must not hold a user name or password"),
        ({"RECOUP_BASE_URL": "http://[::1"}, "RECOUP_BASE_URL is not a valid URL: 'http://[::1'"),
        ({"RECOUP_BASE_URL": "http://127.0.0.1:99999"}, "RECOUP_BASE_URL is not a valid URL"),
        ({"RECOUP_BASE_URL": "https://"}, "RECOUP_BASE_URL must be an http(s) URL, got 'https://'"),
        ({"RECOUP_BASE_URL": "ftp://x"}, "RECOUP_BASE_URL must be an http(s) URL, got 'ftp://x'"),
        ({"RECOUP_PROXY": "http://proxy.example:3128"}, "RECOUP_PROXY must be an https:// URL"),
        ({"RECOUP_PROXY": "socks5://u:s3cret-pw@proxy.example"}, "RECOUP_PROXY must be an https:// URL, got 'socks5://***@proxy.example'"),
    ],
)  # fmt: skip
def test_bad_urls_are_one_line_exit_2_and_never_show_a_password(
    world: World, emulator: EmulatorServer, tmp_path: Path, change: dict[str, str], message: str
) -> None:
    db = tmp_path / "data" / "recoup.duckdb"
    done = run_cli(sync_env(world, emulator, db, **change))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and _message(lines[0]).startswith(f"sync: {message}"), done.stderr
    assert "s3cret-pw" not in done.stderr + done.stdout
    assert not db.parent.exists(), "nothing written"


# -- 6. answers that say they failed, values out of range -------------------------------------------


@pytest.mark.slow
def test_a_200_answer_with_status_error_is_retried_like_a_5xx(world: World, sync, query: Query) -> None:
    world.inject("status_error", count=2, mode="list", account=world.account_ids[1])
    summary = sync()
    assert summary.exit_code == 0, summary.lines()
    assert summary.retries == 2
    assert _loaded(query) == _visible_ids(world)


@pytest.mark.slow
def test_costs_and_dates_out_of_range_reject_their_run_by_name(world: World, sync, query: Query) -> None:
    first, second, third = world.account_ids
    # One kind of bad value per page: each page would take the column path but for that value.
    world.extra_items[first] = [_run(first, "run_negative", costInCents=-0.5)]
    world.extra_items[second] = [_run(second, "run_absurd", baseCostInCents=1e308)]
    world.extra_items[third] = [
        _run(third, "run_year_1", created="0001-01-01T00:00:00.000Z"),
        _run(third, "run_year_2200", updatedAt="2200-01-01T00:00:00.000Z"),
    ]
    summary = sync()
    assert sorted(p for r in summary.results for p in r.problems) == [
        "rejected run run_absurd: baseCostInCents is not a cost between 0 and 1e+12 cents: 1e+308",
        "rejected run run_negative: costInCents is not a cost between 0 and 1e+12 cents: -0.5",
        "rejected run run_year_1: createdAt is not a date within 2000-2100: '0001-01-01T00:00:00.000Z'",
        "rejected run run_year_2200: updatedAt is not a date within 2000-2100: '2200-01-01T00:00:00.000Z'",
    ]
    assert _loaded(query) == _visible_ids(world), "the rest of every page loaded"


# -- 7. a failed sync cleans up after itself ---------------------------------------------------------


@pytest.mark.slow
def test_a_failed_sync_leaves_no_working_copy(
    world: World, emulator: EmulatorServer, sync, db_path: Path
) -> None:
    sync()
    work = db_path.parent / ".recoup.duckdb-work"
    env = sync_env(world, emulator, db_path, RECOUP_API_KEY="recoup_sk_revoked")
    with pytest.raises(AuthError):
        run_sync(load_settings(env), retry=FAST_RETRY)  # fails after the working copy was made
    assert not work.exists()


# Runs the sync with RECOUP_DB on a small file system of its own (a private tmpfs mount).
ON_A_SMALL_DISK = textwrap.dedent("""
    set -e
    mount -t tmpfs -o size="$SIZE" tmpfs "$FOLDER"
    cp "$SOURCE" "$FOLDER/recoup.duckdb"
    set +e
    "$PYTHON" -m pipelines.recoup_pipeline
    code=$?
    echo "left:" $(ls -A "$FOLDER") >&2
    exit $code
""")


@pytest.mark.slow
def test_a_full_disk_is_refused_before_copying_naming_the_folder_and_the_space_needed(
    world: World, emulator: EmulatorServer, sync, db_path: Path, tmp_path: Path
) -> None:
    if (
        shutil.which("unshare") is None
        or subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False).returncode
    ):
        pytest.skip("needs a private mount namespace (unshare -m) for a small file system")
    sync()
    size = db_path.stat().st_size
    folder = tmp_path / "small"
    folder.mkdir()
    env = sync_env(world, emulator, folder / "recoup.duckdb")
    env |= {
        "SIZE": str(size + 2 * MB),
        "FOLDER": str(folder),
        "SOURCE": str(db_path),
        "PYTHON": sys.executable,
    }
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("RECOUP_", "SOURCES__"))} | env
    done = subprocess.run(["unshare", "-m", "sh", "-c", ON_A_SMALL_DISK], cwd=ROOT, env=clean,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 1, done.stderr
    *_, message, left = done.stderr.strip().splitlines()
    message = _message(message)
    margin = warehouse.space_margin(size)
    assert margin > 2 * MB
    assert message == (
        f"sync: not enough free space in {folder}/.recoup.duckdb-work: the working copy needs"
        f" {(size + margin) / MB:,.0f} MB (the warehouse and {margin / MB:,.0f} MB for the load), 2 MB are free"
    ), done.stderr
    assert left == "left: .recoup.duckdb-outcomes.jsonl .recoup.duckdb.lock recoup.duckdb", (
        "the working folder is gone"
    )
