"""The benchmark harness itself: a small run must finish and check every system's row counts."""

from __future__ import annotations

import json

from tests.test_cli import run_cli


def test_quick_bench_runs_every_case() -> None:
    done = run_cli({"QUICK": "1"}, "pipelines.bench", timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "correctness check failed" not in done.stderr
    cases = [
        line.split(".", 1)[0]
        for line in done.stdout.splitlines()
        if line[:2] in {"1.", "2.", "3.", "4.", "5.", "6.", "7.", "8."}
    ]
    assert sorted(set(cases)) == ["1", "2", "3", "4", "5", "6", "7", "8"]
    assert json.loads(done.stdout.splitlines()[-1]) == {"rows": 13}
