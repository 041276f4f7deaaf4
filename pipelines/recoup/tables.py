"""The raw tables the source loads, described once, and the Arrow batches that fill them.

`TABLES` says, for every raw table, each column's kind, whether it may be null, which API
field fills it, and any further dlt hint. The Arrow schemas (`SCHEMAS`), the DuckDB types
(`RAW_TABLES`) and dlt's column hints (`dlt_columns`) are derived from it by the small
functions below, and both transform paths read their field names from it: a new API field
is one line here (and a column in the SQL models for analysts to see it).

dlt's row-by-row normaliser would cost ~15 ms per 100 runs here; building the three flat
tables (runs, their tags, their attempts) as Arrow batches ourselves lets dlt load parquet
straight away. Child rows point at their run's observation (`observation_id`), so a run's
tags and attempts are replaced whole when the run is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson
import pyarrow as pa

TIMESTAMP = pa.timestamp("us", tz="UTC")


class Kind(NamedTuple):
    """How one kind of column is typed in Arrow and in DuckDB; dlt's data type is its name."""

    arrow: pa.DataType
    duckdb: str


KINDS = {
    "text": Kind(pa.string(), "VARCHAR"),
    "timestamp": Kind(TIMESTAMP, "TIMESTAMPTZ"),
    "bool": Kind(pa.bool_(), "BOOLEAN"),
    "double": Kind(pa.float64(), "DOUBLE"),
    "bigint": Kind(pa.int64(), "BIGINT"),
    "json": Kind(pa.string(), "JSON"),  # serialised JSON text; dlt and DuckDB store it as JSON
}


@dataclass(frozen=True)
class Column:
    """One column of a raw table.

    Attributes:
        kind: a key of `KINDS`.
        source: the field of the API object read into it by the rule of its kind
            (`transform.py` checks it, `columnar.py` reads it with Arrow): a top-level field,
            or `object.field` for a text field of an object (`env.name`); None for a column the
            code builds itself (ids, flags, counts).
        nullable: False for keys, which dlt and Arrow then both declare NOT NULL.
        private: stored only when RECOUP_STORE_PAYLOADS asks for it (large, possibly private).
        bounds: for a number, the least and the greatest value it may take; a run giving one
            outside (or NaN, or an infinity) is rejected by both paths, with a reason.
        hints: further dlt column hints.
    """

    kind: str
    source: str | None = None
    nullable: bool = True
    private: bool = False
    bounds: tuple[float, float] | None = None
    hints: Mapping[str, Any] = field(default_factory=dict)


KEY = Column("text", nullable=False)
INT64 = (-(2**63), 2**63 - 1)
INT32 = (-(2**31), 2**31 - 1)  # the SQL models hold these columns as INTEGER
# A cost above this is a data error, and sums of costs stay finite (cents; $10 billion a run).
MAX_COST_CENTS = 1e12
COST = (0.0, MAX_COST_CENTS)

RUN_COLUMNS: dict[str, Column] = {
    "id": KEY,
    "observation_id": KEY,
    "account_id": Column("text"),
    "status": Column("text", "status"),
    "task_identifier": Column("text", "taskIdentifier"),
    "created_at": Column("timestamp", "createdAt"),
    "updated_at": Column("timestamp", "updatedAt"),
    "started_at": Column("timestamp", "startedAt"),
    "finished_at": Column("timestamp", "finishedAt"),
    "delayed_until": Column("timestamp", "delayedUntil"),
    "expired_at": Column("timestamp", "expiredAt"),
    # a run answered twice in one load: the later answer wins
    "seen_at": Column("timestamp", hints={"dedup_sort": "desc"}),
    "is_test": Column("bool", "isTest"),
    "env_id": Column("text", "env.id"),
    "env_name": Column("text", "env.name"),
    "cost_in_cents": Column("double", "costInCents", bounds=COST),
    "base_cost_in_cents": Column("double", "baseCostInCents", bounds=COST),
    "duration_ms": Column("bigint", "durationMs", bounds=INT64),
    "depth": Column("bigint", "depth", bounds=INT32),
    "attempt_count": Column("bigint", "attemptCount", bounds=INT32),
    "task_kind": Column("text", "taskKind"),
    "version": Column("text", "version"),
    "idempotency_key": Column("text", "idempotencyKey"),
    "region": Column("text", "region"),
    "batch_id": Column("text", "batchId"),
    "trigger_function": Column("text", "triggerFunction"),
    "has_attempts": Column("bool"),  # whether this answer carried attempts
    "attempts_listed": Column("bigint"),
    "has_error": Column("bool"),  # whether this answer carried an error (null included)
    "error_message": Column("text", "error.message"),  # or the error itself, when a bare string
    "error_name": Column("text", "error.name"),
    "error_stack_trace": Column("text", "error.stackTrace"),
    "metadata": Column("json", "metadata"),
    "schedule": Column("json", "schedule"),
    "related_runs": Column("json", "relatedRuns"),
    "ttl": Column("json", "ttl"),
    "payload": Column("json", "payload", private=True),
    "output": Column("json", "output", private=True),
    "extra": Column("json"),  # fields the API added that no column names, kept whole
}
# A child row carries its answer's `seen_at` too: the rows a sync wrote lie together in the
# table, so a reader of one sync's rows (the archive) skips the rest without a join.
ANSWERED = Column("timestamp")
TAG_COLUMNS: dict[str, Column] = {
    "run_id": KEY,
    "observation_id": KEY,
    "tag_index": Column("bigint"),
    "value": Column("text"),
    "seen_at": ANSWERED,
}
# Sources here are fields of one attempt object.
ATTEMPT_COLUMNS: dict[str, Column] = {
    "run_id": KEY,
    "observation_id": KEY,
    "attempt_id": Column("text", "id"),
    "attempt_number": Column("bigint"),  # 1-based, in API order
    "status": Column("text", "status"),
    "created_at": Column("timestamp", "createdAt"),
    "updated_at": Column("timestamp", "updatedAt"),
    "started_at": Column("timestamp", "startedAt"),
    "completed_at": Column("timestamp", "completedAt"),
    "error_message": Column("text", "error.message"),
    "error_name": Column("text", "error.name"),
    "seen_at": ANSWERED,
}
# Each kind of answer has its root table and two child tables.
ROOTS = {"list": "runs", "retrieve": "run_details"}
TABLES: dict[str, dict[str, Column]] = {
    name: columns
    for root in ROOTS.values()
    for name, columns in (
        (root, RUN_COLUMNS),
        (f"{root}__tags", TAG_COLUMNS),
        (f"{root}__attempts", ATTEMPT_COLUMNS),
    )
}


def api_fields(columns: Mapping[str, Column], kind: str, private: bool = False) -> dict[str, str]:
    """API field to column, for the columns of `kind` read straight from one field."""
    return {
        c.source: name
        for name, c in columns.items()
        if c.source and "." not in c.source and c.kind == kind and c.private == private
    }


def api_objects(columns: Mapping[str, Column]) -> dict[str, dict[str, str]]:
    """Object field to its text fields, each to its column (`env` -> {"id": "env_id", ...})."""
    objects: dict[str, dict[str, str]] = {}
    for name, column in columns.items():
        if column.source and "." in column.source:
            if column.kind != "text":
                raise ValueError(f"{name}: only text fields of an object are read")
            parent, child = column.source.split(".", 1)
            objects.setdefault(parent, {})[child] = name
    return objects


def api_bounds(columns: Mapping[str, Column]) -> dict[str, tuple[float, float]]:
    """API field to the bounds of its number."""
    return {c.source: c.bounds for c in columns.values() if c.source and c.bounds}


def arrow_schema(columns: Mapping[str, Column]) -> pa.Schema:
    """The Arrow schema of a table's batches."""
    return pa.schema(
        [pa.field(name, KINDS[c.kind].arrow, nullable=c.nullable) for name, c in columns.items()]
    )


def duckdb_types(columns: Mapping[str, Column]) -> dict[str, str]:
    """Column name to its DuckDB type."""
    return {name: KINDS[c.kind].duckdb for name, c in columns.items()}


def dlt_columns(table: str) -> dict[str, Any]:
    """Column hints for dlt, so every column exists from the first load, even when all null."""
    hints: dict[str, dict[str, Any]] = {}
    for name, column in TABLES[table].items():
        hints[name] = {"name": name, "data_type": column.kind, **column.hints}
        if not column.nullable:
            hints[name]["nullable"] = False
    return hints


SCHEMAS = {name: arrow_schema(columns) for name, columns in TABLES.items()}
RAW_TABLES = {name: duckdb_types(columns) for name, columns in TABLES.items()}
JSON_COLUMNS = [name for name, column in RUN_COLUMNS.items() if column.kind == "json"]


def observation_id(row: dict[str, Any], observed_by: str) -> str:
    """Unique per answer: which mode answered, which run, and when."""
    return f"{observed_by[0]}:{row['id']}:{row['seen_at'].timestamp():.6f}"


class Answers(NamedTuple):
    """Answers of one kind (`list` or `retrieve`) about some runs, in the raw tables' shapes."""

    kind: str
    runs: pa.Table
    tags: pa.Table
    attempts: pa.Table

    def tables(self) -> dict[str, pa.Table]:
        """The three tables by their raw table names, e.g. `runs`, `runs__tags`, `runs__attempts`."""
        root = ROOTS[self.kind]
        return {root: self.runs, f"{root}__tags": self.tags, f"{root}__attempts": self.attempts}


def _columns(rows: list[dict[str, Any]], table: str, **given: list) -> pa.Table:
    """Column by column, which is several times faster than building one dict per row."""
    arrays = {}
    for name, column in TABLES[table].items():
        values = given[name] if name in given else [row.get(name) for row in rows]
        if column.kind == "json":
            values = [None if v is None else orjson.dumps(v).decode() for v in values]
        arrays[name] = pa.array(values, type=KINDS[column.kind].arrow)
    return pa.Table.from_pydict(arrays, schema=SCHEMAS[table])


def rows_to_answers(rows: list[dict[str, Any]], observed_by: str) -> Answers:
    """Run rows (from `to_run_row`) as Arrow tables: the runs and their tags and attempts."""
    root = ROOTS[observed_by]
    oids = [observation_id(row, observed_by) for row in rows]
    tag_run, tag_oid, tag_index, tag_value, tag_seen = [], [], [], [], []
    attempts, attempt_run, attempt_oid, attempt_seen = [], [], [], []
    for row, oid in zip(rows, oids, strict=True):
        for i, tag in enumerate(row["tags"]):
            tag_run.append(row["id"])
            tag_oid.append(oid)
            tag_index.append(i)
            tag_value.append(tag)
            tag_seen.append(row["seen_at"])
        for attempt in row["attempts"]:
            attempts.append(attempt)
            attempt_run.append(row["id"])
            attempt_oid.append(oid)
            attempt_seen.append(row["seen_at"])
    return Answers(
        observed_by,
        _columns(rows, root, observation_id=oids),
        _columns(
            [],
            f"{root}__tags",
            run_id=tag_run,
            observation_id=tag_oid,
            tag_index=tag_index,
            value=tag_value,
            seen_at=tag_seen,
        ),
        _columns(
            attempts,
            f"{root}__attempts",
            run_id=attempt_run,
            observation_id=attempt_oid,
            seen_at=attempt_seen,
        ),
    )
