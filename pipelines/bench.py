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

from pipelines import warehouse
from pipelines.config import load_settings
from pipelines.emulator import EmulatorServer, World
from pipelines.emulator.render import to_list_item
from pipelines.models import apply_models
from pipelines.recoup.client import RetryPolicy
from pipelines.recoup_pipeline import run_sync

ROOT = Path(__file__).resolve().parent.parent
REPEAT = 3  # each timed case runs this often, interleaved with its reference; medians are reported
DOC = ROOT / "docs" / "benchmarks.md"


# -- the emulator in its own process ----------------------------------------------------------


def _serve(conn: Any, accounts: int, runs: int, latency: float) -> None:
    world = World(accounts=accounts, runs_per_account=runs, seed=99)
    world.latency = latency
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

    def __init__(self, accounts: int, runs: int, latency: float = 0.0) -> None:
        self._conn, child = mp.Pipe()
        self._process = mp.get_context("fork").Process(
            target=_serve, args=(child, accounts, runs, latency), daemon=True
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
        self._conn.send((command, args))
        return self._conn.recv()

    def stop(self) -> None:
        self.send("stop")
        self._process.join(5)

    @property
    def run_count(self) -> int:
        return sum(len(ids) for ids in self.truth.values())


# -- the systems compared ---------------------------------------------------------------------


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()  # no system pays for the garbage of the one measured before it
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def our_sync(emu: Emulator, db: Path, concurrency: int = 8) -> Any:
    env = {"RECOUP_API_KEY": emu.key, "RECOUP_BASE_URL": emu.url, "RECOUP_ACCOUNTS": ",".join(emu.accounts),
           "RECOUP_DB": str(db), "RECOUP_MAX_RPM": "0", "RECOUP_MAX_CONCURRENCY": str(concurrency)}  # fmt: skip
    return run_sync(load_settings(env), retry=RetryPolicy(attempts=3, backoff=0.05))


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
        return {
            t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in ("runs", "tags", "attempts")
        }


def parse_pages(folder: Path) -> int:
    """The floor for reading a page at all: orjson over every saved page, one thread."""
    return sum(len(orjson.loads(path.read_bytes())["runs"]) for path in folder.glob("*.json"))


def peer_rest_api(emu: Emulator, folder: Path) -> int:
    """dlt's generic rest_api source for the same endpoint and accounts, default settings."""
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
        return con.execute("select count(distinct id) from peer.runs").fetchone()[0]


def warehouse_counts(db: Path) -> tuple[int, int]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("select count(*), count(distinct run_id) from analytics.runs").fetchone()


def loads(db: Path) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("select count(*) from raw._dlt_loads").fetchone()[0]


# -- cases ---------------------------------------------------------------------------------------


@dataclass
class Row:
    case: str
    measured: str
    reference: str
    ratio: float | None
    target: str

    @property
    def met(self) -> str:
        if self.ratio is None:
            return ""
        op, bound = self.target[:2], float(self.target[2:].rstrip("x MBs"))
        return "yes" if (self.ratio <= bound if op == "<=" else self.ratio >= bound) else "NO"


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SystemExit(f"bench: correctness check failed: {message}")


def cases_throughput(work: Path, accounts: int, rows: list[Row], repeat: int) -> None:
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
    emu = Emulator(accounts, 100)
    try:
        accounts = work / "accounts.txt"
        accounts.write_text("\n".join(emu.accounts))
        env = {**os.environ, "RECOUP_API_KEY": emu.key, "RECOUP_BASE_URL": emu.url, "RECOUP_ACCOUNTS": f"@{accounts}",
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


def case_analytics(work: Path, runs: int, rows: list[Row], repeat: int) -> None:
    db = work / "analytics" / "recoup.duckdb"
    db.parent.mkdir(parents=True)
    with duckdb.connect(str(db)) as con:
        from pipelines.warehouse import RAW_TABLES, add_placeholders

        con.execute("create schema raw")
        for name, columns in RAW_TABLES.items():
            con.execute(f"create table raw.{name} ({', '.join(f'{c} {t}' for c, t in columns.items())})")
        con.execute(f"""insert into raw.runs (id, account_id, status, task_identifier, created_at, updated_at, started_at,
            seen_at, is_test, env_name, cost_in_cents, base_cost_in_cents, duration_ms, has_attempts, has_error,
            error_message, observation_id, attempts_listed)
            select 'run_' || i, 'acct-' || (i % 1000), ['COMPLETED','COMPLETED','COMPLETED','FAILED','EXECUTING'][1 + i % 5],
                'task-' || (i % 12), now() - to_seconds(i % 2592000), now(), now() - to_seconds(i % 2592000) + interval 3 second,
                now(), i % 17 = 0, ['prod','dev'][1 + i % 2], (i % 997) / 7.0, 0.0025, 1000 + i % 600000, true, true,
                case when i % 5 = 3 then 'error ' || (i % 7) end, 'o' || i, 1
            from range({runs}) t(i)""")  # fmt: skip
        con.execute(f"""insert into raw.runs__tags (run_id, observation_id, tag_index, value)
            select 'run_' || i, 'o' || i, j, 'k' || j || ':v' || (i % 50) from range({runs}) t(i), range(3) s(j)""")
        con.execute(f"""insert into raw.runs__attempts (run_id, observation_id, attempt_id, attempt_number, status)
            select 'run_' || i, 'o' || i, 'a' || i, 1, 'COMPLETED' from range({runs}) t(i)""")
        add_placeholders(con)
    env = {**os.environ, "RECOUP_DB": str(db), "RECOUP_REPORTS_DIR": str(work / "reports")}
    builds, reports = [], []
    for _ in range(repeat):
        with warehouse.connect(db, warehouse.MODEL_LIMITS) as con:  # as `make models` and every sync do
            builds.append(timed(lambda con=con: apply_models(con))[0])
            check(
                con.execute("select count(*) from analytics.runs").fetchone()[0] == runs,
                "analytics row count",
            )
        seconds, done = timed(lambda: subprocess.run([sys.executable, "-m", "pipelines.report"], cwd=ROOT, env=env,
                                                     capture_output=True, text=True))  # fmt: skip
        reports.append(seconds)
        check(done.returncode == 0, f"report failed: {done.stderr.strip()}")
    models, report = median(builds), median(reports)
    total = models + report
    rows.append(Row(f"6. models + make report over {runs:,} runs", f"{total:.2f} s (models {models:.2f}, report {report:.2f})",
                    "target 3 s", total, "<=3.0s"))  # fmt: skip


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, StopIteration):
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, Python {platform.python_version()}, {platform.system()}"


def write_doc(rows: list[Row], quick: bool, seconds: float) -> None:
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
    quick = os.environ.get("QUICK", "") not in ("", "0")
    sizes = {"accounts": 40, "latency": 40, "memory": 50, "analytics": 20_000} if quick else \
        {"accounts": 1000, "latency": 1000, "memory": 5000, "analytics": 1_000_000}  # fmt: skip
    repeat = 1 if quick else REPEAT
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="recoup-bench-"))
    rows: list[Row] = []
    try:
        for name, case, size in (("throughput", cases_throughput, sizes["accounts"]), ("latency", case_latency, sizes["latency"]),
                                 ("memory", case_memory, sizes["memory"]), ("analytics", case_analytics, sizes["analytics"])):  # fmt: skip
            print(f"bench: {name} ...", file=sys.stderr, flush=True)
            done = len(rows)
            case(work, size, rows, repeat)
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
    else:
        write_doc(rows, quick, elapsed)
        print(f"bench: wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
