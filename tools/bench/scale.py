"""Cases 2 and 5: one sync at scale, fanned out over 50 ms of latency, and its peak memory."""

from __future__ import annotations

from pathlib import Path
from statistics import median

from tools.bench.harness import Emulator, Row, check, our_sync, sync_process, timed, warehouse_counts


def case_latency(work: Path, accounts: int, rows: list[Row], repeat: int) -> None:
    """One sync of `accounts` x 5 runs, each request 50 ms late, against the ideal of 8 in flight."""
    emu = Emulator(accounts, 5, latency=0.05)
    try:
        walls = []
        for i in range(repeat):
            db = work / f"latency{i}" / "recoup.duckdb"
            wall, summary = timed(our_sync, emu, db)
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
    """The peak RSS of one first sync of `accounts` x 100 runs, in a process of its own as cron runs it."""
    emu = Emulator(accounts, 100)
    try:
        db = work / "memory" / "recoup.duckdb"
        # The time budget unset (the default), as cron runs it; the other cases sync without one.
        _, code, peak = sync_process(emu, db, RECOUP_SYNC_SECONDS="")
        check(code == 0 and warehouse_counts(db)[0] == emu.run_count, "memory case rows")
        rows.append(Row(f"5. peak RSS, one sync of {emu.run_count:,} runs", f"{peak:.0f} MB", "target 300 MB",
                        peak, "<=300 MB"))  # fmt: skip
    finally:
        emu.stop()
