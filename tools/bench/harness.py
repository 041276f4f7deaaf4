"""What every benchmark case shares: the emulator in its own process, timing, peak memory, the doc."""

from __future__ import annotations

import contextlib
import gc
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import orjson

from pipelines.config import load_settings
from pipelines.emulator import EmulatorServer, World
from pipelines.emulator.render import to_list_item
from pipelines.emulator.statuses import TERMINAL
from pipelines.query import one_row
from pipelines.recoup.client import RetryPolicy
from pipelines.sync import run_sync

ROOT = Path(__file__).resolve().parents[2]
REPEAT = 3  # each timed case runs this often, interleaved with its reference; medians are reported
DOC = ROOT / "docs" / "benchmarks.md"
T = TypeVar("T")


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
        """Sends a command to the world (stop, latency, retrieved, add, churn); returns its answer."""
        self._conn.send((command, args))
        return self._conn.recv()

    def stop(self) -> None:
        """Stops the server and its process."""
        self.send("stop")
        self._process.join(5)

    @property
    def run_count(self) -> int:
        """The runs the lists show, every account together."""
        return sum(len(ids) for ids in self.truth.values())


# -- running and measuring a sync ---------------------------------------------------------------


def timed(action: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[float, T]:
    """Wall seconds of one call of `action(*args, **kwargs)`, and what it returned."""
    gc.collect()  # no system pays for the garbage of the one measured before it
    started = time.perf_counter()
    result = action(*args, **kwargs)
    return time.perf_counter() - started, result


def sync_env(emu: Emulator, db: Path, **overrides: str) -> dict[str, str]:
    """The settings of a sync of every emulated account, uncapped and without a time budget."""
    env = {"RECOUP_API_KEY": emu.key, "RECOUP_BASE_URL": emu.url, "RECOUP_ACCOUNTS": ",".join(emu.accounts),
           "RECOUP_DB": str(db), "RECOUP_MAX_RPM": "0", "RECOUP_MAX_CONCURRENCY": "8", "RECOUP_SYNC_SECONDS": "0"}  # fmt: skip
    return {**env, **overrides}


def our_sync(emu: Emulator, db: Path, **overrides: str) -> Any:
    """One sync in this process; returns its summary."""
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


def first_row(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[Any, ...]:
    """The first row of a query that always returns one (a count)."""
    return one_row(con.execute(sql))


def warehouse_counts(db: Path) -> tuple[int, int]:
    """Rows and distinct run ids of analytics.runs."""
    with duckdb.connect(str(db), read_only=True) as con:
        rows, runs = first_row(con, "select count(*), count(distinct run_id) from analytics.runs")
        return rows, runs


def loads(db: Path) -> int:
    """How many loads dlt has recorded in the warehouse."""
    with duckdb.connect(str(db), read_only=True) as con:
        return first_row(con, "select count(*) from raw._dlt_loads")[0]


# -- results ------------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the results: what was measured, against what, and whether the target is met."""

    case: str
    measured: str
    reference: str
    ratio: float | None
    target: str

    @property
    def met(self) -> str:
        """`yes` or `NO` against the target; empty for a row without one."""
        if self.ratio is None:
            return ""
        op, bound = self.target[:2], float(self.target[2:].rstrip("x MBs%"))
        return "yes" if (self.ratio <= bound if op == "<=" else self.ratio >= bound) else "NO"


def check(condition: bool, message: str) -> None:
    """Stops the benchmark when a system's result is wrong: no time is reported for it."""
    if not condition:
        raise SystemExit(f"bench: correctness check failed: {message}")


def machine() -> str:
    """Cores, CPU, memory, Python and OS of this machine, in one line."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, StopIteration):
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, Python {platform.python_version()}, {platform.system()}"


def write_doc(rows: list[Row], quick: bool, seconds: float) -> None:
    """Writes docs/benchmarks.md: the machine, the command and the table; keeps its `## Notes`."""
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
