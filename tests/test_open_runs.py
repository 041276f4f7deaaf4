"""The open-runs mark: a sync reads only runs created after it, and still finds every run it must follow.

A sync starts from the runs still in flight, the finished runs awaiting details and the recent
runs. On a long history it finds them among the runs created after the mark stored with the
last load, lowered by whatever was answered since. Here a real sync fills a DuckDB file, the
file is aged by hand, and the index read with the mark must equal the index read without it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import duckdb
import pytest
from dlt.common.versioned_state import TVersionedState, compress_state, decompress_state

from pipelines.emulator import World
from pipelines.recoup.index import Index
from pipelines.recoup.options import FetchOptions
from pipelines.recoup.pages import OPEN_KEY, SOURCE_NAME
from pipelines.warehouse import read_index

OPTIONS = FetchOptions()


def _set_mark(con: duckdb.DuckDBPyConnection, mark: dict[str, str] | None) -> None:
    """Writes `mark` as the open-runs mark of dlt's latest stored state (None: no mark)."""
    state_id, packed = con.execute(
        "select _dlt_id, state from raw._dlt_pipeline_state order by created_at desc, version desc limit 1"
    ).fetchone() or (None, None)
    state: Any = decompress_state(packed)
    state["sources"][SOURCE_NAME][OPEN_KEY] = mark
    con.execute("update raw._dlt_pipeline_state set state = ? where _dlt_id = ?",
                [compress_state(cast(TVersionedState, state)), state_id])  # fmt: skip


def _age(con: duckdb.DuckDBPyConnection, run_id: str, days: int) -> None:
    """Moves a stored run and its answers `days` back, as if it had sat in the warehouse since."""
    for table in ("runs", "run_details"):
        con.execute(f"""update raw.{table} set created_at = created_at - to_days({days}),
                        updated_at = updated_at - to_days({days}), seen_at = seen_at - to_days({days})
                        where id = ?""", [run_id])  # fmt: skip


def _read(db: Path, mark: dict[str, str] | None) -> tuple[Index, tuple[dict, dict, set]]:
    """The index a sync would start from with `mark` stored, and what it follows: the runs in
    flight and awaiting details by account, and the ids of the recent runs."""
    with duckdb.connect(str(db)) as con:
        _set_mark(con, mark)
        index = read_index(con, OPTIONS)
        backlog = {account: sorted(job.run_id for job in jobs) for account, jobs in index.backlog.items()}
        recent = set(index.read_latest().column("id").to_pylist()) if index.read_latest else set()
        return index, (index.in_flight_ids, backlog, recent)


@pytest.mark.parametrize("old", ["in flight", "awaiting details", "answered since the mark"])
def test_the_mark_finds_an_old_run_a_sync_must_follow(old: str, world: World, sync, db_path: Path) -> None:
    world.profile = "observed"  # lists carry no attempts: finished runs need a details fetch
    account = world.account_ids[0]
    flying = world.add_run(account, created_at=world.now - timedelta(minutes=5), status="EXECUTING")
    assert sync().exit_code == 0
    with duckdb.connect(str(db_path)) as con:
        (finished,) = con.execute(
            "select min(id) from raw.runs where id in (select id from raw.run_details) and status = 'COMPLETED'"
        ).fetchall()[0]
        run_id = flying["id"] if old == "in flight" else finished
        _age(con, run_id, 60)  # as if it had sat in the warehouse for two months
        if old == "awaiting details":
            con.execute("delete from raw.run_details where id = ?", [run_id])
    marked, before = _read(db_path, None)
    assert marked.open_mark is not None
    if old == "answered since the mark":  # a new updatedAt for a run finished and detailed long ago
        assert run_id not in {r for ids in before[1].values() for r in ids}
        with duckdb.connect(str(db_path)) as con:
            con.execute("update raw.runs set updated_at = updated_at + interval 1 hour, seen_at = now()"
                        " where id = ?", [run_id])  # fmt: skip

    everything = _read(db_path, None)[1]
    bounded = _read(db_path, marked.open_mark)[1]

    in_flight, backlog = everything[0], {r for ids in everything[1].values() for r in ids}
    assert run_id in (in_flight[account] if old == "in flight" else backlog)
    assert bounded == everything


def test_the_mark_keeps_every_recent_run_when_no_open_run_is_old(world: World, sync, db_path: Path) -> None:
    account = world.account_ids[0]
    world.add_run(account, created_at=world.now - timedelta(minutes=5), status="EXECUTING")
    assert sync().exit_code == 0
    with duckdb.connect(str(db_path)) as con:  # answered two days ago: the mark alone bounds the read
        for table in ("runs", "run_details"):
            con.execute(f"update raw.{table} set seen_at = seen_at - interval 2 day")
        (stored,) = con.execute("select count(*) from raw.runs").fetchall()[0]
    marked, everything = _read(db_path, None)
    assert marked.open_mark is not None and everything[0][account]
    assert len(everything[2]) == stored
    assert _read(db_path, marked.open_mark)[1] == everything


def test_a_mark_read_under_other_options_or_damaged_is_not_used(sync, db_path: Path) -> None:
    assert sync().exit_code == 0
    with duckdb.connect(str(db_path)) as con:
        stored = con.execute("select count(*) from raw.runs").fetchone()[0]
    future = datetime.now(UTC) + timedelta(days=400)  # a mark no stored run passes
    mark = {"since": future.isoformat(), "through": future.isoformat(), "options": str(OPTIONS)}
    assert _read(db_path, mark)[1][2] == set(), "the mark bounds the read"
    for unusable in (
        {**mark, "options": str(FetchOptions(details="failed"))},
        {**mark, "since": "next week"},
        {**mark, "through": future.replace(tzinfo=None).isoformat()},
        {"options": str(OPTIONS)},
    ):
        assert len(_read(db_path, unusable)[1][2]) == stored, unusable
