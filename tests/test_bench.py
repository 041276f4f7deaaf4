"""The benchmark harness itself: a small run must finish and check every system's row counts."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli
from tools.local_postgres import PostgresCluster, PostgresMissing


@pytest.mark.slow
@pytest.mark.timeout(660)  # the run below may take its 600 s
def test_quick_bench_runs_every_case() -> None:
    done = run_cli({"QUICK": "1"}, "tools.bench", timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "correctness check failed" not in done.stderr
    cases = [
        line.split(".", 1)[0] for line in done.stdout.splitlines() if line.split(".", 1)[0].strip().isdigit()
    ]
    try:  # the lake cases need PostgreSQL, as the lake tests do
        PostgresCluster()
        lake = True
    except PostgresMissing:
        lake = False
    expected = ["1", "2", "3", "4", "5", "6", "7", "8", "10"] + (["9", "11"] if lake else [])
    assert sorted(set(cases), key=int) == sorted(expected, key=int)
    assert json.loads(done.stdout.splitlines()[-1]) == {"rows": 23 if lake else 18}
