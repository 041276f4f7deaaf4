"""One sync, top to bottom: open storage, read what is known, list, follow up, load, record, publish.

Each phase returns values: listing an account gives its `AccountListing`, a fetch by id its
`FollowupOutcome`; `fold` turns them into one `AccountLog` per account once every request
has ended, and the summary is computed from those.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from pipelines.config import ApiSettings, Config
from pipelines.loading import load, open_pipeline, release_freed_memory
from pipelines.recoup import LoadSize, recoup
from pipelines.recoup.client import RecoupClient, RetryPolicy
from pipelines.recoup.errors import ApiError, NothingListed
from pipelines.recoup.fan_out import list_all
from pipelines.recoup.followups import Budget, fetch_followups, plan
from pipelines.recoup.index import Index
from pipelines.recoup.options import FetchOptions
from pipelines.recoup.outcomes import (
    AccountListing,
    AccountLog,
    FollowupBatch,
    FollowupOutcome,
    Followups,
    Listed,
    fold,
)
from pipelines.recoup.stored import Job
from pipelines.stopping import stop_on_signals
from pipelines.storage import open_storage
from pipelines.summary import Progress, SyncSummary
from pipelines.warehouse import (
    append_sync_log,
    drop_stand_ins,
    forget_outcomes,
    keep_recent_states,
    pending_outcomes,
    prune_answers,
    record_outcomes,
    remember_lost,
)

log = logging.getLogger("recoup")

__all__ = ["SyncSummary", "run_sync"]


@dataclass
class _Fetched:
    """What has passed from the fetch to the loader so far: listings and follow-up outcomes."""

    listings: list[AccountListing] = field(default_factory=list)
    outcomes: list[FollowupOutcome] = field(default_factory=list)
    plan: list[Job] = field(default_factory=list)
    lists_done: float = 0.0
    last_started_at: float | None = None
    finished: bool = False  # every list and fetch by id has ended
    _logs: list[AccountLog] | None = None

    def logs(self) -> list[AccountLog]:
        """One log per account listed so far; folded once when the fetch has finished."""
        if self._logs is not None:
            return self._logs
        logs = fold(self.listings, self.outcomes)
        if self.finished:
            self._logs = logs
        return logs

    def followups(self) -> Followups:
        """The counts of the fetches by id."""
        return Followups.of(self.plan, self.outcomes, self.last_started_at)


def _fetch(
    client: RecoupClient, accounts: list[str], known: Index, options: FetchOptions, own: bool,
    concurrency: int, budget: Budget, fetched: _Fetched,
) -> Iterator[Listed | FollowupBatch]:  # fmt: skip
    """Every account's list, then the refreshes and the details backlog within the budget.

    Each account's listing streams to the loader as soon as its list is read; `fetched` keeps
    what passed, for the fold at the end.
    """
    progress = Progress(len(accounts))
    for listed in list_all(client, accounts, known, options, own, concurrency, budget.stop):
        fetched.listings.append(listed.listing)
        progress(listed.listing)
        yield listed
    fetched.lists_done = budget.elapsed
    log.info("lists done in %.1f s", fetched.lists_done)
    fetched.plan = plan(fetched.listings)
    for batch in fetch_followups(client, fetched.plan, known, options, budget, concurrency):
        fetched.outcomes.extend(batch.outcomes)
        fetched.last_started_at = batch.started_at
        yield batch
    fetched.finished = True


def _client(
    api: ApiSettings, retry: RetryPolicy | None, transport: httpx.BaseTransport | None
) -> RecoupClient:
    return RecoupClient(
        api.base_url, api.api_key, transport=transport, max_concurrency=api.max_concurrency,
        max_rpm=api.max_rpm, retry=retry or RetryPolicy(attempts=api.retry_attempts),
        timeout=api.request_timeout, max_response_bytes=api.max_response_bytes, proxy=api.proxy,
    )  # fmt: skip


def _own_account(client: RecoupClient) -> str:
    """The key's own account; when it cannot be looked up nothing can be listed (NothingListed)."""
    try:
        return client.fetch_own_account()
    except ApiError as exc:
        raise NothingListed(str(exc), exc.kind) from None


def run_sync(
    config: Config,
    retry: RetryPolicy | None = None,
    transport: httpx.BaseTransport | None = None,
    stop: threading.Event | None = None,
    working: threading.Event | None = None,
) -> SyncSummary:
    """Runs one complete sync under the lock and publishes the warehouse.

    Args:
        stop: set it to end the sync early. None: SIGTERM and SIGINT do, when run from the
            main thread; a caller that passes `stop` owns the signals (see `stopping.py`).
        working: set once the lock is held, for the caller's signal handling.

    Raises:
        ConfigError, AuthError, LockHeld: nothing was published.
    """
    api, options = config.require_api(), config.fetch
    budget = Budget(config.sync_seconds, stop or threading.Event())
    storage = open_storage(config.storage)
    fetched = _Fetched()
    working = working or threading.Event()
    signals = stop_on_signals(budget.stop, working) if stop is None else contextlib.nullcontext()
    with signals, _client(api, retry, transport) as client, storage.lock():
        working.set()
        client.stop = budget.stop
        own = not api.accounts
        accounts = [_own_account(client)] if own else api.accounts
        log.info("syncing %d account(s) from %s into %s", len(accounts), client.base_url, storage.where)
        # One connection for the whole sync: opening the working file again costs time, and
        # after a load it would first replay the load's log into memory.
        with storage.begin_work() as con:
            try:
                known = storage.read_known(con, options)
                create = storage.tables_to_create(con)
                synced_at = datetime.now(UTC)
                size = LoadSize()
                stream = _fetch(client, accounts, known, options, own, api.max_concurrency, budget, fetched)
                # Look ahead for the first batch with something to load: an unchanged sync never starts dlt.
                ahead = []
                for batch in stream:
                    ahead.append(batch)
                    if batch.has_rows:
                        break
                loaded = bool(ahead) and ahead[-1].has_rows
                # With nothing to load everything was fetched: dlt runs only if a page mark changed.
                logs = [] if loaded or create else fetched.logs()
                if loaded or create or known.page_book.after(logs) != known.page_book.marks:
                    drop_stand_ins(con)
                    load(
                        recoup(
                            itertools.chain(ahead, stream),
                            size,
                            lambda: known.state_after(fetched.logs()),
                            create,
                        ),
                        con,
                        storage.paths,
                        size,
                        config.storage.memory_mb,
                    )
                    keep_recent_states(con)
                    logs = fetched.logs()  # the load read the rest of the stream (folded once)
                elif storage.needs_dlt_folder():  # wiped: restored from the warehouse, for dlt's tools
                    open_pipeline(con, storage.paths)
                if loaded:  # an answer that replaced one with tags or attempts may have left them behind
                    prune_answers(con, synced_at)
                remember_lost(con, synced_at, logs)
                append_sync_log(con, synced_at, logs, storage.backlog(con, options))
                ended = pending_outcomes(storage.paths.outcomes)  # how the syncs before this one ended
                record_outcomes(con, ended, synced_at)
                release_freed_memory()
                published = storage.publish(con, synced_at, options, loaded, size.large_bytes)
                forget_outcomes(storage.paths.outcomes, ended)
            finally:
                storage.close()
        archived = storage.archive(config.archive)  # still under the lock: nothing changes what it reads
        stopped = budget.stop.is_set()
    return SyncSummary(
        results=logs,
        accounts=len(accounts),
        requests=client.requests,
        retries=client.retries,
        seconds=budget.elapsed,
        model_error=published.model_error,
        followups=fetched.followups(),
        details_pending=sum(published.details_pending.values()),
        stopped=stopped,
        lists_seconds=len(accounts) * 60 / api.max_rpm if api.max_rpm else 0.0,
        lists_done=fetched.lists_done,
        budget_seconds=config.sync_seconds,
        max_rpm=api.max_rpm,
        archive=archived,
        synced_at=synced_at,
    )
