"""`recoup demo`: the whole tool on your machine with no key and no network.

Starts the bundled emulator with a few dozen accounts, runs the real `recoup sync` command twice
(the second after some runs changed, finished or arrived, to show an incremental sync), writes
the cost report, and prints where the warehouse is and a query to try.

Everything goes into a folder of its own, `demo/` (or RECOUP_DEMO_DIR), never into RECOUP_DB:
a demo warehouse and a real one must never be the same file, or the next demo would erase
history the API can no longer give back. Its commands run in that folder with a configuration
of their own: no `RECOUP_*`, `DLT_*` or dlt-style `SECTION__KEY` variable and no project `.dlt/`
reaches them, and the demo refuses to start if anything (a `.dlt/` in its folder, dlt's global
configuration) would still point them at another warehouse or a lake.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipelines import defaults
from pipelines.emulator import EmulatorServer, World

ROOT = Path(__file__).resolve().parent.parent
MARKER = ".demo-warehouse"


# What the demo's own commands would read as their configuration, asked in their folder.
WHAT_THEY_READ = """
import json
from pipelines.config import database_path, load
try:
    config = load()
    lake = config.lake.catalog if config.lake else None
except Exception as exc:
    lake = f"(a broken setting: {exc})"
print(json.dumps({"db": str(database_path().absolute()), "lake": lake}))
"""


def _own_environment(folder: Path) -> dict[str, str]:
    """The parent's environment without any setting of recoup or dlt, dlt's project folder the demo's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECOUP_", "DLT_")) and "__" not in k}
    env["DLT_PROJECT_DIR"] = str(folder)  # dlt reads `.dlt/` there, not in the caller's folder
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return env


def _points_elsewhere(folder: Path, env: dict[str, str], db: Path) -> str | None:
    """Why the demo's commands would not keep to the demo warehouse, or None when they would."""
    from pipelines.lake import describe

    done = subprocess.run([sys.executable, "-c", WHAT_THEY_READ], cwd=folder, env=env, capture_output=True,
                          text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        return f"its configuration cannot be read: {(done.stderr.strip().splitlines() or ['?'])[-1][:200]}"
    seen = json.loads(done.stdout)
    if seen["lake"]:
        return f"its sync would still write into the lake {describe(seen['lake'])}"
    if Path(seen["db"]) != db:
        return f"its sync would still write into {seen['db']}"
    return None


def _recoup(command: str, env: dict[str, str], folder: Path) -> int:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", command], cwd=folder, env=env).returncode


def _change_some_runs(world: World) -> None:
    """What happens upstream between two cron runs: runs finish, costs settle, new runs arrive."""
    world.advance(minutes=15)
    for account in world.account_ids:
        for run_id in world.in_flight(account)[:2]:
            world.complete_run(run_id)
        for _ in range(3):
            world.add_run(account, created_at=world.now - timedelta(minutes=world.rng.randrange(1, 14)))


def run_demo(folder: Path, real_db: Path) -> int:
    """Runs the demo in `folder`; returns 2 when that folder is not the demo's, or holds `real_db`."""
    db = folder / Path(defaults.DB).name
    if db.resolve() == real_db.resolve():
        print(
            f"demo: {db} is RECOUP_DB, the real warehouse; set RECOUP_DEMO_DIR to another folder",
            file=sys.stderr,
        )
        return 2
    if db.exists() and not (folder / MARKER).exists():
        print(f"demo: {db} was not written by a demo; set RECOUP_DEMO_DIR to another folder", file=sys.stderr)
        return 2
    folder.mkdir(parents=True, exist_ok=True)
    own = _own_environment(folder)
    own.update(RECOUP_DB=str(db))
    reason = _points_elsewhere(folder, own, db)
    if reason:
        print(f"demo: refusing to run: {reason} (set in {folder}/.dlt/ or dlt's global configuration)",
              file=sys.stderr)  # fmt: skip
        return 2
    db.unlink(missing_ok=True)  # each demo starts from an empty warehouse
    (folder / MARKER).write_text("this folder's warehouse was filled by `recoup demo`\n")
    print(f"== demo folder: {folder} (RECOUP_DB is not read or written)", flush=True)
    # The emulated clock starts 15 minutes back so that after the second sync it reads "now".
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=15)
    world = World(accounts=36, runs_per_account=110, seed=2026, now=start)
    with EmulatorServer(world) as server:
        env = dict(own)
        env.update(RECOUP_API_KEY=world.demo_key, RECOUP_BASE_URL=server.url, RECOUP_DB=str(db),
                   RECOUP_REPORTS_DIR=str(folder / defaults.REPORTS_DIR), RECOUP_ACCOUNTS=",".join(world.account_ids),
                   RECOUP_MAX_RPM="0")  # fmt: skip
        print(f"== emulator on {server.url} with {len(world.account_ids)} accounts", flush=True)
        print("== first sync (everything is new)", flush=True)
        if _recoup("sync", env, folder) != 0:
            return 1
        _change_some_runs(world)
        print("\n== second sync, 15 minutes later (only what changed)", flush=True)
        if _recoup("sync", env, folder) != 0:
            return 1
    print("\n== cost report", flush=True)
    if _recoup("report", env, folder) != 0:
        return 1
    print(f"""
The warehouse is {db}. Try:
  .venv/bin/python -c "import duckdb; print(duckdb.connect('{db}', read_only=True).sql(
      'select task_identifier, count(*) runs, round(sum(total_cost_usd), 2) usd '
      'from analytics.runs group by 1 order by usd desc'))"
or, with the DuckDB CLI:  .venv/bin/duckdb -readonly {db} "select * from analytics.daily_cost limit 10"
""")
    return 0
