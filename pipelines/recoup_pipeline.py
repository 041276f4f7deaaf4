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
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dlt
import duckdb
import httpx
import pyarrow as pa
from dlt.pipeline.exceptions import PipelineStepFailed

from pipelines import lake, warehouse
from pipelines.config import Settings, load_settings
from pipelines.models import ModelError, apply_models
from pipelines.recoup import recoup
from pipelines.recoup.client import RecoupClient, RetryPolicy
from pipelines.recoup.errors import AuthError, ConfigError, LockHeld, RecoupError
from pipelines.recoup.fetch import AccountResult, FetchOptions, fetch_all
from pipelines.recoup.settings import PIPELINE_NAME, RAW_DATASET

log = logging.getLogger("recoup")

EXIT_OK, EXIT_PARTIAL, EXIT_CONFIG, EXIT_LOCKED = 0, 1, 2, 75


@dataclass
class SyncSummary:
    """What one sync did, for the closing lines and for tests."""

    results: list[AccountResult] = field(default_factory=list)
    requests: int = 0
    retries: int = 0
    seconds: float = 0.0
    model_error: str | None = None

    @property
    def failed(self) -> list[AccountResult]:
        return [r for r in self.results if not r.ok]

    @property
    def exit_code(self) -> int:
        return EXIT_PARTIAL if self.failed or self.model_error else EXIT_OK

    def lines(self) -> list[str]:
        out = [f"account {r.account}: FAILED: {r.summary_error()}" for r in self.failed]
        out += [
            f"account {r.account}: possible gap: the list was full and reached back to no stored run"
            for r in self.results
            if r.possible_gap
        ]
        if self.model_error:
            out.append(f"models: FAILED: {self.model_error}")
        total = len(self.results)
        new = sum(r.new for r in self.results)
        updated = sum(len(r.updated) for r in self.results)
        refreshed = sum(r.refreshed for r in self.results)
        lost = sum(len(r.lost) for r in self.results)
        unchanged = sum(r.unchanged_page for r in self.results)
        out.append(
            f"sync: {total - len(self.failed)}/{total} accounts ok, {len(self.failed)} failed · "
            f"runs {new} new, {updated} updated, {refreshed} refreshed, {lost} unknown to the API · "
            f"{self.requests} requests, {self.retries} retries, {unchanged} pages unchanged · {self.seconds:.1f} s"
        )
        return out


class Progress:
    """Logs how far the sync is, at most every `every` seconds, and at the end."""

    def __init__(self, total: int, every: float = 2.0) -> None:
        self.total, self.every = total, every
        self.done = self.new = self.updated = self.failed = 0
        self._last = time.monotonic()

    def __call__(self, result: AccountResult) -> None:
        self.done += 1
        self.new += result.new
        self.updated += len(result.updated)
        self.failed += not result.ok
        now = time.monotonic()
        if now - self._last >= self.every or self.done == self.total:
            self._last = now
            log.info("accounts %d/%d · runs %d new, %d updated · %d failed",
                     self.done, self.total, self.new, self.updated, self.failed)  # fmt: skip


def _release_freed_memory() -> None:
    """Hands freed memory back to the OS before DuckDB's next step needs memory.

    Arrow's allocator and glibc's malloc both keep freed blocks for reuse; without this the
    peak RSS of a large sync is the fetch working set plus DuckDB's budget.
    """
    pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):  # glibc only
        ctypes.CDLL(None).malloc_trim(0)


def _load(source: Any, con: duckdb.DuckDBPyConnection, paths: warehouse.Paths) -> None:
    """Extracts, normalizes and loads into the working copy; unwraps our own errors."""
    pipeline = dlt.pipeline(
        pipeline_name=PIPELINE_NAME,
        destination=dlt.destinations.duckdb(con),
        dataset_name=RAW_DATASET,
        pipelines_dir=str(paths.pipelines_dir),
    )
    try:
        pipeline.sync_destination()  # the working folder is new: take state from the warehouse
        pipeline.extract(source, loader_file_format="parquet")
        _release_freed_memory()
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


def run_sync(
    settings: Settings, retry: RetryPolicy | None = None, transport: httpx.BaseTransport | None = None
) -> SyncSummary:
    """Runs one complete sync under the lock and publishes the warehouse.

    Raises:
        ConfigError, AuthError, LockHeld: nothing was published.
    """
    started = time.monotonic()
    paths = warehouse.Paths(settings.db)
    warehouse.prepare_folder(paths)
    summary = SyncSummary()
    with RecoupClient(
        settings.base_url, settings.api_key, transport=transport, max_concurrency=settings.max_concurrency,
        max_rpm=settings.max_rpm, retry=retry or RetryPolicy(attempts=settings.retry_attempts),
    ) as client, warehouse.sync_lock(paths, settings.lock_wait), lake.lake_lock(settings) as lake_lock:  # fmt: skip
        own = not settings.accounts
        accounts = [client.fetch_own_account()] if own else settings.accounts
        log.info("syncing %d account(s) from %s into %s", len(accounts), client.base_url, settings.db)
        options = FetchOptions(settings.details, settings.keep_private)
        if settings.lake:  # a DuckLake: see pipelines/lake/
            lake.start_work(paths)
        else:
            warehouse.start_work_copy(paths)
        # One connection for the whole sync: opening the working copy again costs time, and
        # after a load it would first replay the load's log into memory.
        with warehouse.connect(paths.work_db) as con, contextlib.ExitStack() as stack:
            warehouse.add_placeholders(con)
            if settings.lake:
                index, index_con = lake.read_index(settings, str(options))
                stack.callback(index_con.close)
            else:
                index = warehouse.read_index(con, str(options))
            synced_at = datetime.now(UTC)
            progress = Progress(len(accounts))

            def on_result(result: AccountResult) -> None:
                summary.results.append(result)
                progress(result)

            results = fetch_all(client, accounts, index, options, own, settings.max_concurrency, on_result)
            # Look ahead for the first account with something to load: an unchanged sync never starts dlt.
            ahead = []
            for result in results:
                ahead.append(result)
                if result.has_rows:
                    break
            loaded = bool(ahead) and ahead[-1].has_rows
            if loaded:
                warehouse.drop_placeholders(con)
                _load(recoup(itertools.chain(ahead, results)), con, paths)
                warehouse.add_placeholders(con)
            if any(r.replaced for r in summary.results):
                warehouse.prune_answers(con)
            warehouse.record_sync(con, synced_at, summary.results, str(options))
            _release_freed_memory()
            if settings.lake:  # one lake snapshot: the changes and the models together
                log.info("publishing into the lake")
                published = lake.publish_to_lake(con, settings, synced_at, summary.results, lake_lock)
                summary.model_error = published
            else:
                warehouse.use_limits(con, warehouse.MODEL_LIMITS)
                log.info("building models")
                try:
                    apply_models(con, unless_unchanged=not loaded)
                except ModelError as exc:
                    summary.model_error = str(exc)
                con.execute("checkpoint")
        if not settings.lake:
            log.info("publishing %s", settings.db)
            warehouse.publish(paths)
        summary.requests, summary.retries = client.requests, client.retries
    summary.seconds = time.monotonic() - started
    return summary


def main() -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        settings = load_settings()
        summary = run_sync(settings)
    except LockHeld as exc:
        print(f"sync: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    except (ConfigError, AuthError) as exc:
        print(f"sync: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except RecoupError as exc:
        print(f"sync: {exc}", file=sys.stderr)
        return EXIT_PARTIAL
    except duckdb.Error as exc:  # e.g. RECOUP_DB is not a DuckDB file; it is left untouched
        print(f"sync: the warehouse cannot be used: {str(exc).splitlines()[0][:300]}", file=sys.stderr)
        return EXIT_PARTIAL
    except OSError as exc:  # e.g. the disk is full; the published warehouse is left untouched
        print(
            f"sync: {exc.strerror or exc} ({exc.filename or 'while writing the working copy'})",
            file=sys.stderr,
        )
        return EXIT_PARTIAL
    except KeyboardInterrupt:
        print("sync: interrupted; the warehouse is as the last complete sync left it", file=sys.stderr)
        return 130
    for line in summary.lines():
        print(line)
    print(f"warehouse: {lake.describe(settings.lake) if settings.lake else settings.db}")
    return summary.exit_code


if __name__ == "__main__":
    sys.exit(main())
