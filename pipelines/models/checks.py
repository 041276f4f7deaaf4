"""The data tests of `sql/tests/`: each is a query that must return no rows, run after every build.

dbt's singular tests by another name: a test states what must never be true of the built
models (a repeated key, a tag without its run, a daily total that does not add up) and returns
the rows that break it. A test that returns rows fails the build by the test's name, inside the
build's transaction, so the previous models stay.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipelines.models.files import SQL_DIR, ModelError

SHOWN = 3  # rows of a failing test quoted in its message


def data_tests(sql_dir: Path = SQL_DIR) -> list[Path]:
    """The test files, in name order."""
    return sorted((sql_dir / "tests").glob("*.sql"))


def check_models(con: duckdb.DuckDBPyConnection, sql_dir: Path = SQL_DIR) -> int:
    """Runs every data test on `con`; returns how many ran.

    Raises:
        ModelError: a test returned rows, or could not run; the message names the test.
    """
    tests = data_tests(sql_dir)
    for path in tests:
        name = str(path.relative_to(sql_dir.parent))
        sql = path.read_text().strip().rstrip(";")
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
