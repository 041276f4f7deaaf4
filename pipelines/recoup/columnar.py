"""A list answer's runs as Arrow tables, column by column.

`to_run_row` checks a run field by field in Python, about 25 µs a run, and assembling rows
into Arrow columns costs as much again. Here the work is split in two:

- `check_page`, in the thread that fetched the page: one short Python pass settles what Arrow
  cannot (identity, `createdAt`, the few conversions Arrow would accept but the row path
  rejects), Arrow converts the page against a typed struct, and one cast parses all its
  timestamps. A page it cannot take whole raises `NotColumnar`; `list_answers` then takes it run
  by run, which names every bad run.
- `assemble` (assemble.py), in the one thread that feeds dlt: thousands of checked runs become the three
  tables in a few dozen Arrow calls. Arrow calls release the GIL, and the fetching threads
  would each wait for it again, so they make as few as they can.

Both paths produce equal tables; tests/test_transform.py checks that on generated pages.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.recoup.errors import BadRunError
from pipelines.recoup.tables import KINDS, TIMESTAMP
from pipelines.recoup.transform import (
    ATTEMPT_OBJECT_FIELDS,
    ATTEMPT_TEXT_FIELDS,
    ATTEMPT_TIME_FIELDS,
    BOOL_FIELDS,
    DEFAULT_LIMITS,
    INTEGER_FIELDS,
    JSON_FIELDS,
    KNOWN_FIELDS,
    NUMBER_FIELDS,
    OBJECT_FIELDS,
    SIZED_FIELDS,
    TEXT_FIELDS,
    TIME_FIELDS,
    Limits,
    fit,
    to_run_row,
)
from pipelines.recoup.values import BOUNDS, EARLIEST, LATEST

log = logging.getLogger("recoup")

TEXT = pa.string()


def _objects(objects: dict[str, dict[str, str]]) -> list[tuple[str, pa.DataType]]:
    return [
        (parent, pa.struct([(child, TEXT) for child in children])) for parent, children in objects.items()
    ]


# What Arrow reads of an attempt and of a run object: the fields tables.py names, each typed by
# its kind (times as text, parsed after conversion), and the nested ones handled here. Every
# other key of a run is handled in Python.
ATTEMPT = pa.struct(
    [(name, TEXT) for name in (*ATTEMPT_TEXT_FIELDS, *ATTEMPT_TIME_FIELDS)] + _objects(ATTEMPT_OBJECT_FIELDS)
)
_READ = {"timestamp": TIME_FIELDS, "text": TEXT_FIELDS, "double": NUMBER_FIELDS, "bigint": INTEGER_FIELDS,
         "bool": BOOL_FIELDS}  # fmt: skip
ITEM = pa.struct(
    [("id", TEXT)]
    + [
        (name, TEXT if kind == "timestamp" else KINDS[kind].arrow)
        for kind, fields in _READ.items()
        for name in fields
    ]
    + _objects(OBJECT_FIELDS)
    + [("tags", pa.list_(TEXT)), ("attempts", pa.list_(ATTEMPT))]
)
# Where the page's creation and update times sit among its times (see `check_page`).
_CREATED, _UPDATED = list(TIME_FIELDS).index("createdAt"), list(TIME_FIELDS).index("updatedAt")


class NotColumnar(Exception):
    """The page holds something only the run-by-run path decides correctly."""


@dataclass
class CheckedPage:
    """One list answer's runs, checked, waiting to be assembled with other pages."""

    account_id: str
    seen_at: datetime
    runs: pa.StructArray  # typed by ITEM
    has_error: list[bool]
    extra: list[str | None]  # unknown fields, as JSON
    texts: dict[str, list[str | None]]  # the JSON columns
    facts: list[tuple[str, int, str | None, bool]]  # id, updatedAt (epoch µs), status, details carried

    def __len__(self) -> int:
        return len(self.runs)


def _object_or_none(value: Any) -> bool:
    return value is None or type(value) is dict


def _check_items(items: list[Any], keep_private: bool, limits: Limits) -> tuple[list, list, list, dict]:
    """The one Python pass over the runs: rules Arrow does not enforce, and what it cannot hold."""
    ids, statuses, carried, has_error = [], [], [], []
    extra: list[str | None] = []
    json_sources = SIZED_FIELDS if keep_private else JSON_FIELDS
    texts: dict[str, list[str | None]] = {column: [] for column in json_sources.values()}
    for item in items:
        if type(item) is not dict:
            raise NotColumnar
        run_id = item.get("id")
        if type(run_id) is not str or not run_id.strip() or item.get("createdAt") is None:
            raise NotColumnar  # no id or no creation time: the row path names what is wrong
        try:
            marks = fit(item, keep_private, limits)
        except BadRunError:
            raise NotColumnar from None  # too large to load: the row path names it with its size
        for name in NUMBER_FIELDS:
            if type(item.get(name)) is bool:  # Arrow would read true as 1.0
                raise NotColumnar
        for name in INTEGER_FIELDS:
            if type(item.get(name)) is float:  # Arrow would truncate 1.5 to 1
                raise NotColumnar
        tags = item.get("tags")
        if tags is not None and (type(tags) is not list or len(set(tags)) != len(tags)):
            raise NotColumnar  # "" is no tags, a tag twice is one tag: the row path decides
        attempts = item.get("attempts")
        if attempts is not None:
            if type(attempts) is not list:
                raise NotColumnar
            for attempt in attempts:
                if type(attempt) is not dict or not all(
                    _object_or_none(attempt.get(p)) for p in ATTEMPT_OBJECT_FIELDS
                ):
                    raise NotColumnar
        if not all(_object_or_none(item.get(parent)) for parent in OBJECT_FIELDS):
            raise NotColumnar  # Arrow reads [] as an empty object; a bare error string goes run by run
        ids.append(run_id)
        statuses.append(item.get("status"))
        has_error.append("error" in item)
        carried.append(attempts is not None and has_error[-1])
        for source, column in json_sources.items():
            value = marks.get(source, item.get(source))
            texts[column].append(None if value is None else orjson.dumps(value).decode())
        if KNOWN_FIELDS.issuperset(item):
            extra.append(None)
        else:
            extra.append(orjson.dumps({k: v for k, v in item.items() if k not in KNOWN_FIELDS}).decode())
    if len(set(ids)) != len(ids):
        raise NotColumnar  # a run listed twice: the row path keeps the later answer
    return ids, statuses, carried, {"has_error": has_error, "extra": extra, "texts": texts}


def _holds(condition: pa.Array) -> bool:
    """True unless a value that is not null fails `condition` (NaN fails every comparison)."""
    return pc.all(condition).as_py() is not False


def check_page(
    items: list[Any],
    *,
    account_id: str,
    seen_at: datetime,
    keep_private: bool = False,
    limits: Limits = DEFAULT_LIMITS,
) -> CheckedPage:
    """Checks one list answer's runs for the column-wise path.

    Raises:
        NotColumnar: some run needs the run-by-run path (maybe a bad one, maybe only unusual).
    """
    try:
        ids, statuses, carried, held = _check_items(items, keep_private, limits)
        runs = pa.array(items, type=ITEM)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        raise NotColumnar from None
    for name, (low, high) in BOUNDS.items():
        number = runs.field(name)
        if not _holds(pc.and_(pc.greater_equal(number, low), pc.less_equal(number, high))):
            raise NotColumnar  # e.g. a negative, infinite or absurd cost: the row path names the run
    attempts = runs.field("attempts").flatten()  # the page's attempts (runs are never null)
    if runs.field("tags").flatten().null_count or attempts.null_count:
        raise NotColumnar  # a null tag or attempt: the row path rejects the run
    strings = [runs.field(name) for name in TIME_FIELDS] + [
        attempts.field(name) for name in ATTEMPT_TIME_FIELDS
    ]
    try:
        times = pc.cast(pa.concat_arrays(strings), TIMESTAMP)  # every time of the page in one call
    except pa.ArrowException:
        raise NotColumnar from None  # not an ISO-8601 time Arrow reads: the row path decides
    if not _holds(pc.and_(pc.greater_equal(times, EARLIEST), pc.less(times, LATEST))):
        raise NotColumnar  # a date outside 2000-2100: the row path names the run
    count = len(items)
    created = times.slice(_CREATED * count, count).view(pa.int64()).to_pylist()
    updated = times.slice(_UPDATED * count, count).view(pa.int64()).to_pylist()
    updated_us = [u if u is not None else c for u, c in zip(updated, created, strict=True)]
    facts = list(zip(ids, updated_us, statuses, carried, strict=True))
    return CheckedPage(account_id, seen_at, runs, held["has_error"], held["extra"], held["texts"], facts)


def list_answers(
    items: list[Any],
    *,
    account_id: str,
    seen_at: datetime,
    keep_private: bool = False,
    limits: Limits = DEFAULT_LIMITS,
) -> tuple[CheckedPage | list[dict[str, Any]], list[str]]:
    """A list answer's runs, checked for the column-wise path or else as rows.

    Returns the runs and a reason for every run rejected. A run listed twice keeps its later
    `updatedAt` (the first one on a tie).
    """
    given: dict[str, Any] = {
        "account_id": account_id,
        "seen_at": seen_at,
        "keep_private": keep_private,
        "limits": limits,
    }
    try:
        page = check_page(items, **given)
    except NotColumnar:
        log.debug("a page of %d runs of account %s is read run by run", len(items), account_id)
    else:
        log.debug("a page of %d runs of account %s is read column-wise", len(items), account_id)
        return page, []
    rows: dict[str, dict[str, Any]] = {}
    problems = []
    for item in items:
        try:
            row = to_run_row(item, **given)
        except BadRunError as exc:
            problems.append(f"rejected {exc}")
            continue
        earlier = rows.get(row["id"])
        if earlier is None or row["updated_at"] > earlier["updated_at"]:
            rows[row["id"]] = row
    return list(rows.values()), problems
