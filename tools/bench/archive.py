"""Case 10: the archive step after a sync, at two sizes of history, and a restore of the larger.

The cost of a sync's archive point must follow what the sync changed, not what the warehouse
holds: the same small sync is archived after a warehouse of ~95 k runs and after one of 2 M.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from statistics import median

from pipelines.archive.restore import restore
from pipelines.archive.write import archive_after_publish
from pipelines.config.archive import ArchiveSettings
from tools.bench.harness import Emulator, Row, check, our_sync, sync_process, timed, warehouse_counts
from tools.bench.history import grow_history


def _largest(archive: Path, prefix: str) -> str:
    """The largest table file of a point, e.g. `runs 410 KB`."""
    tables = json.loads((archive / prefix / "manifest.json").read_text())["tables"]
    top = max(tables, key=lambda t: t["bytes"])
    return f"{top['name']} {top['bytes'] / 1024:,.0f} KB"


def _archive_syncs(
    emu: Emulator, db: Path, archive: Path, repeat: int
) -> tuple[float, list[float], list[int], str]:
    """The first archive point (a snapshot), then `repeat` small syncs each archived: seconds and bytes."""
    settings = ArchiveSettings(str(archive))
    snapshot, first = timed(archive_after_publish, db, settings)
    check(first.error is None and first.kind == "snapshot", f"archive snapshot: {first.error}")
    seconds, sizes = [], []
    for _ in range(repeat):
        emu.truth = emu.send("add", (10, 5))
        _, code, _ = sync_process(emu, db)
        check(code == 0, f"archive bench sync exit {code}")
        took, outcome = timed(archive_after_publish, db, settings)
        check(outcome.error is None and outcome.kind == "changes", f"archive changes: {outcome.error}")
        seconds.append(took)
        sizes.append(outcome.bytes)
    return snapshot, seconds, sizes, _largest(archive, outcome.prefix)


def case_archive(work: Path, accounts: int, rows: list[Row], repeat: int, big: int) -> None:
    """Archive step time and bytes per sync at ~100 runs an account and at `big` runs; restore at `big`."""
    emu = Emulator(accounts, 100)
    try:
        small = work / "archive-small" / "recoup.duckdb"
        check(our_sync(emu, small).exit_code == 0, "archive base sync")
        large = work / "archive-large" / "recoup.duckdb"
        large.parent.mkdir(parents=True)
        shutil.copyfile(small, large)
        stored = {small: warehouse_counts(small)[0], large: grow_history(large, big)}
        results = {db: _archive_syncs(emu, db, db.parent / "archive", repeat) for db in (small, large)}
        for db in (small, large):
            snapshot, seconds, sizes, largest = results[db]
            rows.append(Row(f"10. archive: the change set of a sync adding 50 runs, {stored[db]:,} runs stored",
                            f"{median(seconds):.2f} s, {median(sizes) / 1024:,.0f} KB",
                            f"largest {largest}; first snapshot {snapshot:.1f} s", None, ""))  # fmt: skip
        ratio = median(results[large][1]) / median(results[small][1])
        rows.append(Row(f"10. archive: change-set time at {stored[large]:,} vs {stored[small]:,} runs",
                        f"{ratio:.2f}x", "follows the change, not the history", ratio, "<=1.5x"))  # fmt: skip
        target = work / "archive-restored" / "recoup.duckdb"
        took, done = timed(restore, ArchiveSettings(str(large.parent / "archive")), target)
        check(warehouse_counts(target) == warehouse_counts(large), "restored row counts")
        rows.append(Row(f"10. archive: recoup restore of {stored[large]:,} runs (1 snapshot + {len(done.chain) - 1}"
                        " change sets, models rebuilt)", f"{took:.1f} s", "", None, ""))  # fmt: skip
    finally:
        emu.stop()
