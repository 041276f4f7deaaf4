"""The archive (RECOUP_ARCHIVE) and `recoup restore`, against a folder and a real S3 API (moto's server)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import duckdb
import httpx
import pytest

from pipelines.emulator import EmulatorServer, World
from tests.conftest import (
    CONSISTENT,
    closed_port,
    is_consistent,
    run_recoup,
    start_recoup,
    sync_env,
    wait_until,
)

KEY_ID = "AKIARECOUPARCHIVE042"
SECRET = "archive-secret-7f3c9e1d5b"  # the key scan looks for these in every archived object
TOKEN = "archive-session-token-c0ffee91"
BUCKET = "recoup-archive"


class MotoServer:
    """moto's S3 server as a subprocess on 127.0.0.1; `stop()` and `start()` take it down and up again."""

    def __init__(self) -> None:
        self.port = closed_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        server = Path(sys.executable).parent / "moto_server"
        self.process = subprocess.Popen([str(server), "-H", "127.0.0.1", "-p", str(self.port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

        def up() -> bool:
            try:
                return httpx.get(self.url, timeout=1).status_code < 500
            except httpx.HTTPError:
                return False

        wait_until(up, "moto's server to answer", timeout=30)

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def create_bucket(self, name: str) -> None:
        assert httpx.put(f"{self.url}/{name}", timeout=10).status_code == 200

    def objects(self, bucket: str) -> dict[str, bytes]:
        """Every object of the bucket, by key (moto keeps its objects while it runs)."""
        listing = httpx.get(f"{self.url}/{bucket}", params={"list-type": "2"}, timeout=10).text
        keys = [part.split("</Key>")[0] for part in listing.split("<Key>")[1:]]
        return {key: httpx.get(f"{self.url}/{bucket}/{key}", timeout=10).content for key in keys}


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    server = MotoServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def s3_env(server: MotoServer) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": TOKEN,
            "AWS_REGION": "eu-central-1", "AWS_ENDPOINT_URL": server.url}  # fmt: skip


@pytest.fixture(params=["folder", "s3"])
def archive_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """RECOUP_ARCHIVE as a folder, or as a prefix of a fresh bucket on moto's server."""
    if request.param == "folder":
        return {"RECOUP_ARCHIVE": str(tmp_path / "archive")}
    server: MotoServer = request.getfixturevalue("moto")
    bucket = f"{BUCKET}-{len(os.listdir(tmp_path.parent))}-{os.getpid()}"
    server.create_bucket(bucket)
    return {"RECOUP_ARCHIVE": f"s3://{bucket}/team/recoup", **s3_env(server)}


def tables(db: Path) -> dict[str, tuple[list, list]]:
    """Every table and view of the warehouse: its columns and types, and its rows in order."""
    out = {}
    with duckdb.connect(str(db), read_only=True) as con:
        names = con.execute(
            "select table_schema || '.' || table_name from information_schema.tables"
            " where table_catalog = current_database() order by 1"
        ).fetchall()
        for (name,) in names:
            columns = con.execute(
                f'select column_name, column_type, "null" from (describe {name})'
            ).fetchall()
            out[name] = (columns, con.execute(f"select * from {name} order by all").fetchall())
    return out


def assert_same(restored: dict, original: dict) -> None:
    assert sorted(restored) == sorted(original)
    for name in original:
        assert restored[name][0] == original[name][0], f"{name}: columns differ"
        assert restored[name][1] == original[name][1], f"{name}: rows differ"


def change_world(world: World, round: int) -> None:
    """New runs, a finished run, a changed cost, a dropped tag, a run the API forgets."""
    world.advance(minutes=5)
    accounts = world.account_ids
    for account in accounts:
        world.add_run(account, created_at=world.now - timedelta(minutes=1))
    flying = world.in_flight(accounts[0])
    if flying:
        world.complete_run(flying[0])
    tagged = next(
        r for r in world.runs.values() if len(r["tags"]) > 1 and r["status"] in ("COMPLETED", "FAILED")
    )
    world.change_run(tagged["id"], tags=tagged["tags"][:1])
    if round == 1:  # an in-flight run that vanishes from the API: it becomes a lost run
        lost = world.add_run(accounts[1], created_at=world.now - timedelta(minutes=2), status="QUEUED")
        world.lost_later = lost["id"]  # type: ignore[attr-defined]
    elif getattr(world, "lost_later", None) in world.runs:
        run_id = world.lost_later  # type: ignore[attr-defined]
        del world.runs[run_id]
        world.by_account[accounts[1]].remove(run_id)


def sync_ok(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = run_recoup(env, "sync")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "archive: FAILED" not in done.stderr
    return done


@pytest.fixture
def env(world: World, emulator: EmulatorServer, db_path: Path, archive_env: dict[str, str]) -> dict[str, str]:
    return sync_env(world, emulator, db_path, **archive_env)


@pytest.mark.slow
def test_restore_drill_rebuilds_every_table_and_the_next_syncs_load_exactly_what_changed(
    world: World, env: dict[str, str], db_path: Path
) -> None:
    for round in range(4):
        if round:
            change_world(world, round)
        sync_ok(env)
    with duckdb.connect(str(db_path), read_only=True) as con:
        assert con.execute("select count(*) from raw.lost_runs").fetchone() == (1,)
    original = tables(db_path)
    shutil.rmtree(db_path.parent)
    done = run_recoup(env, "restore")
    assert done.returncode == 0, done.stderr
    assert_same(tables(db_path), original)
    # The next syncs continue incrementally: only what changed is loaded, nothing twice.
    world.advance(minutes=5)
    added = [world.add_run(a, created_at=world.now - timedelta(minutes=1))["id"] for a in world.account_ids]
    sync_ok(env)
    with duckdb.connect(str(db_path), read_only=True) as con:
        (new, updated) = con.execute(
            "select sum(runs_new), sum(runs_updated) from raw.sync_log"
            " where synced_at = (select max(synced_at) from raw.sync_log)"
        ).fetchone()
        runs, distinct = con.execute("select count(*), count(distinct run_id) from analytics.runs").fetchone()
        assert con.execute("select count(*) from raw.runs where id in ?", [added]).fetchone() == (3,)
    assert (new, updated) == (3, 0)
    assert runs == distinct == len(original["analytics.runs"][1]) + 3
    # And the archive went on from the restored warehouse: a second restore gives it whole again.
    original = tables(db_path)
    assert run_recoup(env, "restore", "--to", str(db_path.parent / "again.duckdb")).returncode == 0
    again = tables(db_path.parent / "again.duckdb")
    assert_same(again, original)


@pytest.mark.slow
def test_restore_at_an_earlier_sync_gives_that_sync_state_exactly(
    world: World, env: dict[str, str], db_path: Path, tmp_path: Path
) -> None:
    states = []
    for round in range(3):
        if round:
            change_world(world, round)
        sync_ok(env)
        states.append(tables(db_path))
        with duckdb.connect(str(db_path), read_only=True) as con:
            states[-1]["synced_at"] = con.execute("select max(synced_at) from raw.sync_log").fetchone()[0]
        time.sleep(0.05)
    second = states[1].pop("synced_at")
    target = tmp_path / "earlier" / "recoup.duckdb"
    done = run_recoup(env, "restore", "--at", second.isoformat(), "--to", str(target))
    assert done.returncode == 0, done.stderr
    assert_same(tables(target), states[1])
    refused = run_recoup(env, "restore", "--at", second.isoformat(), "--to", str(target))
    assert refused.returncode == 2 and "--force" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    forced = run_recoup(env, "restore", "--force", "--to", str(target))
    assert forced.returncode == 0, forced.stderr
    states[2].pop("synced_at")
    assert_same(tables(target), states[2])


def archived_syncs(env: dict[str, str]) -> dict:
    done = run_recoup(env, "archive", "status", "--json")
    return json.loads(done.stdout)


def half_written(env: dict[str, str]) -> list[str]:
    """The archive's files that sit in a point without a manifest (a write cut short)."""
    target = env["RECOUP_ARCHIVE"]
    if target.startswith("s3://"):
        bucket, _, prefix = target.removeprefix("s3://").partition("/")
        server_url = env["AWS_ENDPOINT_URL"]
        listing = httpx.get(
            f"{server_url}/{bucket}", params={"list-type": "2", "prefix": prefix}, timeout=5
        ).text
        keys = [part.split("</Key>")[0] for part in listing.split("<Key>")[1:]]
    else:
        keys = [str(p.relative_to(target)) for p in Path(target).rglob("*") if p.is_file()]
    points = {k.rsplit("/", 1)[0] for k in keys if k.endswith(".parquet")}
    done = {k.rsplit("/", 1)[0] for k in keys if k.endswith("/manifest.json")}
    return sorted(points - done)


@pytest.mark.slow
def test_a_sync_killed_while_archiving_leaves_the_warehouse_and_the_next_sync_archives_what_was_missed(
    world: World, env: dict[str, str], db_path: Path, tmp_path: Path
) -> None:
    sync_ok(env)
    change_world(world, 1)
    # Large, hardly compressible answers make the change set take long enough to be cut in the middle.
    for run_id in list(world.runs)[:16]:
        world.change_run(run_id, metadata={"blob": os.urandom(600_000).hex()})
    process = start_recoup(env, "sync")
    assert process.stderr is not None
    for line in process.stderr:
        if "archiving into" in line:
            break
    wait_until(lambda: half_written(env), "the archive step to write its first file", timeout=30)
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    assert process.returncode == -signal.SIGKILL
    assert half_written(env), "killed after the manifest: the kill did not land in the archive step"
    with duckdb.connect(str(db_path), read_only=True) as con:
        assert con.execute("select count(distinct synced_at) from raw.sync_log").fetchone() == (2,)
    assert archived_syncs(env)["unarchived_syncs"] == 1
    change_world(world, 2)
    sync_ok(env)
    assert archived_syncs(env)["unarchived_syncs"] == 0
    original = tables(db_path)
    target = tmp_path / "restored" / "recoup.duckdb"
    assert run_recoup(env, "restore", "--to", str(target)).returncode == 0
    assert_same(tables(target), original)


@pytest.mark.slow
def test_an_s3_outage_publishes_the_sync_fails_it_loudly_and_the_archive_catches_up(
    world: World, emulator: EmulatorServer, db_path: Path, tmp_path: Path
) -> None:
    server = MotoServer()
    server.start()
    try:
        server.create_bucket(BUCKET)
        env = sync_env(world, emulator, db_path, RECOUP_ARCHIVE=f"s3://{BUCKET}/p", **s3_env(server))
        sync_ok(env)
        server.stop()
        change_world(world, 1)
        done = run_recoup(env, "sync")
        assert done.returncode == 1, done.stderr[-2000:]
        assert "archive: FAILED" in done.stderr and "the warehouse is published" in done.stderr
        assert SECRET not in done.stderr + done.stdout and KEY_ID not in done.stderr + done.stdout
        with duckdb.connect(str(db_path), read_only=True) as con:
            assert con.execute("select count(distinct synced_at) from raw.sync_log").fetchone() == (2,)
        stale = run_recoup(env, "archive", "status", "--max-age", "1d")
        assert (
            stale.returncode == 1 and "S3" not in stale.stdout
        )  # the store is down: the status says it failed
        server.start()  # moto keeps no objects across a restart: a fresh bucket, so a new snapshot
        server.create_bucket(BUCKET)
        change_world(world, 2)
        sync_ok(env)
        status = run_recoup(env, "archive", "status", "--max-age", "1h", "--json")
        assert status.returncode == 0 and json.loads(status.stdout)["unarchived_syncs"] == 0
        original = tables(db_path)
        target = tmp_path / "restored" / "recoup.duckdb"
        assert run_recoup(env, "restore", "--to", str(target)).returncode == 0
        assert_same(tables(target), original)
    finally:
        server.stop()


@pytest.mark.slow
def test_no_archived_object_holds_a_key_a_secret_or_a_session_token(
    world: World, emulator: EmulatorServer, db_path: Path, moto: MotoServer
) -> None:
    moto.create_bucket("recoup-key-scan")
    env = sync_env(world, emulator, db_path, RECOUP_ARCHIVE="s3://recoup-key-scan/a", **s3_env(moto))
    outputs = []
    for round in range(3):
        if round:
            change_world(world, round)
        done = sync_ok(env)
        outputs.append(done.stdout + done.stderr)
    outputs.append(run_recoup(env, "archive", "status").stdout)
    objects = moto.objects("recoup-key-scan")
    assert any(k.endswith(".parquet") for k in objects) and any(k.endswith("manifest.json") for k in objects)
    for value in (KEY_ID, SECRET, TOKEN):
        for key, body in objects.items():
            assert value.encode() not in body, f"{key} holds a credential"
        assert value.encode() not in db_path.read_bytes()
        assert all(value not in text for text in outputs)


@pytest.mark.slow
def test_retention_keeps_every_point_the_newest_snapshot_before_the_window_needs(
    world: World, emulator: EmulatorServer, db_path: Path, tmp_path: Path
) -> None:
    from pipelines.archive.retention import points_to_forget
    from pipelines.archive.store import Store
    from pipelines.config.archive import archive_settings

    archive = tmp_path / "archive"
    env = sync_env(world, emulator, db_path, RECOUP_ARCHIVE=str(archive), RECOUP_ARCHIVE_SNAPSHOT_MB="1")
    kinds = []
    for round in range(4):
        if round:
            change_world(world, round)
            for run_id in list(world.runs)[round * 4 : round * 4 + 4]:  # enough bytes for the next snapshot
                world.change_run(run_id, metadata={"blob": os.urandom(300_000).hex()})
        sync_ok(env)
        with duckdb.connect() as con:
            kinds = [m.kind for m in Store(con, archive_settings(env)).manifests()]
    assert kinds.count("snapshot") >= 2 and "changes" in kinds, kinds
    with duckdb.connect() as con:
        store = Store(con, archive_settings(env))
        points = store.manifests()
        later = points[-1].through_at + timedelta(days=30)
        assert points_to_forget(store, 60, later) == []  # nothing is older than the window
        gone = points_to_forget(store, 10, later)  # every point is: the newest snapshot and after stay
        newest_snapshot = max(i for i, m in enumerate(points) if m.kind == "snapshot")
        assert gone == [m.prefix for m in points[:newest_snapshot]]
        for prefix in gone:
            store.delete_point(prefix)
    original = tables(db_path)
    target = tmp_path / "restored" / "recoup.duckdb"
    assert run_recoup(env, "restore", "--to", str(target)).returncode == 0
    assert_same(tables(target), original)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RECOUP_ARCHIVE": "ftp://host/x"}, "RECOUP_ARCHIVE must be a folder or s3://bucket/prefix"),
        ({"RECOUP_ARCHIVE": "s3://"}, "RECOUP_ARCHIVE must name a bucket"),
        (
            {"RECOUP_ARCHIVE": "/a", "RECOUP_ARCHIVE_KEEP_DAYS": "soon"},
            "RECOUP_ARCHIVE_KEEP_DAYS must be a whole number",
        ),
        (
            {"RECOUP_ARCHIVE": "/a", "RECOUP_ARCHIVE_KEEP_DAYS": "0"},
            "RECOUP_ARCHIVE_KEEP_DAYS must be at least 1",
        ),
        ({"RECOUP_ARCHIVE": "/a", "AWS_ACCESS_KEY_ID": "AKIA1"}, "must be set together"),
        ({"RECOUP_ARCHIVE": "/a", "AWS_ENDPOINT_URL": "localhost:9000"}, "AWS_ENDPOINT_URL must be"),
        (
            {"RECOUP_ARCHIVE": "/a", "RECOUP_LAKE": "postgres:dbname=x", "RECOUP_LAKE_DATA": "/l"},
            "a lake (RECOUP_LAKE) is not archived",
        ),
    ],
)
def test_a_bad_archive_setting_is_one_clear_line_and_exit_2(
    env: dict[str, str], message: str, world: World, tmp_path: Path
) -> None:
    done = run_recoup({"RECOUP_API_KEY": "k", "RECOUP_DB": str(tmp_path / "w.duckdb"), **env}, "sync")
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert SECRET not in done.stderr


# -- the lake on the same S3 server -------------------------------------------------------------------


@pytest.mark.slow
def test_a_lake_on_s3_syncs_reads_as_the_docs_say_and_maintains_within_its_memory(
    world: World, emulator: EmulatorServer, tmp_path: Path, lake_env: dict[str, str], moto: MotoServer
) -> None:
    moto.create_bucket("recoup-lake")
    env = sync_env(world, emulator, tmp_path / "work" / "recoup.duckdb",
                   **{**lake_env, "RECOUP_LAKE_DATA": "s3://recoup-lake/data/"}, **s3_env(moto))  # fmt: skip
    for round in range(3):
        if round:
            change_world(world, round)
        sync_ok(env)
    # A reader: a DuckDB S3 secret (the docs' persistent one, here for this session), then exactly the docs' ATTACH.
    with duckdb.connect() as con:
        from pipelines.archive.s3 import load_httpfs
        from pipelines.lake import load_extensions

        load_extensions(con, env["RECOUP_LAKE_DATA"])
        load_httpfs(con)
        con.execute(f"create secret (type s3, key_id '{KEY_ID}', secret '{SECRET}', session_token '{TOKEN}',"
                    f" region 'eu-central-1', endpoint '127.0.0.1:{moto.port}', use_ssl false, url_style 'path')")  # fmt: skip
        con.execute(
            f"ATTACH 'ducklake:{env['RECOUP_LAKE']}' AS recoup (DATA_PATH '{env['RECOUP_LAKE_DATA']}', READ_ONLY)"
        )
        con.execute("use recoup")
        state = con.execute(CONSISTENT).fetchone()
    assert state and state[0] > 100 and is_consistent(state), state
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", "maintain"], cwd=Path(__file__).parent.parent,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=240)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "maintain: merge adjacent files" in done.stdout
    keys = moto.objects("recoup-lake")
    assert any(k.endswith(".parquet") for k in keys)
    for value in (KEY_ID, SECRET, TOKEN):
        assert all(value.encode() not in body for body in keys.values())
