"""The dlt source `recoup`: every configured account's task runs, merged on run id.

Two kinds of answer about a run land in two root tables, both merged on `id`: `runs` holds
what list mode last said, `run_details` what retrieve mode last said. Each has two child
tables (`__tags`, `__attempts`) whose rows belong to one answer (`observation_id`) and are
replaced with it, so a field one kind of answer does not carry is never erased by the other;
the SQL models reconcile them (the latest answer wins, field by field).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import dlt
import pyarrow as pa
import pyarrow.compute as pc
from dlt.extract.hints import make_hints

from pipelines.recoup.assemble import assemble
from pipelines.recoup.columnar import CheckedPage
from pipelines.recoup.pages import SOURCE_NAME
from pipelines.recoup.tables import JSON_COLUMNS, ROOTS, TABLES, Answers, dlt_columns, rows_to_answers

BATCH_RUNS = 5_000  # runs per Arrow batch: large enough for parquet, small enough for memory
LARGE_VALUE = 16_384  # bytes: free-form JSON values this large weigh on DuckDB's merge


class LoadSize:
    """How much large free-form JSON a sync hands to dlt, counted as batches pass."""

    def __init__(self) -> None:
        self.large_bytes = 0

    def count(self, batch: pa.Table) -> None:
        """Adds the bytes of the JSON values of `batch` that are at least `LARGE_VALUE` long."""
        for name in JSON_COLUMNS:
            if name in batch.column_names:
                lengths = pc.binary_length(batch[name])
                self.large_bytes += (
                    pc.sum(pc.if_else(pc.greater_equal(lengths, LARGE_VALUE), lengths, 0)).as_py() or 0
                )


class _JsonAsText(logging.Filter):
    """dlt warns on every batch that JSON columns arrive as Arrow strings; that is by design."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "when merging arrow schema with dlt schema" not in record.getMessage()


logging.getLogger("dlt").addFilter(_JsonAsText())


def _hints(table: str) -> Any:
    if table in ROOTS.values():
        return make_hints(
            table_name=table, write_disposition="merge", primary_key="id", columns=dlt_columns(table)
        )
    return make_hints(table_name=table, columns=dlt_columns(table), merge_key="run_id",
                      write_disposition={"disposition": "merge", "strategy": "delete-insert"})  # fmt: skip


HINTS = {table: _hints(table) for table in TABLES}


def _answers(
    pages: list[CheckedPage], list_rows: list[dict[str, Any]], detail_rows: list[dict[str, Any]]
) -> Iterator[Answers]:
    if pages:
        yield assemble(pages)
    if list_rows:
        yield rows_to_answers(list_rows, "list")
    if detail_rows:
        yield rows_to_answers(detail_rows, "retrieve")


def to_tables(
    results: Iterable[Any], batch_runs: int = BATCH_RUNS, size: LoadSize | None = None
) -> Iterator[Any]:
    """Rows to load (`Listed` accounts or `FollowupBatch`es) as Arrow tables for every raw table.

    Rows are held until about `batch_runs` runs have come, then yielded together.
    """
    pages: list[CheckedPage] = []
    list_rows: list[dict[str, Any]] = []
    detail_rows: list[dict[str, Any]] = []

    def flush() -> Iterator[Any]:
        parts: dict[str, list[pa.Table]] = {}
        for answers in _answers(pages, list_rows, detail_rows):
            for table, part in answers.tables().items():
                parts.setdefault(table, []).append(part)
        for held in (pages, list_rows, detail_rows):
            held.clear()
        for table, tables in parts.items():
            batch = pa.concat_tables(tables).combine_chunks() if len(tables) > 1 else tables[0]
            if batch.num_rows:
                if size is not None and table in ROOTS.values():
                    size.count(batch)
                yield dlt.mark.with_hints(batch, HINTS[table], create_table_variant=True)

    runs = 0
    for item in results:
        rows = item.rows
        runs += rows.runs
        pages.extend(rows.pages)
        list_rows.extend(rows.list_rows)
        detail_rows.extend(rows.detail_rows)
        if runs >= batch_runs:
            yield from flush()
            runs = 0
    yield from flush()


def _empty_tables(names: Iterable[str]) -> Iterator[Any]:
    """Each named raw table with no rows, for dlt to create from its hints."""
    wanted = set(names)
    for mode in ("list", "retrieve"):
        for table, empty in rows_to_answers([], mode).tables().items():
            if table in wanted:
                yield dlt.mark.with_hints(empty, HINTS[table], create_table_variant=True)


@dlt.source(name=SOURCE_NAME)
def recoup(
    results: Iterable[Any],
    size: LoadSize | None = None,
    state_after: Callable[[], dict[str, Any]] | None = None,
    materialize: Iterable[str] = (),
) -> Any:
    """The runs of every account, merged on `id` into the raw tables.

    Args:
        results: what the lists and the fetches by id produced (only new or changed runs carry
            rows), consumed as it arrives so that memory stays bounded.
        size: counts the large JSON values handed over, for the load's memory budget.
        state_after: the entries of the source's state once every result has passed (the
            page marks, folded from what the sync fetched, and the open-runs mark), for dlt to
            store with the load.
        materialize: raw tables the warehouse lacks: dlt creates them, empty if no rows come.
    """

    # Every batch carries the hints of its own table (see HINTS), so the resource declares none.
    @dlt.resource(name="runs")
    def runs() -> Iterator[Any]:
        yield from _empty_tables(materialize)
        yield from to_tables(results, size=size)
        if state_after is not None:
            dlt.current.source_state().update(state_after())

    return runs
