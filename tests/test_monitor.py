"""A sync reports itself to monitoring: the metrics file and the pings, and never fails for them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import filelock
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipelines.emulator import EmulatorServer, World
from tests.conftest import closed_port, run_recoup, sync_env

LAST_RUN = ("recoup_sync_last_run_timestamp_seconds", ())
LAST_SUCCESS = ("recoup_sync_last_success_timestamp_seconds", ())


def _metrics(path: Path) -> dict[tuple[str, tuple], float]:
    """Every sample of a metrics file, as node_exporter's textfile collector would read it."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(path.read_text())
        for sample in family.samples
    }


@pytest.mark.slow
def test_the_metrics_file_after_a_good_a_failed_and_a_locked_sync(
    world: World, emulator: EmulatorServer, tmp_path: Path
) -> None:
    db, prom = tmp_path / "recoup.duckdb", tmp_path / "textfile" / "recoup.prom"
    prom.parent.mkdir()
    env = sync_env(world, emulator, db, RECOUP_METRICS_FILE=str(prom))

    assert run_recoup(env, "sync").returncode == 0
    good = _metrics(prom)
    assert good[("recoup_sync_exit_code", ())] == 0
    assert good[LAST_SUCCESS] == good[LAST_RUN]
    assert good[("recoup_sync_accounts", (("state", "ok"),))] == len(world.account_ids)
    assert good[("recoup_sync_runs", (("kind", "new"),))] > 0
    assert good[("recoup_warehouse_bytes", ())] == db.stat().st_size

    world.revoke(world.demo_key, world.account_ids[1])
    assert run_recoup(env, "sync").returncode == 1
    failed = _metrics(prom)
    assert failed[("recoup_sync_exit_code", ())] == 1
    assert failed[("recoup_sync_accounts", (("state", "failed"),))] == 1
    assert failed[LAST_SUCCESS] == good[LAST_RUN]
    assert failed[LAST_RUN] > good[LAST_RUN]

    with filelock.FileLock(tmp_path / ".recoup.duckdb.lock"):
        assert run_recoup(env, "sync").returncode == 75
    locked = _metrics(prom)
    assert locked[("recoup_sync_exit_code", ())] == 75
    assert locked[LAST_SUCCESS] == good[LAST_RUN]
    assert not any(name == "recoup_sync_accounts" for name, _ in locked), "no sync ran: no account counts"
    assert [p.name for p in prom.parent.iterdir()] == ["recoup.prom"], "written by rename: no temporary left"


class _Pings(BaseHTTPRequestHandler):
    received: list[tuple[str, str]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        self.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def pings() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    received: list[tuple[str, str]] = []
    handler = type("Pings", (_Pings,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/ping/5f1c-token", received
    server.shutdown()


@pytest.mark.slow
def test_a_sync_pings_its_start_and_its_end_with_the_exit_code_and_summary(
    world: World, emulator: EmulatorServer, tmp_path: Path, pings
) -> None:
    url, received = pings
    env = sync_env(world, emulator, tmp_path / "recoup.duckdb", RECOUP_PING_URL=url)
    assert run_recoup(env, "sync").returncode == 0
    assert [path for path, _ in received] == ["/ping/5f1c-token/start", "/ping/5f1c-token"]
    assert "accounts ok" in received[1][1]

    received.clear()
    world.revoke(world.demo_key, world.account_ids[1])
    assert run_recoup(env, "sync").returncode == 1
    assert [path for path, _ in received] == ["/ping/5f1c-token/start", "/ping/5f1c-token/1"]
    assert f"account {world.account_ids[1]}: FAILED" in received[1][1]


@pytest.mark.slow
def test_a_ping_that_cannot_be_sent_never_fails_the_sync_nor_shows_its_token(
    world: World, emulator: EmulatorServer, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/ping/secret-token-4d2a"
    done = run_recoup(sync_env(world, emulator, tmp_path / "recoup.duckdb", RECOUP_PING_URL=url), "sync")
    assert done.returncode == 0, done.stderr
    assert "WARNING ping: 127.0.0.1 /start failed (ConnectError); the sync goes on" in done.stderr
    assert "secret-token-4d2a" not in done.stdout + done.stderr


def test_a_bad_monitoring_setting_is_one_clear_line_and_exit_2(tmp_path: Path) -> None:
    env = {"RECOUP_API_KEY": "tr_dev_x", "RECOUP_DB": str(tmp_path / "w.duckdb")}
    bad_ping = run_recoup({**env, "RECOUP_PING_URL": "ftp://example.org/x"}, "sync")
    assert bad_ping.returncode == 2 and "RECOUP_PING_URL must be an http(s) URL" in bad_ping.stderr
    bad_file = run_recoup({**env, "RECOUP_METRICS_FILE": str(tmp_path / "no" / "such" / "r.prom")}, "sync")
    assert bad_file.returncode == 2 and "RECOUP_METRICS_FILE: the folder" in bad_file.stderr


@pytest.mark.slow
def test_every_sync_has_one_row_in_analytics_syncs_with_its_exit_code_and_archive_state(
    world: World, emulator: EmulatorServer, tmp_path: Path
) -> None:
    """A good sync, a locked-out one, one whose archive failed, then one more: four rows, in order."""
    db, archive = tmp_path / "recoup.duckdb", tmp_path / "archive"
    env = sync_env(world, emulator, db, RECOUP_ARCHIVE=str(archive))
    assert run_recoup(env, "sync").returncode == 0
    with filelock.FileLock(tmp_path / ".recoup.duckdb.lock"):
        assert run_recoup(env, "sync").returncode == 75
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")  # the archive's folder cannot be made under a file
    assert run_recoup({**env, "RECOUP_ARCHIVE": str(blocked / "archive")}, "sync").returncode == 1
    for _ in range(3):
        world.add_run(world.account_ids[0])
    assert run_recoup(env, "sync").returncode == 0

    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("""
            select published, exit_code, outcome_recorded, archive, archive_error is not null, error is not null,
                   requests > 0, synced_at <= published_at and published_at <= coalesce(ended_at, published_at),
                   duration_seconds > 0, accounts, runs_new
            from analytics.syncs order by synced_at
        """).fetchall()  # fmt: skip
        logged = con.execute("select count(distinct synced_at) from analytics.sync_log").fetchone()[0]
    accounts = len(world.account_ids)
    assert rows[0][:6] == (True, 0, True, "archived", False, False) and rows[0][6:10] == (
        True,
        True,
        True,
        accounts,
    )
    assert rows[1][:6] == (False, 75, True, None, False, True), "locked out: a row with its one-line reason"
    assert rows[2][:6] == (True, 1, True, "failed", True, False)
    assert rows[3][:3] == (True, None, False), "the newest sync: how it ends is recorded by the next"
    assert rows[3][10] == 3
    assert len(rows) == 4 and logged == 3
    journal = [line for line in (tmp_path / ".recoup.duckdb-outcomes.jsonl").read_text().splitlines() if line]
    assert len(journal) == 1, "the recorded outcomes are forgotten; the newest waits for the next sync"
