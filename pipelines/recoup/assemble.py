"""Checked pages of list answers assembled into the three list tables, in a few dozen Arrow calls.

This runs in the one thread that feeds dlt (see columnar.py for why the work is split).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.recoup.columnar import ATTEMPT, ITEM, TEXT, CheckedPage
from pipelines.recoup.tables import SCHEMAS, TIMESTAMP, Answers
from pipelines.recoup.transform import (
    ATTEMPT_OBJECT_FIELDS,
    ATTEMPT_TEXT_FIELDS,
    ATTEMPT_TIME_FIELDS,
    BOOL_FIELDS,
    INTEGER_FIELDS,
    NUMBER_FIELDS,
    OBJECT_FIELDS,
    TEXT_FIELDS,
    TIME_FIELDS,
)
from pipelines.recoup.values import micros


def _positions(lists: pa.ListArray) -> tuple[pa.Array, pa.Array]:
    """For every value of `lists`: the row it belongs to, and its 0-based place in that row."""
    parent = pc.list_parent_indices(lists)
    offsets = pc.subtract(lists.offsets, lists.offsets[0]).cast(pa.int64())
    places = pc.subtract(pc.cumulative_sum(pa.repeat(pa.scalar(1, pa.int64()), len(parent))), 1)
    return parent, pc.subtract(places, pc.take(offsets, parent))


def _object_columns(field: dict[str, pa.Array], objects: dict[str, dict[str, str]]) -> dict[str, pa.Array]:
    """The columns read from the text fields of object fields (a null object: nulls)."""
    return {
        column: array
        for parent, children in objects.items()
        for column, array in zip(children.values(), field[parent].flatten(), strict=True)
    }


def assemble(pages: list[CheckedPage]) -> Answers:
    """Checked pages (of any accounts) as the three list tables, in one set of Arrow calls."""
    runs = pa.concat_arrays([page.runs for page in pages]) if pages else pa.array([], ITEM)
    count = len(runs)
    field = dict(zip(ITEM.names, runs.flatten(), strict=True))
    tags, attempts = field["tags"], field["attempts"]
    attempt = dict(zip(ATTEMPT.names, attempts.flatten().flatten(), strict=True))
    times = {column: pc.cast(field[source], TIMESTAMP) for source, column in TIME_FIELDS.items()}
    attempt_times = {
        column: pc.cast(attempt[source], TIMESTAMP) for source, column in ATTEMPT_TIME_FIELDS.items()
    }
    times["updated_at"] = pc.coalesce(times["updated_at"], times["created_at"])

    ids = field["id"]
    suffixes = pa.array(
        [f":{page.seen_at.timestamp():.6f}" for page in pages for _ in range(len(page))], TEXT
    )
    oids = pc.binary_join_element_wise("l:", ids, suffixes, "")
    accounts = [page.account_id for page in pages for _ in range(len(page))]
    seen = pa.array([micros(page.seen_at) for page in pages for _ in range(len(page))], pa.int64()).view(
        TIMESTAMP
    )
    texts = {
        column: [v for page in pages for v in page.texts[column]]
        for column in (pages[0].texts if pages else {})
    }
    columns: dict[str, Any] = {
        "id": ids, "observation_id": oids, "account_id": pa.array(accounts, TEXT),
        **{column: field[source] for source, column in TEXT_FIELDS.items()},
        **times, "seen_at": seen,
        **{column: field[source] for fields in (NUMBER_FIELDS, INTEGER_FIELDS, BOOL_FIELDS)
           for source, column in fields.items()},
        "has_attempts": pc.is_valid(attempts), "attempts_listed": pc.list_value_length(attempts).cast(pa.int64()),
        "has_error": pa.array([v for page in pages for v in page.has_error], pa.bool_()),
        **_object_columns(field, OBJECT_FIELDS),
        **{column: pa.array(values, TEXT) for column, values in texts.items()},
        "extra": pa.array([v for page in pages for v in page.extra], TEXT),
    }  # fmt: skip
    run_schema = SCHEMAS["runs"]
    for name in run_schema.names:
        columns.setdefault(name, pa.nulls(count, run_schema.field(name).type))  # payload, output

    tag_run, tag_index = _positions(tags)
    tag_columns = {"run_id": ids.take(tag_run), "observation_id": oids.take(tag_run), "tag_index": tag_index,
                   "value": tags.flatten(), "seen_at": seen.take(tag_run)}  # fmt: skip
    attempt_run, attempt_index = _positions(attempts)
    attempt_columns = {
        "run_id": ids.take(attempt_run), "observation_id": oids.take(attempt_run),
        **{column: attempt[source] for source, column in ATTEMPT_TEXT_FIELDS.items()},
        "attempt_number": pc.add(attempt_index, 1), **attempt_times,
        **_object_columns(attempt, ATTEMPT_OBJECT_FIELDS), "seen_at": seen.take(attempt_run),
    }  # fmt: skip
    return Answers(
        "list",
        pa.Table.from_pydict({name: columns[name] for name in run_schema.names}, schema=run_schema),
        pa.Table.from_pydict(tag_columns, schema=SCHEMAS["runs__tags"]),
        pa.Table.from_pydict(attempt_columns, schema=SCHEMAS["runs__attempts"]),
    )
