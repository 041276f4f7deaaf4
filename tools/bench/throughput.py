"""Cases 1, 3 and 4: a first sync, a no-change re-sync and an incremental one, beside their floors.

The floors are what the machine allows: the bare HTTP download, DuckDB parsing the saved pages
itself, orjson alone; the peer is dlt's generic rest_api source on the same endpoint.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from statistics import median
from typing import Any

import duckdb
import httpx
import orjson

from tools.bench.harness import Emulator, Row, check, first_row, loads, our_sync, timed, warehouse_counts


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
        return {t: first_row(con, f"select count(*) from {t}")[0] for t in ("runs", "tags", "attempts")}


def parse_pages(folder: Path) -> int:
    """The floor for reading a page at all: orjson over every saved page, one thread."""
    return sum(len(orjson.loads(path.read_bytes())["runs"]) for path in folder.glob("*.json"))


def peer_rest_api(emu: Emulator, folder: Path) -> int:
    """The peer: the generic rest_api source of dlt for the same endpoint and accounts, its defaults."""
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
        return first_row(con, "select count(distinct id) from peer.runs")[0]


def cases_throughput(work: Path, accounts: int, rows: list[Row], repeat: int) -> None:
    """A first sync of `accounts` x 100 runs, a no-change re-sync and an incremental one; then the peer."""
    emu = Emulator(accounts, 100)
    try:
        truth = emu.run_count
        https, loads_, ours_ = [], [], []
        for i in range(repeat):  # interleaved, so that the machine's drift touches every system alike
            seconds, size = timed(bare_download, emu, work / f"pages{i}")
            https.append(seconds)
            seconds, counts = timed(duckdb_load, work / f"pages{i}", work / f"limit{i}.duckdb")
            loads_.append(seconds)
            check(counts["runs"] == truth, f"DuckDB floor loaded {counts['runs']} of {truth} runs")
            db = work / f"ours{i}" / "recoup.duckdb"
            seconds, summary = timed(our_sync, emu, db)
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
            bares.append(timed(bare_download, emu, work / f"again{i}")[0])
            seconds, parsed = timed(parse_pages, work / f"again{i}")
            parses.append(seconds)
            check(parsed == truth, "parse floor count")
            seconds, summary = timed(our_sync, emu, db)
            agains.append(seconds)
            written = sum(r.new + len(r.updated) for r in summary.results)
            check(written == 0 and loads(db) == before, f"no-change re-sync wrote {written} runs")
        bare, parse, again = median(bares), median(parses), median(agains)
        rows.append(Row("3. no-change re-sync (0 rows written)", f"ours {again:.2f} s",
                        f"bare download {bare:.2f} s (+ JSON parse alone {parse:.2f} s)", again / bare, "<=1.2x"))  # fmt: skip

        emu.truth = emu.send("churn", (0.10, 0.05))
        incremental, summary = timed(our_sync, emu, db)
        new, updated = sum(r.new for r in summary.results), sum(len(r.updated) for r in summary.results)
        stored = warehouse_counts(db)
        check(stored[0] == stored[1] and new > 0 and updated > 0, "incremental counts")
        rows.append(Row(f"4. incremental: 10% changed, 5% new ({updated:,} updated, {new:,} new)",
                        f"ours {incremental:.2f} s", f"first sync {ours:.2f} s", None, ""))  # fmt: skip

        # The peer runs last and once (minutes): its pipeline leaves a large heap behind in this
        # process. It loads the same number of visible runs as our first sync did (the churn
        # replaced 5% of them).
        peer, peer_runs = timed(peer_rest_api, emu, work / "peer")
        check(peer_runs == emu.run_count, f"peer loaded {peer_runs} of {emu.run_count} runs")
        peer_row = Row(
            "1. vs dlt rest_api (defaults)", f"ours {ours:.2f} s", f"peer {peer:.2f} s", peer / ours, ">=5.0x"
        )
        rows.insert(len(rows) - 2, peer_row)
    finally:
        emu.stop()
