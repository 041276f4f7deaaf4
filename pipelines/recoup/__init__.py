"""The dlt source `recoup`: every configured account's task runs, merged on run id.

Two kinds of answer about a run land in two root tables, both merged on `id`: `runs` holds
what list mode last said, `run_details` what retrieve mode last said. Each has two child
tables (`__tags`, `__attempts`) whose rows belong to one answer (`observation_id`) and are
replaced with it, so a field one kind of answer does not carry is never erased by the other;
the SQL models reconcile them (the latest answer wins, field by field).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

import dlt
from dlt.extract.hints import make_hints

from pipelines.recoup.fetch import AccountResult
from pipelines.recoup.tables import ROOTS, TABLES, dlt_columns, to_batches

BATCH_RUNS = 5_000  # runs per Arrow batch: large enough for parquet, small enough for memory


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


def to_tables(results: Iterable[AccountResult], batch_runs: int = BATCH_RUNS) -> Iterator[Any]:
    """Account results as Arrow tables for every raw table, `batch_runs` runs at a time."""
    pending: dict[str, list[dict[str, Any]]] = {"list": [], "retrieve": []}

    def flush() -> Iterator[Any]:
        for observed_by, rows in pending.items():
            if rows:
                for table, batch in to_batches(rows, observed_by).items():
                    if batch.num_rows:
                        yield dlt.mark.with_hints(batch, HINTS[table], create_table_variant=True)
                rows.clear()

    for result in results:
        pending["list"] += result.list_rows
        pending["retrieve"] += result.detail_rows
        # The rows now belong to the batch; the result keeps only its counts (sync_log, summary).
        result.list_rows, result.detail_rows = [], []
        if len(pending["list"]) + len(pending["retrieve"]) >= batch_runs:
            yield from flush()
    yield from flush()


@dlt.source(name="recoup")
def recoup(results: Iterable[AccountResult]) -> Any:
    """The runs of every account, merged on `id` into the raw tables.

    Args:
        results: what `fetch_all` produced for each account (only new or changed runs carry
            rows), consumed as it arrives so that memory stays bounded.
    """

    # Every batch carries the hints of its own table (see HINTS), so the resource declares none.
    @dlt.resource(name="runs")
    def runs() -> Iterator[Any]:
        yield from to_tables(results)

    return runs
