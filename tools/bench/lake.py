"""Case 9: the same syncs into DuckLakes with a private PostgreSQL catalog (skipped without PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from statistics import median

from tools.bench.harness import ROOT, Emulator, Row, check, sync_env, sync_process
from tools.local_postgres import PG_PASSWORD, PostgresCluster, PostgresMissing


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
            done = subprocess.run([sys.executable, "-m", "pipelines.cli", "lake", "migrate", "--from", str(db)], cwd=ROOT,
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
