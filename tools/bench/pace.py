"""Case 7: production's pace under a request cap and a time budget, and the details backlog drained."""

from __future__ import annotations

from pathlib import Path
from statistics import median

from tools.bench.harness import Emulator, Row, check, our_sync, timed, warehouse_counts


def case_pace(work: Path, accounts: int, rows: list[Row], repeat: int, budget: int) -> None:
    """Production's pace, scaled by 20: 300 requests/min becomes 6,000, details need one each."""
    cap = 6000
    emu = Emulator(accounts, 100, latency=0.05, profile="observed", finished=True)
    try:
        lists, stops, walls = [], [], []
        for i in range(repeat):
            db = work / f"pace{i}" / "recoup.duckdb"
            wall, summary = timed(our_sync, emu, db, RECOUP_MAX_RPM=str(cap), RECOUP_SYNC_SECONDS=str(budget))
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
