"""Run objects of any shape become a row or a named rejection, never a crash (hypothesis)."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pipelines.config import load_settings
from pipelines.emulator import EmulatorServer, World
from pipelines.emulator.render import to_list_item
from pipelines.recoup.assemble import assemble
from pipelines.recoup.columnar import NotColumnar, check_page
from pipelines.recoup.errors import BadRunError
from pipelines.recoup.tables import ATTEMPT_COLUMNS, RUN_COLUMNS, Column, api_objects, rows_to_answers
from pipelines.recoup.transform import status_group, to_run_row
from pipelines.recoup.values import micros
from pipelines.sync import run_sync
from tests.conftest import FAST_RETRY, NOW, sync_env

SEEN = datetime(2026, 11, 20, tzinfo=UTC)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
dates = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.timezones())
iso_dates = dates.map(lambda d: d.isoformat())
# Every field the raw schema reads (pipelines/recoup/tables.py), by the kind of its column: a
# field added there is generated here too, so both paths are compared on it.
by_kind = {
    "timestamp": iso_dates | st.none(),
    "text": st.text(max_size=20) | st.none(),
    "double": st.floats(allow_nan=False) | st.none(),
    "bigint": st.integers(-(2**63), 2**63 - 1) | st.none(),
    "bool": st.booleans() | st.none(),
    "json": json_values,
}


def _values(column: Column) -> st.SearchStrategy:
    if column.bounds and column.kind == "bigint":
        return st.integers(*column.bounds) | st.none()
    if column.bounds:
        return st.floats(*column.bounds) | st.none()
    return by_kind[column.kind]


def described(columns: dict[str, Column]) -> dict[str, st.SearchStrategy]:
    fields = {c.source: _values(c) for c in columns.values() if c.source and "." not in c.source}
    for parent, children in api_objects(columns).items():
        fields[parent] = st.none() | st.fixed_dictionaries(
            {}, optional=dict.fromkeys(children, by_kind["text"])
        )
    return fields


attempt = st.fixed_dictionaries(
    {}, optional={**described(ATTEMPT_COLUMNS), "createdAt": iso_dates},
)  # fmt: skip
good_run = st.fixed_dictionaries(
    {"id": st.text(min_size=1, max_size=30).filter(str.strip).map(lambda s: "run_" + s),
     "createdAt": iso_dates},
    optional={
        **{source: values for source, values in described(RUN_COLUMNS).items() if source != "createdAt"},
        "status": st.sampled_from(["COMPLETED", "FAILED", "FROZEN", "DEQUEUED", "SOMETHING_NEW"]),
        "tags": st.lists(st.text(min_size=1, max_size=128), max_size=10),
        "attempts": st.lists(attempt, max_size=3),
        "isCompleted": st.booleans(),  # derived from status: not stored
        "newField": json_values,
    },
)  # fmt: skip
# A well-formed run with one field replaced by any JSON value: what lax conversions would let through.
one_field_off = st.builds(
    lambda run, key, value: {**run, key: value},
    good_run,
    st.sampled_from(["id", "status", "createdAt", "updatedAt", "costInCents", "durationMs", "isTest", "tags",
                     "env", "attempts", "error", "metadata", "depth", "attemptCount"]),
    json_values | st.booleans() | st.floats(-5, 5) | st.lists(st.none() | st.text(max_size=3), max_size=2)
    | st.integers(-(2**40), 2**40),
)  # fmt: skip
any_run = good_run | st.dictionaries(
    st.sampled_from(["id", "createdAt", "updatedAt", "costInCents", "tags", "env", "attempts", "error", "isTest", "status"]),
    json_values,
) | json_values  # fmt: skip


@pytest.mark.slow
@given(good_run)
def test_well_formed_runs_always_become_rows(item: dict) -> None:
    row = to_run_row(item, account_id="acc", seen_at=SEEN)
    assert row["id"] == item["id"]
    assert row["created_at"].tzinfo is UTC
    assert row["created_at"] == datetime.fromisoformat(item["createdAt"]).astimezone(UTC)
    assert row["tags"] == list(dict.fromkeys(item.get("tags", [])))
    if "newField" in item:
        assert row["extra"] == {"newField": item["newField"]}


@given(any_run)
def test_any_object_becomes_a_row_or_a_named_rejection(item: object) -> None:
    try:
        row = to_run_row(item, account_id="acc", seen_at=SEEN)
    except BadRunError as exc:
        assert str(exc).startswith("run ")
    else:
        assert isinstance(row["id"], str) and row["created_at"] is not None


def _same_tables(items: list, keep_private: bool) -> None:
    page = check_page(items, account_id="acc", seen_at=SEEN, keep_private=keep_private)
    column_wise = assemble([page])
    rows = [to_run_row(item, account_id="acc", seen_at=SEEN, keep_private=keep_private) for item in items]
    run_by_run = rows_to_answers(rows, "list")
    for table in ("runs", "tags", "attempts"):
        built, expected = getattr(column_wise, table), getattr(run_by_run, table)
        assert built.schema == expected.schema
        assert built.to_pylist() == expected.to_pylist(), table
    # What the sync decides from a page (new, changed, in flight, details wanted) is the same too.
    assert page.facts == [
        (row["id"], micros(row["updated_at"]), row.get("status"), row["has_attempts"] and row["has_error"])
        for row in rows
    ]


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(
    st.lists(good_run, max_size=6, unique_by=lambda r: r["id"]) | st.lists(any_run, max_size=4), st.booleans()
)
def test_the_column_path_builds_exactly_what_the_row_path_builds(items: list, keep_private: bool) -> None:
    try:
        _same_tables(items, keep_private)
    except NotColumnar:
        assume(False)  # the page goes run by run (next test); too many such pages fail this test


@pytest.mark.slow
@settings(max_examples=300)
@given(st.lists(one_field_off | good_run, min_size=1, max_size=4))
def test_a_page_the_column_path_takes_holds_no_run_the_row_path_rejects(items: list) -> None:
    try:
        check_page(items, account_id="acc", seen_at=SEEN)
    except NotColumnar:
        return
    for item in items:
        to_run_row(item, account_id="acc", seen_at=SEEN)  # raises BadRunError if the column path was lax


def test_the_emulators_pages_take_the_column_path_in_both_profiles() -> None:
    for profile in ("documented", "observed"):
        world = World(accounts=3, runs_per_account=60, seed=5, now=NOW, profile=profile)
        for account in world.account_ids:
            items = [to_list_item(run, world.profile) for run in world.visible(account, 100)]
            _same_tables(
                orjson.loads(orjson.dumps(items)), keep_private=True
            )  # NotColumnar here fails the test


def _sample(kind: str) -> object:
    return {"timestamp": "2026-11-20T10:00:00.5+01:00", "text": "some text", "double": 12.5, "bigint": 7,
            "bool": True, "json": {"key": [1, "two"]}}[kind]  # fmt: skip


def _full(columns: dict[str, Column]) -> dict[str, object]:
    """An API object giving every field the description reads, none of them null."""
    item: dict[str, object] = {}
    for column in columns.values():
        if column.source and "." in column.source:
            parent, child = column.source.split(".", 1)
            item.setdefault(parent, {})[child] = _sample(column.kind)  # type: ignore[index]
        elif column.source:
            item[column.source] = _sample(column.kind)
    return item


def test_every_described_field_given_reaches_its_column_in_both_paths() -> None:
    item = {**_full(RUN_COLUMNS), "id": "run_full", "attempts": [_full(ATTEMPT_COLUMNS)], "tags": ["a:b"]}
    _same_tables([item], keep_private=True)
    answers = assemble([check_page([item], account_id="acc", seen_at=SEEN, keep_private=True)])
    (run,), (stored_attempt,) = answers.runs.to_pylist(), answers.attempts.to_pylist()
    assert [name for name, value in run.items() if value is None] == ["extra"]
    assert [name for name, value in stored_attempt.items() if value is None] == []


def test_a_number_outside_its_described_bounds_rejects_the_run_in_both_paths() -> None:
    """depth and attemptCount become INTEGER in the models: a larger one would fail every build."""
    for field, value in (("depth", 2**31), ("attemptCount", -(2**31) - 1), ("costInCents", -0.5)):
        item = {"id": "run_big", "createdAt": "2026-11-20T10:00:00Z", field: value}
        with pytest.raises(NotColumnar):
            check_page([item], account_id="acc", seen_at=SEEN)
        with pytest.raises(BadRunError, match=field):
            to_run_row(item, account_id="acc", seen_at=SEEN)


def test_status_groups_cover_both_vocabularies_and_unknown() -> None:
    assert [status_group(s) for s in ("FROZEN", "WAITING", "REATTEMPTING", "DEQUEUED", "INTERRUPTED", "NEW", None)] == [
        "waiting", "waiting", "running", "running", "failed", "unknown", "unknown"]  # fmt: skip


@pytest.mark.slow
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(any_run, max_size=6), st.lists(good_run, min_size=1, max_size=4, unique_by=lambda r: r["id"]))
def test_generated_pages_load_every_good_run_once_and_name_every_bad_one(junk: list, good: list) -> None:
    world = World(accounts=1, runs_per_account=5, seed=1, now=NOW)
    account = world.account_ids[0]
    good = [
        {**r, "id": f"{r['id']}-{i}", "createdAt": (NOW - timedelta(hours=i + 1)).isoformat()}
        for i, r in enumerate(good)
    ]
    world.extra_items[account] = good + junk
    with tempfile.TemporaryDirectory() as folder, EmulatorServer(world) as server:
        db = Path(folder) / "recoup.duckdb"
        summary = run_sync(load_settings(sync_env(world, server, db)), retry=FAST_RETRY)
        ids = [
            r[0]
            for r in duckdb.connect(str(db), read_only=True)
            .execute("select run_id from analytics.runs")
            .fetchall()
        ]
    assert len(ids) == len(set(ids)), "no run twice"
    assert {r["id"] for r in good} <= set(ids), "no good run lost"
    rejected = 0
    for item in junk:
        try:
            assert to_run_row(item, account_id=account, seen_at=SEEN)["id"] in ids, (
                "a valid extra run is loaded"
            )
        except BadRunError:
            rejected += 1
    result = summary.results[0]
    assert len(result.problems) == rejected, "every rejected run is named"
    assert (summary.exit_code == 0) == (rejected == 0)
