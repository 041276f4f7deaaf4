"""`make sync`: one sync of every configured account into the DuckDB warehouse.

Exit codes: 0 every account synced; 1 at least one account failed (the others loaded);
2 bad configuration or bad key (nothing loaded); 75 another sync holds the lock.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import logging
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import dlt
import duckdb
import httpx
import pyarrow as pa
from dlt.pipeline.exceptions import PipelineStepFailed

from pipelines import lake, warehouse
from pipelines.archive import ArchiveSettings
from pipelines.archive.write import archive_after_publish
from pipelines.config import Settings
from pipelines.models import ModelError, apply_models
from pipelines.recoup import LoadSize, recoup
from pipelines.recoup.client import RecoupClient, RetryPolicy
from pipelines.recoup.errors import RecoupError
from pipelines.recoup.fan_out import list_all
from pipelines.recoup.followups import Budget, fetch_followups
from pipelines.recoup.index import Index
from pipelines.recoup.options import FetchOptions
from pipelines.recoup.results import AccountResult
from pipelines.recoup.settings import PIPELINE_NAME, RAW_DATASET
from pipelines.stopping import stop_on_signals
from pipelines.sync_summary import EXIT_CONFIG, EXIT_LOCKED, EXIT_OK, EXIT_PARTIAL, Progress, SyncSummary

log = logging.getLogger("recoup")

__all__ = ["EXIT_CONFIG", "EXIT_LOCKED", "EXIT_OK", "EXIT_PARTIAL", "SyncSummary", "run_sync"]


def _release_freed_memory() -> None:
    """Hands freed memory back to the OS before DuckDB's next step needs memory.

    Arrow's allocator and glibc's malloc both keep freed blocks for reuse; without this the
    peak RSS of a large sync is the fetch working set plus DuckDB's budget.
    """
    pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):  # glibc only
        ctypes.CDLL(None).malloc_trim(0)


def _pipeline(con: duckdb.DuckDBPyConnection, paths: warehouse.Paths) -> dlt.Pipeline:
    """The dlt pipeline on the working copy.

    Its state and schema are restored from the warehouse when the local folder is gone or older.
    """
    pipeline = dlt.pipeline(
        pipeline_name=PIPELINE_NAME,
        destination=dlt.destinations.duckdb(con),
        dataset_name=RAW_DATASET,
        pipelines_dir=str(paths.work_pipelines_dir),
    )
    pipeline.sync_destination()
    return pipeline


def _load(source: Any, con: duckdb.DuckDBPyConnection, paths: warehouse.Paths, size: LoadSize) -> None:
    """Extracts, normalizes and loads into the working copy; unwraps our own errors."""
    try:
        pipeline = _pipeline(con, paths)
        pipeline.extract(source, loader_file_format="parquet")
        _release_freed_memory()
        if size.large_bytes:  # DuckDB's merge holds large values in memory: give it room for them
            budget = warehouse.memory_for(size.large_bytes)
            log.info("%.0f MB of large JSON values: DuckDB gets %s", size.large_bytes / 2**20, budget)
            warehouse.use_limits(con, {"memory_limit": budget})
        log.info("normalizing")
        pipeline.normalize()
        log.info("loading into the working copy")
        pipeline.load()
    except PipelineStepFailed as exc:
        first = cause = exc.__cause__ or exc.__context__
        while cause is not None and not isinstance(cause, RecoupError):
            cause = cause.__cause__ or cause.__context__
        if isinstance(cause, RecoupError):
            raise cause from None
        reason = f"{type(first).__name__}: {str(first).splitlines()[0][:300]}" if first else str(exc)[:300]
        raise RecoupError(f"loading failed at step {exc.step}: {reason}") from None


def _lists_then_followups(
    client: RecoupClient,
    accounts: list[str],
    index: Index,
    options: FetchOptions,
    own: bool,
    settings: Settings,
    budget: Budget,
    summary: SyncSummary,
) -> Iterator[Any]:
    """Every account's list, then the refreshes and the details backlog within the budget.

    Each account's result streams to the loader as soon as its list is read.
    """
    progress = Progress(len(accounts))
    results: dict[str, AccountResult] = {}
    for listed in list_all(client, accounts, index, options, own, settings.max_concurrency, budget.stop):
        results[listed.result.account] = listed.result
        summary.results.append(listed.result)
        progress(listed.result)
        yield listed
    summary.lists_done = budget.elapsed
    log.info("lists done in %.1f s", summary.lists_done)
    yield from fetch_followups(
        client, results, index, options, budget, summary.followups, settings.max_concurrency
    )


def run_sync(
    settings: Settings,
    retry: RetryPolicy | None = None,
    transport: httpx.BaseTransport | None = None,
    stop: threading.Event | None = None,
    archive: ArchiveSettings | None = None,
) -> SyncSummary:
    """Runs one complete sync under the lock and publishes the warehouse.

    Args:
        stop: set it to end the sync early (SIGTERM and SIGINT do when run from the main thread).
        archive: RECOUP_ARCHIVE's settings: what the sync published is archived after the publish.

    Raises:
        ConfigError, AuthError, LockHeld: nothing was published.
    """
    budget = Budget(settings.sync_seconds, stop or threading.Event())
    paths = warehouse.Paths(settings.db)
    warehouse.prepare_folder(paths)
    summary = SyncSummary(budget_seconds=settings.sync_seconds, max_rpm=settings.max_rpm)
    with RecoupClient(
        settings.base_url, settings.api_key, transport=transport, max_concurrency=settings.max_concurrency,
        max_rpm=settings.max_rpm, retry=retry or RetryPolicy(attempts=settings.retry_attempts),
        timeout=settings.request_timeout, max_response_bytes=settings.max_response_bytes, proxy=settings.proxy,
    ) as client, warehouse.sync_lock(paths, settings.lock_wait), warehouse.discard_work(paths), \
            stop_on_signals(budget.stop), \
            lake.lake_lock(settings) as lake_lock:  # fmt: skip
        client.stop = budget.stop
        own = not settings.accounts
        accounts = [client.fetch_own_account()] if own else settings.accounts
        summary.accounts = len(accounts)
        summary.lists_seconds = len(accounts) * 60 / settings.max_rpm if settings.max_rpm else 0.0
        log.info("syncing %d account(s) from %s into %s", len(accounts), client.base_url, settings.db)
        options = FetchOptions(settings.details, settings.keep_private, settings.limits)
        if settings.lake:  # a DuckLake: dlt loads this sync's changes into an empty file (pipelines/lake/)
            lake.start_work(paths)
        else:
            warehouse.start_work_copy(paths)
        # One connection for the whole sync: opening the working copy again costs time, and
        # after a load it would first replay the load's log into memory.
        with warehouse.connect(paths.work_db) as con, contextlib.ExitStack() as stack:
            warehouse.create_sync_tables(con)
            # dlt creates every raw table, empty, at its first load (the lake has its own).
            missing = [] if settings.lake else warehouse.missing_raw_tables(con)
            if settings.lake:
                index, index_con = lake.read_index(settings, options)
                stack.callback(index_con.close)
            else:
                index = warehouse.read_index(con, options)
            synced_at = datetime.now(UTC)
            size = LoadSize()
            fetched = _lists_then_followups(client, accounts, index, options, own, settings, budget, summary)
            # Look ahead for the first batch with something to load: an unchanged sync never starts dlt.
            ahead = []
            for batch in fetched:
                ahead.append(batch)
                if batch.has_rows:
                    break
            loaded = bool(ahead) and ahead[-1].has_rows
            # With nothing to load every result is in `ahead`: dlt runs only if a page mark changed.
            if loaded or missing or index.page_book.after(summary.results) != index.page_book.marks:
                warehouse.drop_stand_ins(con)
                source = recoup(itertools.chain(ahead, fetched), size, index.page_book, missing)
                _load(source, con, paths, size)
                warehouse.keep_recent_states(con)
            elif not settings.lake and not paths.work_pipelines_dir.exists():
                _pipeline(con, paths)  # dlt's folder was wiped: restored for its tools, from the warehouse
            if loaded:  # an answer that replaced one with tags or attempts may have left them behind
                warehouse.prune_answers(con, synced_at)
            warehouse.remember_lost(con, synced_at, summary.results)
            # The lake counts the backlog in the lake, once this sync's runs are merged there.
            pending = {} if settings.lake else warehouse.details_pending(con, options.details)
            warehouse.append_sync_log(con, synced_at, summary.results, pending)
            summary.details_pending = sum(pending.values())
            _release_freed_memory()
            if settings.lake:  # one lake snapshot: the changes and the models together
                log.info("publishing into the lake")
                summary.model_error, pending = lake.publish_to_lake(
                    con, settings, synced_at, summary.results, options, lake_lock
                )
                summary.details_pending = sum(pending.values())
            else:
                warehouse.use_limits(
                    con, {**warehouse.MODEL_LIMITS, "memory_limit": warehouse.memory_for(size.large_bytes)}
                )
                log.info("building models")
                try:
                    apply_models(con, unless_unchanged=not loaded, changed_since=synced_at)
                except ModelError as exc:
                    summary.model_error = str(exc)
                con.execute("checkpoint")
        if not settings.lake:
            log.info("publishing %s", settings.db)
            warehouse.publish(paths)
            if archive and archive.target:  # still under the lock: nothing changes the file it reads
                summary.archive = archive_after_publish(settings.db, archive)
        summary.requests, summary.retries = client.requests, client.retries
        summary.stopped = budget.stop.is_set()
    summary.seconds = budget.elapsed
    return summary


def main() -> int:
    """`python -m pipelines.recoup_pipeline`, as older cron lines call it: the same as `recoup sync`."""
    from pipelines.cli import main as recoup

    return recoup(["sync", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
