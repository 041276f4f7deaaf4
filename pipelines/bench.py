"""`make bench`: speed and memory of the sync, measured side by side in one invocation.

The emulator runs in its own process (one core for it, one for the system under test). Every
case checks row counts against the emulator's truth before a time is reported. Results go to
stdout and to docs/benchmarks.md. `QUICK=1` shrinks every case for a smoke run.
"""

from __future__ import annotations

import contextlib
import gc
import json
import multiprocessing as mp
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from statistics import median
from typing import Any

import duckdb
import httpx
import orjson
from dlt.common.versioned_state import compress_state, decompress_state

from pipelines import warehouse
from pipelines.config import load_settings
from pipelines.emulator import EmulatorServer, World
from pipelines.emulator.render import to_list_item
from pipelines.emulator.statuses import TERMINAL
from pipelines.lake.local_postgres import PG_PASSWORD, PostgresCluster, PostgresMissing
from pipelines.models import apply_models
from pipelines.query import one_row, scalar
from pipelines.recoup.client import RetryPolicy
from pipelines.recoup.pages import SOURCE_NAME, STATE_KEY
from pipelines.recoup.settings import GROUP_OF_STATUS, TERMINAL_GROUPS
from pipelines.recoup_pipeline import run_sync

ROOT = Path(__file__).resolve().parent.parent
REPEAT = 3  # each timed case runs this often, interleaved with its reference; medians are reported
DOC = ROOT / "docs" / "benchmarks.md"


# -- the emulator in its own process ----------------------------------------------------------


def _serve(conn: Any, accounts: int, runs: int, latency: float, profile: str, finished: bool) -> None:
    world = World(accounts=accounts, runs_per_account=runs, seed=99, profile=profile)
    world.latency = latency
    if finished:  # every run needs its details: the most a sync can be asked to fetch
        for run_id, run in list(world.runs.items()):
            if run["status"] not in TERMINAL:
                world.change_run(run_id, status="COMPLETED")
    for account in world.account_ids:  # render every page once, so no case pays the first render
        for run in world.visible(account, 100):
            world.cached(run, lambda r: orjson.dumps(to_list_item(r, world.profile)))
    server = EmulatorServer(world).start()
    truth = {a: [r["id"] for r in world.visible(a, 100)] for a in world.account_ids}
    conn.send({"url": server.url, "key": world.demo_key, "accounts": world.account_ids, "truth": truth})
    while True:
        command, args = conn.recv()
        if command == "stop":
            server.stop()
            conn.send("stopped")
            return
        if command == "latency":
            world.latency = args
        elif command == "retrieved":  # how often each run was fetched by id
            conn.send(Counter(e["query"]["runId"] for e in world.requests(mode="retrieve")))
            continue
        elif command == "add":  # new runs in the first accounts, the other pages stay the same
            accounts_, each = args
            world.advance(minutes=5)
            for account in world.account_ids[:accounts_]:
                for _ in range(each):
                    world.add_run(
                        account, created_at=world.now - timedelta(seconds=world.rng.randrange(1, 200))
                    )
        elif command == "churn":  # change a share of visible runs and add new ones
            changed, new = args
            rng = world.rng
            world.advance(minutes=5)
            for account in world.account_ids:
                visible = world.visible(account, 100)
                for run in rng.sample(visible, int(len(visible) * changed)):
                    world.change_run(run["id"], costInCents=run["costInCents"] + 1.0)
                for _ in range(int(len(visible) * new)):
                    world.add_run(account, created_at=world.now - timedelta(seconds=rng.randrange(1, 200)))
        truth = {a: [r["id"] for r in world.visible(a, 100)] for a in world.account_ids}
        conn.send(truth)


class Emulator:
    """A World served from a child process, driven through a pipe."""

    def __init__(
        self,
        accounts: int,
        runs: int,
        latency: float = 0.0,
        profile: str = "documented",
        finished: bool = False,
    ) -> None:
        self._conn, child = mp.Pipe()
        self._process = mp.get_context("fork").Process(
            target=_serve, args=(child, accounts, runs, latency, profile, finished), daemon=True
        )
        self._process.start()
        info = self._conn.recv()
        self.url, self.key, self.accounts, self.truth = (
            info["url"],
            info["key"],
            info["accounts"],
            info["truth"],
        )

    def send(self, command: str, args: Any = None) -> Any:
        """Sends one command to the emulator's process and returns its answer."""
        self._conn.send((command, args))
        return self._conn.recv()

    def stop(self) -> None:
        """Stops the emulator's process, waiting up to 5 s for it to end."""
        self.send("stop")
        self._process.join(5)

    @property
    def run_count(self) -> int:
        """How many runs the emulator shows across all its accounts."""
        return sum(len(ids) for ids in self.truth.values())


# -- the systems compared ---------------------------------------------------------------------


def timed(action: Callable[..., Any]) -> tuple[float, Any]:
    """Runs `action` after a garbage collection; returns its wall seconds and its result."""
    gc.collect()  # no system pays for the garbage of the one measured before it
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def sync_env(emu: Emulator, db: Path, **overrides: str) -> dict[str, str]:
    """The environment of a benchmark sync from `emu` into `db`: no pace cap, no time budget.

    `overrides` win over every default.
    """
    env = {"RECOUP_API_KEY": emu.key, "RECOUP_BASE_URL": emu.url, "RECOUP_ACCOUNTS": ",".join(emu.accounts),
           "RECOUP_DB": str(db), "RECOUP_MAX_RPM": "0", "RECOUP_MAX_CONCURRENCY": "8", "RECOUP_SYNC_SECONDS": "0"}  # fmt: skip
    return {**env, **overrides}


def our_sync(emu: Emulator, db: Path, **overrides: str) -> Any:
    """One sync in this process with short retry waits; returns its summary."""
    return run_sync(
        load_settings(sync_env(emu, db, **overrides)), retry=RetryPolicy(attempts=3, backoff=0.05)
    )


def sync_process(emu: Emulator, db: Path, **overrides: str) -> tuple[float, int, float]:
    """One sync as cron runs it, in a process of its own: wall seconds, exit code, peak RSS in MB."""
    accounts = db.parent / "accounts.txt"
    db.parent.mkdir(parents=True, exist_ok=True)
    accounts.write_text("\n".join(emu.accounts))
    env = {**os.environ, **sync_env(emu, db, RECOUP_ACCOUNTS=f"@{accounts}", **overrides)}
    probe = ("import resource, subprocess, sys, time; t = time.perf_counter();"
             " p = subprocess.run([sys.executable, '-m', 'pipelines.recoup_pipeline'], capture_output=True);"
             " print(time.perf_counter() - t, p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")  # fmt: skip
    gc.collect()
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    seconds, code, peak_kb = done.stdout.split()
    return float(seconds), int(code), int(peak_kb) / 1024


def bare_download(emu: Emulator, folder: Path, concurrency: int = 8) -> int:
    """The floor for HTTP: the same list calls, bytes to disk, no parsing."""
    folder.mkdir(parents=True, exist_ok=True)
    with httpx.Client(base_url=emu.url, headers={"x-api-key": emu.key},
                      limits=httpx.Limits(max_connections=concurrency)) as client:  # fmt: skip

        def one(index_account: tuple[int, str]) -> int:
            index, account = index_account
            body = client.get("/api/tasks/runs", params={"limit": 100, "account_id": account}).content
            (folder / f"{index}.json").write_bytes(body)
            return len(body)

        with ThreadPoolExecutor(concurrency) as pool:
            return sum(pool.map(one, enumerate(emu.accounts)))


PAGE_TYPE = (
    'STRUCT(id VARCHAR, status VARCHAR, "taskIdentifier" VARCHAR, "createdAt" TIMESTAMPTZ, "updatedAt" TIMESTAMPTZ,'
    ' "startedAt" TIMESTAMPTZ, "finishedAt" TIMESTAMPTZ, "costInCents" DOUBLE, "baseCostInCents" DOUBLE,'
    ' "durationMs" BIGINT, "isTest" BOOLEAN, env STRUCT(id VARCHAR, name VARCHAR), metadata JSON, tags VARCHAR[],'
    ' attempts STRUCT(id VARCHAR, status VARCHAR, "createdAt" TIMESTAMPTZ, "startedAt" TIMESTAMPTZ,'
    ' "completedAt" TIMESTAMPTZ, error STRUCT(message VARCHAR))[], error STRUCT(message VARCHAR))[]'
)


def duckdb_load(folder: Path, db: Path) -> dict[str, int]:
    """The floor for loading: DuckDB itself parses the saved pages (typed, once) into runs, tags, attempts."""
    with duckdb.connect(str(db)) as con:
        con.execute(f"create temp table pages as select unnest(runs) as run from read_json('{folder}/*.json', "
                    f"columns = {{runs: '{PAGE_TYPE}'}}, format = 'auto')")  # fmt: skip
        con.execute("""create table runs as select run.id, run.status, run.taskIdentifier as task_identifier,
            run.createdAt as created_at, run.updatedAt as updated_at, run.startedAt as started_at,
            run.finishedAt as finished_at, run.costInCents as cost_in_cents, run.baseCostInCents as base_cost_in_cents,
            run.durationMs as duration_ms, run.isTest as is_test, run.env.name as env_name, run.metadata,
            run.error.message as error_message from pages""")
        con.execute("create table tags as select run.id as run_id, unnest(run.tags) as tag from pages")
        con.execute(
            "create table attempts as select run.id as run_id, unnest(run.attempts, recursive := true) from pages"
        )
        return {t: scalar(con.execute(f"select count(*) from {t}")) for t in ("runs", "tags", "attempts")}


def parse_pages(folder: Path) -> int:
    """The floor for reading a page at all: orjson over every saved page, one thread."""
    return sum(len(orjson.loads(path.read_bytes())["runs"]) for path in folder.glob("*.json"))


def peer_rest_api(emu: Emulator, folder: Path) -> int:
    """The peer: dlt's generic rest_api source for the same endpoint and accounts, default settings."""
    import dlt
    from dlt.sources.rest_api import rest_api_source

    @dlt.resource(name="accounts", selected=False)
    def accounts() -> Any:
        yield [{"id": account} for account in emu.accounts]

    source = rest_api_source({
        "client": {"base_url": emu.url, "auth": {"type": "api_key", "name": "x-api-key", "api_key": emu.key,
                                                 "location": "header"}},
        "resource_defaults": {"primary_key": "id", "write_disposition": "merge"},
        "resources": [accounts, {
            "name": "runs",
            "endpoint": {"path": "/api/tasks/runs", "data_selector": "runs", "paginator": "single_page",
                         "params": {"limit": 100, "account_id": "{resources.accounts.id}"}},
        }],
    })  # fmt: skip
    pipeline = dlt.pipeline(pipeline_name="peer", destination=dlt.destinations.duckdb(str(folder / "rest_api.duckdb")),
                            dataset_name="peer", pipelines_dir=str(folder / "dlt"))  # fmt: skip
    pipeline.run(source)
    with duckdb.connect(str(folder / "rest_api.duckdb"), read_only=True) as con:
        return scalar(con.execute("select count(distinct id) from peer.runs"))


def warehouse_counts(db: Path) -> tuple[int, int]:
    """Rows and distinct run ids in `analytics.runs`: equal when no run was duplicated."""
    with duckdb.connect(str(db), read_only=True) as con:
        runs, distinct = one_row(con.execute("select count(*), count(distinct run_id) from analytics.runs"))
        return runs, distinct


def loads(db: Path) -> int:
    """How many loads dlt has recorded in `db`: unchanged by a sync that wrote nothing."""
    with duckdb.connect(str(db), read_only=True) as con:
        return scalar(con.execute("select count(*) from raw._dlt_loads"))


# -- cases ---------------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the results table: a case, its figure, its reference and its target."""

    case: str
    measured: str
    reference: str
    ratio: float | None
    target: str

    @property
    def met(self) -> str:
        """`yes` or `NO` against the target ratio; empty for a case that has none."""
        if self.ratio is None:
            return ""
        op, bound = self.target[:2], float(self.target[2:].rstrip("x MBs"))
        return "yes" if (self.ratio <= bound if op == "<=" else self.ratio >= bound) else "NO"


def check(condition: bool, message: str) -> None:
    """Ends the benchmark with `message` unless `condition` holds: no time is reported for wrong rows."""
    if not condition:
        raise SystemExit(f"bench: correctness check failed: {message}")


def cases_throughput(work: Path, accounts: int, rows: list[Row], repeat: int) -> None:
    """Cases 1, 3 and 4: first sync, no-change re-sync and incremental sync against their floors.

    The first sync is also compared with dlt's rest_api source, which runs last and once.
    """
    emu = Emulator(accounts, 100)
    try:
        truth = emu.run_count
        https, loads_, ours_ = [], [], []
        for i in range(repeat):  # interleaved, so that the machine's drift touches every system alike
            seconds, size = timed(lambda i=i: bare_download(emu, work / f"pages{i}"))
            https.append(seconds)
            seconds, counts = timed(lambda i=i: duckdb_load(work / f"pages{i}", work / f"limit{i}.duckdb"))
            loads_.append(seconds)
            check(counts["runs"] == truth, f"DuckDB floor loaded {counts['runs']} of {truth} runs")
            db = work / f"ours{i}" / "recoup.duckdb"
            seconds, summary = timed(lambda db=db: our_sync(emu, db))
            ours_.append(seconds)
            check(summary.exit_code == 0 and warehouse_counts(db) == (truth, truth), "our sync row count")
        limit_http, limit_load, ours = median(https), median(loads_), median(ours_)
        limit = limit_http + limit_load
        rows.append(Row(f"1. first sync, {accounts:,} accounts x 100 runs ({truth:,} runs, {size / 1e6:.0f} MB)",
                        f"ours {ours:.2f} s", f"limit {limit:.2f} s (http {limit_http:.2f} + duckdb {limit_load:.2f})",
                        ours / limit, "<=2.0x"))  # fmt: skip

        before = loads(db)
        bares, parses, agains = [], [], []
        for i in range(repeat):
            bares.append(timed(lambda i=i: bare_download(emu, work / f"again{i}"))[0])
            seconds, parsed = timed(lambda i=i: parse_pages(work / f"again{i}"))
            parses.append(seconds)
            check(parsed == truth, "parse floor count")
            seconds, summary = timed(lambda: our_sync(emu, db))
            agains.append(seconds)
            written = sum(r.new + len(r.updated) for r in summary.results)
            check(written == 0 and loads(db) == before, f"no-change re-sync wrote {written} runs")
        bare, parse, again = median(bares), median(parses), median(agains)
        rows.append(Row("3. no-change re-sync (0 rows written)", f"ours {again:.2f} s",
                        f"bare download {bare:.2f} s (+ JSON parse alone {parse:.2f} s)", again / bare, "<=1.2x"))  # fmt: skip

        emu.truth = emu.send("churn", (0.10, 0.05))
        incremental, summary = timed(lambda: our_sync(emu, db))
        new, updated = sum(r.new for r in summary.results), sum(len(r.updated) for r in summary.results)
        stored = warehouse_counts(db)
        check(stored[0] == stored[1] and new > 0 and updated > 0, "incremental counts")
        rows.append(Row(f"4. incremental: 10% changed, 5% new ({updated:,} updated, {new:,} new)",
                        f"ours {incremental:.2f} s", f"first sync {ours:.2f} s", None, ""))  # fmt: skip

        # The peer runs last and once (minutes): its pipeline leaves a large heap behind in this
        # process. It loads the same number of visible runs as our first sync did (the churn
        # replaced 5% of them).
        peer, peer_runs = timed(lambda: peer_rest_api(emu, work / "peer"))
        check(peer_runs == emu.run_count, f"peer loaded {peer_runs} of {emu.run_count} runs")
        peer_row = Row(
            "1. vs dlt rest_api (defaults)", f"ours {ours:.2f} s", f"peer {peer:.2f} s", peer / ours, ">=5.0x"
        )
        rows.insert(len(rows) - 2, peer_row)
    finally:
        emu.stop()


def case_latency(work: Path, accounts: int, rows: list[Row], repeat: int) -> None:
    """Case 2: the fan-out over requests of 50 ms each, against 8 in flight at all times."""
    emu = Emulator(accounts, 5, latency=0.05)
    try:
        walls = []
        for i in range(repeat):
            db = work / f"latency{i}" / "recoup.duckdb"
            wall, summary = timed(lambda db=db: our_sync(emu, db))
            walls.append(wall)
            check(
                summary.exit_code == 0 and warehouse_counts(db)[0] == emu.run_count, "latency case row count"
            )
        wall, ideal = median(walls), summary.requests * 0.05 / 8
        rows.append(Row(f"2. fan-out, {accounts:,} accounts, 50 ms per request ({summary.requests:,} requests)",
                        f"ours {wall:.2f} s", f"ideal {ideal:.2f} s", wall / ideal, "<=1.3x"))  # fmt: skip
    finally:
        emu.stop()


def case_memory(work: Path, accounts: int, rows: list[Row], repeat: int) -> None:
    """Case 5: the peak RSS of one first sync, as cron runs it in a process of its own."""
    emu = Emulator(accounts, 100)
    try:
        listed = work / "accounts.txt"
        listed.write_text("\n".join(emu.accounts))
        env = {**os.environ, "RECOUP_API_KEY": emu.key, "RECOUP_BASE_URL": emu.url, "RECOUP_ACCOUNTS": f"@{listed}",
               "RECOUP_DB": str(work / "memory" / "recoup.duckdb"), "RECOUP_MAX_RPM": "0"}  # fmt: skip
        probe = ("import resource, subprocess, sys; p = subprocess.run([sys.executable, '-m', 'pipelines.recoup_pipeline'],"
                 " capture_output=True); print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=True
        )
        code, peak_kb = map(int, done.stdout.split())
        check(
            code == 0 and warehouse_counts(work / "memory" / "recoup.duckdb")[0] == emu.run_count,
            "memory case rows",
        )
        rows.append(Row(f"5. peak RSS, one sync of {emu.run_count:,} runs", f"{peak_kb / 1024:.0f} MB", "target 300 MB",
                        peak_kb / 1024, "<=300 MB"))  # fmt: skip
    finally:
        emu.stop()


def case_pace(work: Path, accounts: int, rows: list[Row], repeat: int, budget: int) -> None:
    """Production's pace, scaled by 20: 300 requests/min becomes 6,000, details need one each."""
    cap = 6000
    emu = Emulator(accounts, 100, latency=0.05, profile="observed", finished=True)
    try:
        lists, stops, walls = [], [], []
        for i in range(repeat):
            db = work / f"pace{i}" / "recoup.duckdb"
            wall, summary = timed(
                lambda db=db: our_sync(emu, db, RECOUP_MAX_RPM=str(cap), RECOUP_SYNC_SECONDS=str(budget))
            )
            check(summary.exit_code == 0 and warehouse_counts(db)[0] == emu.run_count, "pace case row count")
            check(summary.followups.details_deferred > 0, "the budget left details for later")
            lists.append(summary.lists_done)
            stops.append(summary.followups.last_started_at or 0.0)
            walls.append(wall)
        ideal = accounts / (cap / 60)
        done, stop, wall = median(lists), median(stops), median(walls)
        rows.append(Row(f"7. pace: lists of {accounts:,} accounts x 100 finished runs, cap {cap:,}/min, 50 ms",
                        f"last list {done:.2f} s", f"ideal {ideal:.2f} s (accounts / cap)", done / ideal, "<=1.15x"))  # fmt: skip
        rows.append(Row(f"7. pace: RECOUP_SYNC_SECONDS={budget} (whole sync {wall:.1f} s)",
                        f"last request by id started {stop:.2f} s", f"budget {budget} s", stop / budget, "<=1.0x"))  # fmt: skip
    finally:
        emu.stop()


def case_drain(work: Path, accounts: int, rows: list[Row], budget: int) -> None:
    """Repeated budgeted syncs work the details backlog off, each run fetched once."""
    cap = 6000
    emu = Emulator(accounts, 100, latency=0.05, profile="observed", finished=True)
    try:
        db = work / "drain" / "recoup.duckdb"
        syncs, pending = 0, None
        while pending != 0 and syncs < 50:
            summary = our_sync(emu, db, RECOUP_MAX_RPM=str(cap), RECOUP_SYNC_SECONDS=str(budget))
            check(summary.exit_code == 0, "drain sync failed")
            syncs, pending = syncs + 1, summary.details_pending
        fetched = emu.send("retrieved")
        check(pending == 0 and len(fetched) == emu.run_count, f"drained {len(fetched)} of {emu.run_count}")
        check(max(fetched.values()) == 1, "a run was fetched twice")
        rows.append(Row(f"7. backlog: {emu.run_count:,} details, cap {cap:,}/min, {budget} s budget",
                        f"{syncs} syncs, each run fetched once", f"ideal {emu.run_count / (cap / 60) / budget:.1f} syncs",
                        None, ""))  # fmt: skip
    finally:
        emu.stop()


_TEXT_KEYS = ("id", "observation_id", "run_id", "attempt_id", "_dlt_id", "_dlt_root_id", "_dlt_parent_id")
_TIMES = ("created_at", "updated_at", "started_at", "finished_at", "delayed_until", "expired_at", "completed_at",
          "seen_at")  # fmt: skip


def _recount_page_marks(con: duckdb.DuckDBPyConnection) -> None:
    """The accounts hold more runs now: their last pages stay known, as they would have (the
    page marks in dlt's latest stored state get the new counts)."""
    row = con.execute("select state, _dlt_id from raw._dlt_pipeline_state"
                      " order by created_at desc, version desc limit 1").fetchone()  # fmt: skip
    state = decompress_state(row[0])
    counts = dict(con.execute("select account_id, count(*) from raw.runs group by 1").fetchall())
    for account, mark in state["sources"][SOURCE_NAME][STATE_KEY].items():
        mark["stored"] = counts.get(account, mark["stored"])
    con.execute(
        "update raw._dlt_pipeline_state set state = ? where _dlt_id = ?", [compress_state(state), row[1]]
    )


def grow_history(db: Path, target: int) -> int:
    """Copies the synced runs back in time until the warehouse holds `target` runs.

    Every copy keeps the real rows' shape (tags, attempts, metadata, list and details answers)
    and moves them two weeks further back per copy, as an older history would be.
    """
    finished = [status for status, group in GROUP_OF_STATUS.items() if group in TERMINAL_GROUPS]
    with duckdb.connect(str(db), config={"memory_limit": "4GB"}) as con:  # setting up, not measured
        base = scalar(con.execute("select count(*) from raw.runs"))
        tables = [t for (t,) in con.execute(
            "select table_name from information_schema.tables where table_schema = 'raw' and table_name like 'run%'"
            " and table_type = 'BASE TABLE'"
        ).fetchall()]  # fmt: skip
        for copy in range(1, -(-target // base)):
            for table in tables:
                names = [c for (c,) in con.execute(
                    "select column_name from information_schema.columns where table_schema = 'raw' and table_name = ?",
                    [table]).fetchall()]  # fmt: skip
                shifted = [f"{c} || '~{copy}' as {c}" for c in names if c in _TEXT_KEYS]
                shifted += [f"{c} - interval {14 * copy} day as {c}" for c in names if c in _TIMES]
                if table in ("runs", "run_details"):  # runs that old have finished long ago
                    shifted.append(
                        f"case when status in {tuple(finished)} then status else 'COMPLETED' end as status"
                    )
                con.execute(f"insert into raw.{table} select * replace ({', '.join(shifted)}) from raw.{table}"
                            f" where {'id' if 'id' in names else 'run_id'} not like '%~%'")  # fmt: skip
        _recount_page_marks(con)
        warehouse.create_sync_tables(con)
        apply_models(con)
        con.execute("checkpoint")
        return scalar(con.execute("select count(*) from raw.runs"))


def case_history(work: Path, accounts: int, rows: list[Row], repeat: int, big: int) -> Path:
    """The same small sync on a warehouse of `big` runs and on one of about 100 runs an account."""
    emu = Emulator(accounts, 100)
    try:
        small = work / "history-small" / "recoup.duckdb"
        summary = our_sync(emu, small)
        check(summary.exit_code == 0 and warehouse_counts(small)[0] == emu.run_count, "history base sync")
        large = work / "history-large" / "recoup.duckdb"
        large.parent.mkdir(parents=True)
        shutil.copyfile(small, large)
        stored = grow_history(large, big)
        sizes = {db: db.stat().st_size / 2**30 for db in (small, large)}
        times: dict[Path, list[float]] = {small: [], large: []}
        peaks: list[float] = []
        for i in range(repeat):
            emu.truth = emu.send("add", (10, 5))
            for db in (small, large) if i % 2 == 0 else (large, small):
                seconds, code, peak = sync_process(emu, db)
                check(code == 0, f"history sync exit {code}")
                times[db].append(seconds)
                if db == large:
                    peaks.append(peak)
        check(warehouse_counts(large)[0] == stored + 50 * repeat, "history sync row count")
        fast, slow = median(times[small]), median(times[large])
        rows.append(Row(f"8. history: a sync adding 50 runs to 10 of {accounts:,} accounts, {stored:,} runs stored"
                        f" ({sizes[large]:.2f} GB)", f"ours {slow:.2f} s",
                        f"{emu.run_count:,} stored ({sizes[small]:.2f} GB): {fast:.2f} s", slow / fast, "<=1.5x"))  # fmt: skip
        rows.append(Row(f"8. history: peak RSS of that sync at {stored:,} runs", f"{max(peaks):.0f} MB",
                        "target 300 MB", max(peaks), "<=300 MB"))  # fmt: skip
        lakes(work, emu, {"small": small, "large": large}, stored, rows, repeat)
        copies = []
        for _ in range(repeat):
            copies.append(timed(lambda: shutil.copyfile(large, large.with_name("copy.duckdb")))[0])
            with open(large.with_name("copy.duckdb"), "rb+") as handle:
                copies[-1] += timed(lambda handle=handle: os.fsync(handle.fileno()))[0]
            large.with_name("copy.duckdb").unlink()
        per_gb = median(copies) / sizes[large]
        rows.append(Row("8. history: the working copy (copy + fsync) per GB of warehouse", f"{per_gb:.2f} s/GB",
                        f"{median(copies):.2f} s for {sizes[large]:.2f} GB", None, ""))  # fmt: skip
        return large
    finally:
        emu.stop()


def lakes(
    work: Path, emu: Emulator, files: dict[str, Path], stored: int, rows: list[Row], repeat: int
) -> None:
    """The same syncs into DuckLakes (a private PostgreSQL catalog), beside the file warehouse.

    The two history files are migrated into two lakes, then each lake takes the same small
    syncs; a first sync into an empty lake is timed against one into a new file.
    """
    try:
        cluster = PostgresCluster()
    except PostgresMissing as exc:
        print(f"bench: lake cases skipped: {exc}", file=sys.stderr)
        return
    cluster.start()
    try:

        def lake(name: str) -> dict[str, str]:
            database = cluster.new_database()
            return {"RECOUP_LAKE": f"postgres:{cluster.conninfo(database)}", "PGPASSWORD": PG_PASSWORD,
                    "RECOUP_LAKE_DATA": str(work / f"lake-{name}") + "/"}  # fmt: skip

        envs = {name: lake(name) for name in files}
        for name, db in files.items():
            env = {**os.environ, **sync_env(emu, db), **envs[name]}
            done = subprocess.run([sys.executable, "-m", "pipelines.lake", "migrate", "--from", str(db)], cwd=ROOT,
                                  env=env, capture_output=True, text=True)  # fmt: skip
            check(done.returncode == 0, f"migrating {name} into a lake: {done.stderr.strip()[-300:]}")
        times: dict[str, list[float]] = {name: [] for name in files}
        for i in range(repeat):
            emu.truth = emu.send("add", (10, 5))
            for name in files if i % 2 == 0 else reversed(list(files)):
                seconds, code, _ = sync_process(
                    emu, work / f"lake-{name}-work" / "recoup.duckdb", **envs[name]
                )
                check(code == 0, f"lake sync exit {code}")
                times[name].append(seconds)
        fast, slow = median(times["small"]), median(times["large"])
        rows.append(Row(f"9. lake: a sync adding 50 runs to 10 accounts, {stored:,} runs in the lake",
                        f"ours {slow:.2f} s", f"{emu.run_count:,}-run lake: {fast:.2f} s", slow / fast, "<=1.3x"))  # fmt: skip
        firsts: dict[str, float] = {}
        for name, overrides in (("file", {}), ("lake", lake("first"))):
            seconds, code, _ = sync_process(emu, work / f"first-{name}" / "recoup.duckdb", **overrides)
            check(code == 0, f"first sync into the {name} exit {code}")
            firsts[name] = seconds
        rows.append(Row(f"9. lake: first sync of {emu.run_count:,} runs into an empty lake", f"lake {firsts['lake']:.2f} s",
                        f"file {firsts['file']:.2f} s ({firsts['lake'] / firsts['file']:.2f}x)", None, ""))  # fmt: skip
    finally:
        cluster.stop()


def case_analytics(work: Path, db: Path, rows: list[Row], repeat: int) -> None:
    """`make models` (a full rebuild) and the report over the large synced history."""
    with duckdb.connect(str(db), read_only=True) as con:
        runs = scalar(con.execute("select count(*) from analytics.runs"))
    env = {**os.environ, "RECOUP_DB": str(db), "RECOUP_REPORTS_DIR": str(work / "reports")}
    builds, reports = [], []
    for _ in range(repeat):
        with warehouse.connect(db, warehouse.MODEL_LIMITS) as con:  # as `make models` does
            builds.append(timed(lambda con=con: apply_models(con))[0])
            check(
                scalar(con.execute("select count(*) from analytics.runs")) == runs,
                "analytics row count",
            )
        seconds, done = timed(lambda: subprocess.run([sys.executable, "-m", "pipelines.report"], cwd=ROOT, env=env,
                                                     capture_output=True, text=True))  # fmt: skip
        reports.append(seconds)
        check(done.returncode == 0, f"report failed: {done.stderr.strip()}")
    models, report = median(builds), median(reports)
    total = models + report
    rows.append(Row(f"6. full model rebuild + make report over {runs:,} synced runs",
                    f"{total:.2f} s (models {models:.2f}, report {report:.2f})", "target 3 s", total, "<=3.0s"))  # fmt: skip


def machine() -> str:
    """One line describing this machine: cores, CPU model, memory and Python."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, StopIteration):
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, Python {platform.python_version()}, {platform.system()}"


def write_doc(rows: list[Row], quick: bool, seconds: float) -> None:
    """Writes the results table into docs/benchmarks.md, keeping its hand-written notes."""
    lines = ["# Benchmarks", "", f"Machine: {machine()}.", "",
             f"Command: `make bench{' QUICK=1' if quick else ''}` ({seconds:.0f} s in all). Ratios come from one invocation;",
             f"each timed figure is the median of {REPEAT} runs, interleaved with its reference's runs (this machine",
             "is a shared VM: single runs of the same case varied by up to 40%); absolute times are context only.",
             "The emulator serves from its own process; every system's row counts are checked against the",
             "emulator's truth before its time is reported.", "",
             "| case | measured | reference | ratio | target | met |", "|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        ratio = "" if r.ratio is None else f"{r.ratio:.2f}"
        lines.append(f"| {r.case} | {r.measured} | {r.reference} | {ratio} | {r.target} | {r.met} |")
    DOC.parent.mkdir(exist_ok=True)
    existing = DOC.read_text() if DOC.exists() else ""
    notes = existing[existing.index("## Notes") :] if "## Notes" in existing else ""
    DOC.write_text("\n".join(lines) + "\n\n" + notes)


def main() -> int:
    """Runs the chosen cases (all, or those in CASES), prints the table; returns the exit code."""
    quick = os.environ.get("QUICK", "") not in ("", "0")
    sizes = {"accounts": 40, "latency": 40, "memory": 50, "pace": 60, "drain": 5, "history": 40, "big": 20_000} if quick \
        else {"accounts": 1000, "latency": 1000, "memory": 5000, "pace": 1000, "drain": 50, "history": 1000,
              "big": 2_000_000}  # fmt: skip
    repeat = 1 if quick else REPEAT
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="recoup-bench-"))
    rows: list[Row] = []
    try:
        cases: list[tuple[str, Callable[[], Any]]] = [
            ("throughput", lambda: cases_throughput(work, sizes["accounts"], rows, repeat)),
            ("latency", lambda: case_latency(work, sizes["latency"], rows, repeat)),
            ("memory", lambda: case_memory(work, sizes["memory"], rows, repeat)),
            ("pace", lambda: case_pace(work, sizes["pace"], rows, repeat, 3 if quick else 20)),
            ("backlog", lambda: case_drain(work, sizes["drain"], rows, 2 if quick else 10)),
        ]
        chosen = set(filter(None, os.environ.get("CASES", "").split(","))) or None  # e.g. CASES=pace,history
        for name, case in cases:
            if chosen and name not in chosen:
                continue
            print(f"bench: {name} ...", file=sys.stderr, flush=True)
            done = len(rows)
            case()
            for row in rows[done:]:
                print(f"bench:   {row.case}: {row.measured} vs {row.reference}", file=sys.stderr, flush=True)
        done = len(rows)
        if not chosen or "history" in chosen:
            print("bench: history ...", file=sys.stderr, flush=True)
            large = case_history(work, sizes["history"], rows, repeat, sizes["big"])
            print("bench: analytics ...", file=sys.stderr, flush=True)
            case_analytics(work, large, rows, repeat)
        for row in rows[done:]:
            print(f"bench:   {row.case}: {row.measured} vs {row.reference}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - started
    width = max(len(r.case) for r in rows)
    for r in rows:
        ratio = "" if r.ratio is None else f"{r.ratio:6.2f}"
        print(f"{r.case:<{width}}  {r.measured:<34} {r.reference:<42} {ratio:>6} {r.target:>9} {r.met}")
    if quick:
        print(json.dumps({"rows": len(rows)}))
    elif chosen:
        print("bench: a subset of the cases (CASES): docs/benchmarks.md is left as it is")
    else:
        write_doc(rows, quick, elapsed)
        print(f"bench: wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
