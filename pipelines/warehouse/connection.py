"""Connections to the warehouse file within a bounded memory budget."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import duckdb

from pipelines.query import use_settings

# Moves an open connection to other limits (the load's budget, then the models').
use_limits = use_settings

# DuckDB takes up to 80% of RAM by default. Each step gets what it needs, within the cap
# (RECOUP_MEMORY_MB, by default a quarter of the machine's memory), and spills beyond it into
# DuckDB's temporary folder beside the file it works on (`<file>.tmp`, removed when it closes):
# - the load, on one thread (a second one needs more memory than it saves time): 128 MB
#   (DuckDB 1.5 ran out of 64 MB merging the tags of a 95 k-run first sync, and dlt retried
#   the job), plus room for large JSON values (memory_for);
# - the models, on every core: 128 MB (an update at two million runs needs more than 64 MB);
# - `recoup models`, a full rebuild (committed step by step, pipelines/models/staged.py, so
#   that 128 MB is enough at two million runs): 128 MB plus 256 MB per million stored runs, for
#   its joins over every run to spill less (2.09 M runs rebuilt in 14.5 s within 128 MB, 9.6 s
#   within 512 MB, 7.8 s within 768 MB). A sync's own full rebuild keeps the models' 128 MB, so
#   that its peak memory does not grow with the history (a first sync of 476 k runs peaked at
#   584 MB with it, 505 MB without);
# - the lake's models, inside the lake's one transaction per sync: 1 GB;
# - lake maintenance (`make maintain`), merging many small files into a few large ones: 256 MB;
# - `recoup restore`, replaying an archive's points (2 M runs ran out of 128 MB inserting the
#   snapshot's runs): 1 GB.
STEP_NEEDS_MB = {
    "load": 128,
    "models": 128,
    "rebuild": 128,
    "lake models": 1024,
    "maintain": 256,
    "restore": 1024,
}
REBUILD_MB_PER_MILLION_RUNS = 256  # what a full rebuild asks for beyond STEP_NEEDS_MB, per stored run
STEP_THREADS = {"load": 1}


def machine_share_mb() -> int:
    """The default cap: a quarter of the machine's memory, in MB."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4 // 2**20


def step_limits(
    step: str, cap_mb: int | None = None, large_bytes: int = 0, runs: int = 0
) -> dict[str, str | int]:
    """DuckDB's memory and threads for `step` (a key of STEP_NEEDS_MB), within `cap_mb`.

    `large_bytes` of large JSON values weigh on the load and the models; `runs`, the stored
    runs, on a full rebuild.
    """
    need = STEP_NEEDS_MB[step]
    if step in ("load", "models", "rebuild"):
        need += memory_for(large_bytes)
    if step == "rebuild":
        need += REBUILD_MB_PER_MILLION_RUNS * runs // 1_000_000
    budget = min(need, cap_mb or machine_share_mb())
    return {"memory_limit": f"{budget}MB", "threads": STEP_THREADS.get(step, os.cpu_count() or 1)}


def memory_for(large_bytes: int) -> int:
    """The MB a load holding `large_bytes` of large JSON values needs beyond its 128 MB.

    Rows of ordinary size spill to disk within 64 MB; large values do not (300 runs with 50 KB of
    metadata each failed the load at 64 MB, 300 with 200 KB failed at 128 MB and the checkpoint
    after at 64 MB), so each byte of them gets five of budget.
    """
    return 5 * large_bytes // 2**20


def connect(path: Path, limits: Mapping[str, str | int] | None = None) -> duckdb.DuckDBPyConnection:
    """A read-write connection with bounded memory (by default the load's): large work spills to disk."""
    return duckdb.connect(
        str(path), config={**(limits or step_limits("load")), "preserve_insertion_order": False}
    )
