"""`python -m tools.bench` (`make bench`): runs the cases, prints the table, writes the doc."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tools.bench.archive import case_archive
from tools.bench.harness import DOC, REPEAT, ROOT, Row, write_doc
from tools.bench.history import case_analytics, case_history
from tools.bench.huge_lake import case_huge_lake
from tools.bench.pace import case_drain, case_pace
from tools.bench.scale import case_latency, case_memory
from tools.bench.throughput import cases_throughput


def main() -> int:
    """Runs every case (or those CASES names), prints the results; writes the doc after a full run."""
    quick = os.environ.get("QUICK", "") not in ("", "0")
    sizes = {"accounts": 40, "latency": 40, "memory": 50, "pace": 60, "drain": 5, "history": 40, "big": 20_000,
             "huge": 40_000, "day": 4} if quick \
        else {"accounts": 1000, "latency": 1000, "memory": 5000, "pace": 1000, "drain": 50, "history": 1000,
              "big": 2_000_000, "huge": 20_000_000, "day": 24}  # fmt: skip
    repeat = 1 if quick else REPEAT
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="recoup-bench-"))
    rows: list[Row] = []
    try:
        cases: list[tuple[str, Callable[[], Any]]] = [
            ("throughput", lambda: cases_throughput(work, sizes["accounts"], rows, repeat)),
            ("latency", lambda: case_latency(work, sizes["latency"], rows, repeat)),
            ("memory", lambda: case_memory(work, sizes["memory"], rows, repeat)),
            ("pace", lambda: case_pace(work, sizes["pace"], rows, repeat, 3 if quick else 20)),
            ("backlog", lambda: case_drain(work, sizes["drain"], rows, 2 if quick else 10)),
            ("archive", lambda: case_archive(work, sizes["history"], rows, repeat, sizes["big"])),
            (
                "lake20m",
                lambda: case_huge_lake(work, sizes["history"], rows, repeat, sizes["huge"], sizes["day"]),
            ),
        ]
        chosen = set(filter(None, os.environ.get("CASES", "").split(","))) or None  # e.g. CASES=pace,history
        for name, case in cases:
            if chosen and name not in chosen:
                continue
            print(f"bench: {name} ...", file=sys.stderr, flush=True)
            done = len(rows)
            case()
            for row in rows[done:]:
                print(f"bench:   {row.case}: {row.measured} vs {row.reference}", file=sys.stderr, flush=True)
        done = len(rows)
        if not chosen or "history" in chosen:
            print("bench: history ...", file=sys.stderr, flush=True)
            large = case_history(work, sizes["history"], rows, repeat, sizes["big"])
            print("bench: analytics ...", file=sys.stderr, flush=True)
            case_analytics(work, large, rows, repeat)
        for row in rows[done:]:
            print(f"bench:   {row.case}: {row.measured} vs {row.reference}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - started
    width = max(len(r.case) for r in rows)
    for r in rows:
        ratio = "" if r.ratio is None else f"{r.ratio:6.2f}"
        print(f"{r.case:<{width}}  {r.measured:<34} {r.reference:<42} {ratio:>6} {r.target:>9} {r.met}")
    if quick:
        print(json.dumps({"rows": len(rows)}))
    elif chosen:
        print("bench: a subset of the cases (CASES): docs/benchmarks.md is left as it is")
    else:
        write_doc(rows, quick, elapsed)
        print(f"bench: wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
