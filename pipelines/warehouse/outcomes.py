"""How each sync ended, kept in a small journal until the next sync records it in the warehouse.

A sync knows its exit code and whether its archive point was written only after it published,
and a sync that ended before publishing (locked out, a bad key, no account listed) publishes
nothing at all. So every `recoup sync` appends one JSON line to a journal beside the warehouse
as it ends, and the next sync moves the lines it finds into `raw.sync_outcomes` (in the file
or the lake it publishes) and then forgets them. `analytics.syncs` joins them with `sync_log`:
one row per sync. The journal is locked while it is read or written, so a sync locked out of
the warehouse can still add its line while another sync runs.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import duckdb
import orjson
import pyarrow as pa

from pipelines.recoup.settings import RAW_DATASET
from pipelines.warehouse.raw_schema import SIDE_TABLES

log = logging.getLogger("recoup")

COLUMNS = SIDE_TABLES["sync_outcomes"]
_ARROW = {"timestamptz": pa.timestamp("us", tz="UTC"), "integer": pa.int32(), "boolean": pa.bool_(),
          "double": pa.float64(), "varchar": pa.string()}  # fmt: skip


@contextmanager
def _locked(path: Path) -> Iterator[IO[bytes]]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield handle
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def note_outcome(path: Path, outcome: dict[str, Any]) -> None:
    """Appends one sync's outcome (the columns of `raw.sync_outcomes` but `recorded_at`).

    Never raises: a journal that cannot be written costs the warehouse that sync's row only.
    """
    try:
        with _locked(path) as handle:
            handle.write(orjson.dumps(outcome, option=orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z) + b"\n")
    except OSError as exc:
        log.warning("sync: its outcome could not be kept for analytics.syncs in %s: %s", path, exc.strerror)


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        row = orjson.loads(line)
        if not isinstance(row, dict) or not isinstance(row.get("synced_at"), str):
            return None
        row["synced_at"] = datetime.fromisoformat(row["synced_at"])
        if isinstance(row.get("ended_at"), str):
            row["ended_at"] = datetime.fromisoformat(row["ended_at"])
        return {name: row.get(name) for name in COLUMNS}
    except (orjson.JSONDecodeError, ValueError):
        return None


def pending_outcomes(path: Path) -> list[dict[str, Any]]:
    """The outcomes the journal holds; a line that is not one (a torn write) is skipped and said."""
    if not path.is_file():
        return []
    with _locked(path) as handle:
        handle.seek(0)
        lines = [line for line in handle.read().splitlines() if line.strip()]
    rows = [row for row in map(_parse, lines) if row is not None]
    if len(rows) < len(lines):
        log.warning("sync: %d line(s) of %s are not sync outcomes: skipped", len(lines) - len(rows), path)
    return rows


def record_outcomes(
    con: duckdb.DuckDBPyConnection, outcomes: list[dict[str, Any]], recorded_at: datetime
) -> None:
    """Inserts the outcomes into `raw.sync_outcomes` on `con`, those already there left out."""
    if not outcomes:
        return
    rows = [{**row, "recorded_at": recorded_at} for row in outcomes]
    table = pa.Table.from_pylist(rows, pa.schema([(name, _ARROW[kind]) for name, kind in COLUMNS.items()]))
    con.register("outcome_rows", table)
    try:
        con.execute(f"""insert into {RAW_DATASET}.sync_outcomes by name select * from outcome_rows
                        where synced_at not in (select synced_at from {RAW_DATASET}.sync_outcomes)""")  # fmt: skip
    finally:
        con.unregister("outcome_rows")


def forget_outcomes(path: Path, recorded: list[dict[str, Any]]) -> None:
    """Removes from the journal the outcomes now in the published warehouse, keeping any added since."""
    if not recorded or not path.is_file():
        return
    done = {row["synced_at"] for row in recorded}
    try:
        with _locked(path) as handle:
            handle.seek(0)
            lines = handle.read().splitlines()
            keep = [
                line for line in lines if (row := _parse(line)) is not None and row["synced_at"] not in done
            ]
            handle.seek(0)
            handle.truncate()
            handle.write(b"".join(line + b"\n" for line in keep))
    except OSError as exc:  # kept lines are recorded again, once: the insert leaves out those it holds
        log.warning("sync: %s could not be trimmed: %s", path, exc.strerror)
