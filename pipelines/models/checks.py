"""The data tests of `sql/tests/`: each is a query that must return no rows, run after every build.

dbt's singular tests by another name: a test states what must never be true of the built
models (a repeated key, a tag without its run, a daily total that does not add up) and returns
the rows that break it. A test that returns rows fails the build by the test's name, inside the
build's transaction, so the previous models stay.

After an update for a sync's changed runs, a test with an `-- on update: <column>` line reads
only the rows of the `analytics` relations whose column (a run id, or an account id) the
changed runs hold: what the update could have broken, at a cost that follows the change
instead of the history. Scoped by run id, a relation is also bounded in time, by constants that
let DuckDB (and DuckLake) skip the row groups and files of older runs: `answered_at` (when the
answer behind a tag or attempt was read) and `run_created_at` (the run's creation), or else
`created_at`, from a day before the oldest changed run's creation, as the lake's merge bounds
its deletes. A full rebuild runs every test over every row.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from pipelines.models.files import CHANGED_RUNS, SQL_DIR, ModelError, creation_bound
from pipelines.query import timestamptz

SHOWN = 3  # rows of a failing test quoted in its message
ON_UPDATE = re.compile(r"^-- on update: (run_id|account_id)$", re.MULTILINE)
ANALYTICS = re.compile(r"\banalytics\.(\w+)\b")
LISTED = 2_000  # changed keys written into a scoped test as literals (see _scope_keys)
# The columns a relation scoped by run id is bounded by: every one of BOUNDED_BY it has, or else
# `created_at`. Every row of a changed run lies at or after the bound: a run's answers arrive
# after its creation, with a day of margin for the API's clock. (The attempts' own `created_at`
# may be null: it bounds nothing.)
BOUNDED_BY = ("answered_at", "run_created_at")


# The keys the changed runs hold, for the tests an update runs over them alone.
def _scopes(bound: str | None) -> dict[str, str]:
    """Per scope column, the query of the keys the changed runs hold (their versions read by time too)."""
    dated = "" if bound is None else f" where created_at >= {bound}"
    return {
        "run_id": f"select run_id from {CHANGED_RUNS}",
        "account_id": "select distinct account_id from intermediate.run_versions"
        f" semi join {CHANGED_RUNS} using (run_id){dated}",
    }


def data_tests(sql_dir: Path = SQL_DIR) -> list[Path]:
    """The test files, in name order."""
    return sorted((sql_dir / "tests").glob("*.sql"))


def scoped(sql: str, keys: dict[str, str], bounds: dict[str, str] | None = None) -> str:
    """The test's SQL reading only the rows of the changed runs' keys, when it has a scope line.

    `keys` holds, per scope column, what an `in (...)` lists: the keys themselves, or a query.
    `bounds` holds, per analytics relation, a condition in time that every row of a changed
    run meets; it is added where the scope is by run id.
    """
    found = ON_UPDATE.search(sql)
    if not found:
        return sql
    column = found.group(1)
    bounds = (bounds or {}) if column == "run_id" else {}

    def narrowed(line: str) -> str:
        if line.startswith("--"):
            return line
        return ANALYTICS.sub(
            lambda name: (
                f"(select * from {name.group(0)} where {column} in ({keys[column]})"
                + (f" and {bounds[name.group(1)]})" if name.group(1) in bounds else ")")
            ),
            line,
        )

    return "\n".join(narrowed(line) for line in sql.splitlines())


def _scope_keys(con: duckdb.DuckDBPyConnection, bound: str | None) -> dict[str, str]:
    """What each scope column's `in (...)` lists after an update.

    Up to LISTED keys are written out as literals: DuckDB pushes a constant list down through
    the joins of `analytics.run_tags` and `analytics.run_attempts` to the scans of the raw
    tables (0.13 s at two million runs), where a subquery is applied after the whole join
    (0.43 s). More keys are read from a temporary table.
    """
    keys = {}
    for column, query in _scopes(bound).items():
        values = [value for (value,) in con.execute(f"{query} limit {LISTED + 1}").fetchall()]
        if len(values) <= LISTED:
            keys[column] = ", ".join("'" + str(v).replace("'", "''") + "'" for v in values) or "null"
        else:
            con.execute(f"create or replace temp table scope_{column} as {query}")
            keys[column] = f"select {column} from scope_{column}"
    return keys


def _oldest_bound(con: duckdb.DuckDBPyConnection) -> str | None:
    """`creation_bound` as a SQL constant; None when a changed run has no `created_at`."""
    since = creation_bound(con)
    return None if since is None else timestamptz(since)


def time_bounds(con: duckdb.DuckDBPyConnection, bound: str | None) -> dict[str, str]:
    """Per analytics relation, `column >= bound` that every row of a changed run meets.

    `bound` is `_oldest_bound`'s; None (a changed run has no `created_at`) bounds nothing.
    """
    if bound is None:
        return {}
    columns: dict[str, set[str]] = {}
    for relation, name in con.execute(
        "select table_name, column_name from duckdb_columns()"
        " where database_name = current_database() and schema_name = 'analytics'"
    ).fetchall():
        columns.setdefault(relation, set()).add(name)
    bounds = {}
    for relation, have in columns.items():
        bounded = [c for c in BOUNDED_BY if c in have] or (["created_at"] if "created_at" in have else [])
        if bounded:
            bounds[relation] = " and ".join(f"{column} >= {bound}" for column in bounded)
    return bounds


def check_models(con: duckdb.DuckDBPyConnection, sql_dir: Path = SQL_DIR, updated: bool = False) -> int:
    """Runs every data test on `con`; returns how many ran.

    `updated`: the build updated the rows of the runs in CHANGED_RUNS only; the tests with a
    scope line check those runs' keys alone.

    Raises:
        ModelError: a test returned rows, or could not run; the message names the test.
    """
    tests = data_tests(sql_dir)
    keys, bounds = {}, {}
    if updated:
        bound = _oldest_bound(con)
        keys, bounds = _scope_keys(con, bound), time_bounds(con, bound)
    for path in tests:
        name = str(path.relative_to(sql_dir.parent))
        sql = path.read_text().strip().rstrip(";")
        sql = scoped(sql, keys, bounds) if updated else sql
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
