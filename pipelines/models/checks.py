"""The data tests of `sql/tests/`: each is a query that must return no rows, run after every build.

dbt's singular tests by another name: a test states what must never be true of the built
models (a repeated key, a tag without its run, a daily total that does not add up) and returns
the rows that break it. A test that returns rows fails the build by the test's name, inside the
build's transaction, so the previous models stay.

After an update for a sync's changed runs, a test with an `-- on update: <column>` line reads
only the rows of the `analytics` relations whose column (a run id, or an account id) the
changed runs hold: what the update could have broken, at a cost that follows the change
instead of the history. A full rebuild runs every test over every row.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from pipelines.models.files import CHANGED_RUNS, SQL_DIR, ModelError

SHOWN = 3  # rows of a failing test quoted in its message
ON_UPDATE = re.compile(r"^-- on update: (run_id|account_id)$", re.MULTILINE)
ANALYTICS = re.compile(r"\banalytics\.(\w+)\b")
# The keys the changed runs hold, for the tests an update runs over them alone.
SCOPES = {
    "run_id": f"select run_id from {CHANGED_RUNS}",
    "account_id": f"select distinct account_id from intermediate.run_versions semi join {CHANGED_RUNS} using (run_id)",
}


def data_tests(sql_dir: Path = SQL_DIR) -> list[Path]:
    """The test files, in name order."""
    return sorted((sql_dir / "tests").glob("*.sql"))


def scoped(sql: str) -> str:
    """The test's SQL reading only the rows of the changed runs' keys, when it has a scope line."""
    found = ON_UPDATE.search(sql)
    if not found:
        return sql
    column = found.group(1)
    keys = f"scope_{column}"

    def narrowed(line: str) -> str:
        return (
            line
            if line.startswith("--")
            else ANALYTICS.sub(
                lambda name: (
                    f"(select * from {name.group(0)} where {column} in (select {column} from {keys}))"
                ),
                line,
            )
        )

    return "\n".join(narrowed(line) for line in sql.splitlines())


def check_models(con: duckdb.DuckDBPyConnection, sql_dir: Path = SQL_DIR, updated: bool = False) -> int:
    """Runs every data test on `con`; returns how many ran.

    `updated`: the build updated the rows of the runs in CHANGED_RUNS only; the tests with a
    scope line check those runs' keys alone.

    Raises:
        ModelError: a test returned rows, or could not run; the message names the test.
    """
    tests = data_tests(sql_dir)
    if updated:
        for column, keys in SCOPES.items():
            con.execute(f"create or replace temp table scope_{column} as {keys}")
    for path in tests:
        name = str(path.relative_to(sql_dir.parent))
        sql = path.read_text().strip().rstrip(";")
        sql = scoped(sql) if updated else sql
        try:
            result = con.execute(f"select * from (\n{sql}\n) limit {SHOWN + 1}")
            rows = result.fetchall()
        except duckdb.OutOfMemoryException:
            raise
        except duckdb.Error as exc:
            raise ModelError(f"data test {name} cannot run: {str(exc).splitlines()[0][:200]}") from None
        if rows:
            columns = [d[0] for d in result.description]
            shown = "; ".join(
                ", ".join(f"{c}={v}" for c, v in zip(columns, row, strict=True)) for row in rows[:SHOWN]
            )
            more = " and more" if len(rows) > SHOWN else ""
            raise ModelError(f"data test {name} failed: it returned {shown}{more}")
    return len(tests)
