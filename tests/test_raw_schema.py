"""The raw schema is described once (pipelines/recoup/tables.py); Arrow, DuckDB and dlt agree with it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb

from pipelines.recoup.tables import KINDS, RAW_TABLES, ROOTS, SCHEMAS, TABLES, dlt_columns
from tests.conftest import ROOT


def _canonical(con: duckdb.DuckDBPyConnection, duck_type: str) -> str:
    """DuckDB's own spelling of a type (TIMESTAMPTZ is `TIMESTAMP WITH TIME ZONE`)."""
    return con.execute(f"select typeof(null::{duck_type})").fetchone()[0]


def test_the_arrow_duckdb_and_dlt_views_list_the_same_columns_with_matching_types() -> None:
    for table, columns in TABLES.items():
        assert SCHEMAS[table].names == list(RAW_TABLES[table]) == list(dlt_columns(table)) == list(columns)
        hints = dlt_columns(table)
        for name, column in columns.items():
            kind = KINDS[column.kind]
            assert SCHEMAS[table].field(name).type == kind.arrow, (table, name)
            assert SCHEMAS[table].field(name).nullable == column.nullable, (table, name)
            assert RAW_TABLES[table][name] == kind.duckdb, (table, name)
            assert hints[name]["data_type"] == column.kind, (table, name)
            assert hints[name].get("nullable", True) == column.nullable, (table, name)


def test_dlt_creates_the_raw_tables_exactly_as_described(sync, db_path: Path) -> None:
    sync()
    with duckdb.connect(str(db_path), read_only=True) as con:
        stored = json.loads(
            con.execute("select schema from raw._dlt_version order by inserted_at desc limit 1").fetchone()[0]
        )
        root = ROOTS["list"]
        for table in (root, f"{root}__tags", f"{root}__attempts"):
            created = {
                name: kind
                for name, kind in con.execute(
                    "select column_name, data_type from information_schema.columns"
                    " where table_schema = 'raw' and table_name = ? order by ordinal_position",
                    [table],
                ).fetchall()
                if not name.startswith("_dlt_")
            }
            assert created == {name: _canonical(con, kind) for name, kind in RAW_TABLES[table].items()}, table
            dlt_types = {
                name: column["data_type"]
                for name, column in stored["tables"][table]["columns"].items()
                if not name.startswith("_dlt_")
            }
            assert dlt_types == {name: column.kind for name, column in TABLES[table].items()}, table


# Run in a copy of the code whose description alone has three more fields: a text, a time placed
# before createdAt (the column path finds createdAt among the times by name), a field of `error`.
_ADDED = {
    '    "task_identifier": Column("text", "taskIdentifier"),\n': '    "queued_at": Column("timestamp", "queuedAt"),\n',
    '    "region": Column("text", "region"),\n': '    "machine": Column("text", "machine"),\n',
    '    "error_stack_trace": Column("text", "error.stackTrace"),\n': '    "error_code": Column("text", "error.code"),\n',
}
_PROBE = """
import json, sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb

import pipelines
from pipelines.config import load_settings
from pipelines.emulator import EmulatorServer, World
from pipelines.recoup.client import RetryPolicy
from pipelines.recoup.assemble import assemble
from pipelines.recoup.columnar import check_page
from pipelines.recoup.tables import rows_to_answers
from pipelines.recoup.transform import to_run_row
from pipelines.sync import run_sync

now = datetime(2026, 11, 20, 12, tzinfo=UTC)
item = {"id": "run_new_fields", "status": "COMPLETED", "createdAt": "2026-11-20T11:00:00Z",
        "queuedAt": "2026-11-20T11:00:05+00:00", "machine": "large-1x", "attempts": [],
        "error": {"message": "out of memory", "code": "E42"}}
wanted = ["queued_at", "machine", "error_code", "extra"]
columnar = assemble([check_page([item], account_id="acc", seen_at=now)]).runs
rows = rows_to_answers([to_run_row(item, account_id="acc", seen_at=now)], "list").runs
world = World(accounts=1, runs_per_account=5, seed=3, now=now)
world.extra_items[world.account_ids[0]] = [item]
db = Path(sys.argv[1])
with EmulatorServer(world) as server:
    env = {"RECOUP_API_KEY": world.demo_key, "RECOUP_BASE_URL": server.url, "RECOUP_DB": str(db),
           "RECOUP_ACCOUNTS": world.account_ids[0], "RECOUP_MAX_RPM": "0", "RECOUP_DETAILS": "none"}
    run_sync(load_settings(env), retry=RetryPolicy(attempts=2, backoff=0.001))
with duckdb.connect(str(db), read_only=True) as con:
    types = dict(con.execute("select column_name, data_type from information_schema.columns "
                             "where table_schema = 'raw' and table_name = 'runs'").fetchall())
    stored = con.execute("select queued_at, machine, error_code, extra from raw.runs where id = 'run_new_fields'").fetchall()
    schema = json.loads(con.execute("select schema from raw._dlt_version order by inserted_at desc limit 1").fetchone()[0])
print(json.dumps({
    "code": pipelines.__file__,
    "columnar": columnar.select(wanted).to_pylist(), "rows": rows.select(wanted).to_pylist(),
    "arrow": {name: str(columnar.schema.field(name).type) for name in wanted[:3]},
    "duckdb": {name: types.get(name) for name in wanted[:3]}, "stored": stored,
    "dlt": {name: schema["tables"]["runs"]["columns"].get(name, {}).get("data_type") for name in wanted[:3]},
}, default=str))
"""


def test_a_field_added_to_the_description_alone_reaches_arrow_duckdb_and_dlt(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    for folder in ("pipelines", "sql"):
        shutil.copytree(ROOT / folder, tree / folder, ignore=shutil.ignore_patterns("__pycache__"))
    tables = tree / "pipelines" / "recoup" / "tables.py"
    text = tables.read_text()
    for anchor, line in _ADDED.items():
        assert text.count(anchor) == 1, anchor
        text = text.replace(anchor, anchor + line)
    tables.write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECOUP_", "SOURCES__"))}
    env["PYTHONPATH"] = str(tree)
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(tmp_path / "db" / "recoup.duckdb")],
        cwd=tree, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.splitlines()[-1])
    assert Path(seen["code"]).is_relative_to(tree), "the probe must run the copy"
    expected = [
        {"queued_at": "2026-11-20 11:00:05+00:00", "machine": "large-1x", "error_code": "E42", "extra": None}
    ]
    assert seen["columnar"] == seen["rows"] == expected, "both paths fill the new columns"
    assert seen["arrow"] == {
        "queued_at": "timestamp[us, tz=UTC]",
        "machine": "string",
        "error_code": "string",
    }
    assert seen["duckdb"] == {
        "queued_at": "TIMESTAMP WITH TIME ZONE",
        "machine": "VARCHAR",
        "error_code": "VARCHAR",
    }
    assert seen["dlt"] == {"queued_at": "timestamp", "machine": "text", "error_code": "text"}
    assert seen["stored"] == [["2026-11-20 11:00:05+00:00", "large-1x", "E42", None]]


def test_tags_and_attempts_stored_without_their_answer_time_get_it_at_the_next_sync(
    sync, db_path: Path
) -> None:
    """Child rows carry their answer's `seen_at` (the archive finds a sync's rows by it); older ones are dated."""
    sync()
    children = [f"{root}__{child}" for root in ROOTS.values() for child in ("tags", "attempts")]
    with duckdb.connect(str(db_path)) as con:
        tables = "select table_name from duckdb_tables() where schema_name = 'raw'"
        present = {row[0] for row in con.execute(tables).fetchall()}
        children = [name for name in children if name in present]
        assert "runs__tags" in children and "runs__attempts" in children
        for child in children:  # as a warehouse written before the column existed
            con.execute(f"alter table raw.{child} drop column seen_at")
    sync()
    with duckdb.connect(str(db_path), read_only=True) as con:
        for child in children:
            root = child.split("__")[0]
            total, undated, wrong = con.execute(f"""
                select count(*), count(*) filter (where c.seen_at is null),
                       count(*) filter (where c.seen_at is distinct from r.seen_at)
                from raw.{child} c left join raw.{root} r using (observation_id)
            """).fetchone()  # fmt: skip
            assert undated == 0 and wrong == 0, (child, total, undated, wrong)
            assert total > 0 or root != "runs", child
