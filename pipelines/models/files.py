"""The model files of `sql/`: what each builds, what it reads, and the order to build them in.

Each file is one model named after the file: `sql/staging/*.sql` become views in schema
`staging` (rename and cast only), `sql/intermediate/*.sql` views in `intermediate`, and
`sql/marts/*.sql` views in `analytics`; a `-- materialized: table` line makes a model a table
(what many views read and costs to compute). A model's dependencies are the relations its SQL
reads, found by parsing it with sqlglot. A table model with an `-- incremental: <keys> from <source>`
line can be updated for the keys of the changed runs alone (see `runner.py`).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, time
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import duckdb
import sqlglot
import sqlglot.errors
from sqlglot import exp

from pipelines.query import one_row, scalar, timestamptz, utc
from pipelines.recoup.errors import RecoupError
from pipelines.recoup.settings import CLOCK_MARGIN

# `sql/` beside the package in a checkout; `pipelines/sql/` in an installed package (pyproject.toml).
_PACKAGE = Path(__file__).resolve().parent.parent
SQL_DIR = _PACKAGE / "sql" if (_PACKAGE / "sql").is_dir() else _PACKAGE.parent / "sql"
LAYERS = {
    "staging": ("staging", "view"),
    "intermediate": ("intermediate", "view"),
    "marts": ("analytics", "view"),
}

CHANGED_RUNS = "changed_runs"  # a temp table of the runs a sync loaded: run_id, created_at, undated
PRUNE_COLUMN = "created_at"  # every incremental source has it; runs are stored roughly in its order
# A run's UTC day, in any session TimeZone: the plain timestamp of its epoch microseconds. A
# tenth of the time of `(created_at at time zone 'UTC')::date`, which converts each value by ICU.
# As a key, it bounds PRUNE_COLUMN by itself.
UTC_DAY = f"make_timestamp(epoch_us({PRUNE_COLUMN}))::date"


@functools.lru_cache(maxsize=512)  # parsing takes milliseconds; a build asks hundreds of times
def relations_read(sql: str) -> frozenset[str]:
    """The schema-qualified tables and views a statement reads, as `schema.name` in lower case.

    Raises:
        ModelError: the SQL does not parse.
    """
    try:
        tree = sqlglot.parse_one(sql, dialect="duckdb")
    except sqlglot.errors.ParseError as exc:
        raise ModelError(f"cannot parse: {str(exc).splitlines()[0][:200]}") from None
    return frozenset(f"{t.db}.{t.name}".lower() for t in tree.find_all(exp.Table) if t.db)


def creation_bound(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """A day before the oldest changed run's creation; None when a changed run has no `created_at`.

    Every row of a changed run in `analytics` lies at or after it: the run as its latest answer
    has it, and every answer about it, which arrives after its creation (a day of margin for the
    API's clock). Its stored rows from before the change lie after it only when every answer
    gives a run the same `created_at` (`apply_models`' `fixed_creation`). A constant, it lets
    DuckDB skip the row groups, and DuckLake the files, of older runs.
    """
    return utc(scalar(con.execute(
        f"select case when bool_or(undated) then null else min(created_at) - {CLOCK_MARGIN} end from {CHANGED_RUNS}"
    )))  # fmt: skip


def _created_from(since: datetime | None) -> str:
    """`created_at >= <since> and ` as SQL; nothing without `since`.

    A constant bound on created_at lets DuckDB skip the row groups (and DuckLake the Parquet
    files) of older runs by their min/max, instead of probing every run.
    """
    return "" if since is None else f"{PRUNE_COLUMN} >= {timestamptz(since)} and "


class ModelError(RecoupError):
    """A model could not be built; the previous models are still in place."""


@dataclass(frozen=True)
class Model:
    """One SQL file of `sql/`: the schema it builds in, a view or a table, and its text."""

    path: Path
    schema: str
    kind: str  # view or table
    sql: str

    @property
    def name(self) -> str:
        """The relation the model creates, as `schema.name`."""
        return f"{self.schema}.{self.path.stem}"

    @property
    def reads(self) -> frozenset[str]:
        """The relations (`schema.name`) its SQL reads, its own common table expressions left out."""
        return relations_read(self.sql)

    @property
    def description(self) -> str:
        """The opening comment's first paragraph, without directives."""
        lines = []
        for line in self.sql.splitlines():
            if not line.startswith("--") or re.match(r"--\s*(columns:.*)?$", line, re.IGNORECASE):
                break  # the opening paragraph ends at a bare `--` or the column block
            if not re.match(r"--\s*(materialized|incremental):", line):
                lines.append(line[2:].strip())
        return " ".join(lines)

    @property
    def column_docs(self) -> dict[str, str]:
        """The `-- Columns:` block: column name to its text."""
        docs: dict[str, str] = {}
        block = re.search(
            r"^--\s*columns:\s*\n((?:--[ \t]{2,}.*\n?)+)", self.sql, re.MULTILINE | re.IGNORECASE
        )
        for line in block.group(1).splitlines() if block else []:
            entry = re.match(r"--\s{2,3}(\w+):\s*(.*)$", line)
            if entry:
                name = entry.group(1)
                docs[name] = entry.group(2).strip()
            else:  # deeper indentation continues the previous column's text
                docs[name] = f"{docs[name]} {line[2:].strip()}"
        return docs

    @property
    def incremental(self) -> Incremental | None:
        """What an `-- incremental: <key select list> from <source>` line declares."""
        found = re.search(r"^--\s*incremental:\s*(.+?)\s+from\s+([\w.]+)\s*$", self.sql, re.MULTILINE)
        if not found:
            return None
        keys = []
        for part in found.group(1).split(","):
            expression, _, alias = part.strip().rpartition(" as ")
            keys.append((expression.strip() or alias.strip(), alias.strip()))
        return Incremental(found.group(2), keys)


@dataclass(frozen=True)
class Incremental:
    """A table whose rows for a key depend only on the `source` rows with that key."""

    source: str
    keys: list[tuple[str, str]]  # (expression over the source, column of the table)

    @property
    def columns(self) -> str:
        """The table's key columns as a SQL select list."""
        return ", ".join(column for _, column in self.keys)

    @property
    def day(self) -> str | None:
        """The table's column of a UTC day key (a run's day of creation), if it has one."""
        return next((column for expression, column in self.keys if expression == UTC_DAY), None)

    def touched(self, since: datetime | None = None) -> str:
        """The keys that the changed runs' source rows hold now, among those created from `since`."""
        if self.keys == [("run_id", "run_id")]:
            return f"select run_id from {CHANGED_RUNS}"  # no need to look
        select = ", ".join(f"{expression} as {column}" for expression, column in self.keys)
        changed = f"run_id in (select run_id from {CHANGED_RUNS})"
        return f"select distinct {select} from {self.source} where {_created_from(since)}{changed}"

    def stored(self, keys: str, since: datetime | None = None) -> str:
        """The condition on the table's rows of `keys`, none created before `since`.

        A table keyed by a UTC day is bounded by the day of `since`; one keyed by run id by
        the run's `created_at`.
        """
        where = f"({self.columns}) in (select {self.columns} from {keys})"
        if since is not None and self.day:
            return f"{self.day} >= date '{utc(since).date()}' and {where}"
        return f"{_created_from(since)}{where}"

    def matching(self, keys: str, since: datetime | None = None) -> str:
        """The source rows whose keys are in the table `keys`, none created before `since`."""
        expressions = ", ".join(expression for expression, _ in self.keys)
        where = f"({expressions}) in (select {self.columns} from {keys})"
        return f"(select * from {self.source} where {_created_from(since)}{where})"

    def oldest(
        self, con: duckdb.DuckDBPyConnection, keys: str, since: datetime | None = None
    ) -> datetime | None:
        """A lower bound of created_at over the source rows of `keys`; None when there is none.

        A UTC day among the keys bounds it by that day's midnight: the rows of a day include
        unchanged runs created before any changed one. Otherwise `since`, when the caller
        knows that no row of a changed run lies before it; else the earliest created_at of the
        matching rows is read: two columns, a fraction of reading every column of every run.
        Every matching row is at or after the bound.
        """
        if self.day:  # a row of a day is created no earlier than its midnight
            day = scalar(con.execute(f"select min({self.day}) from {keys}"))
            return None if day is None else datetime.combine(day, time(), UTC)
        if since is not None:
            return since
        query = f"""select min({PRUNE_COLUMN}), count(*) filter (where {PRUNE_COLUMN} is null)
                    from {self.matching(keys)}"""  # fmt: skip
        oldest, undated = one_row(con.execute(query))
        return None if undated else oldest


def load_models(sql_dir: Path = SQL_DIR) -> list[Model]:
    """Every model under `sql_dir`, sorted so that each comes after what it reads."""
    models = {}
    for folder, (schema, kind) in LAYERS.items():
        for path in sorted((sql_dir / folder).glob("*.sql")):
            sql = path.read_text().strip().rstrip(";")
            materialized = re.search(r"^--\s*materialized:\s*(view|table)\s*$", sql, re.MULTILINE)
            model = Model(path, schema, materialized.group(1) if materialized else kind, sql)
            models[model.name] = model
    graph = {
        name: {read for read in model.reads if read in models and read != name}
        for name, model in models.items()
    }
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise ModelError(f"models depend on each other in a cycle: {' -> '.join(exc.args[1])}") from None
    return [models[name] for name in order]
