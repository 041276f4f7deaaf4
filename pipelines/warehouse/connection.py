"""Connections to the warehouse file within a bounded memory budget."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import duckdb

# DuckDB takes up to 80% of RAM by default. Both steps run within a small budget and spill
# beyond it: the load on one thread (a second one needs more memory than it saves time) within
# 128 MB (DuckDB 1.5 ran out of 64 MB merging the tags of a 95k-run first sync, and dlt retried
# the job), the model updates on every core within 128 MB (an update at two million runs needs
# more than 64 MB; a build that runs out is tried again with more, see pipelines/models/runner.py).
LOAD_LIMITS: dict[str, str | int] = {"memory_limit": "128MB", "threads": 1}
MODEL_LIMITS: dict[str, str | int] = {"memory_limit": "128MB", "threads": os.cpu_count() or 1}


def memory_for(large_bytes: int) -> str:
    """DuckDB's budget for a load holding `large_bytes` of large JSON values.

    Rows of ordinary size spill to disk within 64 MB; large values do not (300 runs with 50 KB of
    metadata each failed the load at 64 MB, 300 with 200 KB failed at 128 MB and the checkpoint
    after at 64 MB), so each byte of them gets five of budget beyond the load's 128 MB, up to a quarter of the
    memory.
    """
    ceiling = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    budget = min(128 * 2**20 + 5 * large_bytes, ceiling)
    return f"{budget // 2**20}MB"


def use_limits(con: duckdb.DuckDBPyConnection, limits: Mapping[str, str | int]) -> None:
    """Moves an open connection to other limits (the load's budget, then the models')."""
    for name, value in limits.items():
        con.execute(f"set {name} = '{value}'")


def connect(path: Path, limits: Mapping[str, str | int] = LOAD_LIMITS) -> duckdb.DuckDBPyConnection:
    """A read-write connection with bounded memory: large work spills to disk instead."""
    return duckdb.connect(str(path), config={**limits, "preserve_insertion_order": False})
