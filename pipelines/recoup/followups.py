"""Phases two and three of a sync: refreshes of runs that left their list, then details.

Stored in-flight runs that left their list are refreshed, then the details backlog is fetched,
failed runs first and then the newest, within the time budget. What the budget leaves is found
again by the next sync in the warehouse itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipelines import defaults
from pipelines.recoup.changes import differs, older
from pipelines.recoup.client import RecoupClient
from pipelines.recoup.errors import ApiError, AuthError, BadRunError, ErrorKind, RunNotFound
from pipelines.recoup.index import Index, Job
from pipelines.recoup.options import FetchOptions
from pipelines.recoup.outcomes import AccountListing, FollowupBatch, FollowupOutcome
from pipelines.recoup.transform import to_run_row
from pipelines.recoup.values import micros

log = logging.getLogger("recoup")

BATCH_ROWS = 2_000  # retrieve answers handed to the loader at a time


@dataclass
class Budget:
    """When a sync stops starting optional requests: after `seconds`, or once `stop` is set.

    Lists never look at it; refreshes and details do, before each request they would start.
    """

    seconds: float = 0.0  # 0: no time limit
    stop: threading.Event = field(default_factory=threading.Event)
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        """Seconds since the sync started."""
        return time.monotonic() - self.started

    def spent(self) -> bool:
        """True once the time is up or a stop was asked for: start no further request."""
        return self.stop.is_set() or (self.seconds > 0 and self.elapsed >= self.seconds)


def plan(listings: Iterable[AccountListing]) -> list[Job]:
    """Refreshes first (in-flight runs may finish unseen), then details: failed, then newest."""
    listed = [listing for listing in listings if listing.error is None]
    refreshes = [job for listing in listed for job in listing.refresh]
    details = sorted(
        (job for listing in listed for job in listing.to_detail), key=lambda j: (not j.failed, -j.created_us)
    )
    return refreshes + details


def _retrieve(
    client: RecoupClient, job: Job, options: FetchOptions, index: Index
) -> tuple[FollowupOutcome | None, dict[str, Any] | None]:
    """One fetch by id: its outcome, and the row to load (None when there is none).

    A fetch the sync's stop ended has no outcome: the run is left for the next sync.
    """
    try:
        item = client.fetch_run(job.run_id)
        row = to_run_row(
            item,
            account_id=job.account,
            seen_at=datetime.now(UTC),
            keep_private=options.keep_private,
            limits=options.limits,
        )
    except RunNotFound:
        return FollowupOutcome(job, lost=True), None
    except AuthError:
        raise
    except ApiError as exc:
        if exc.kind is ErrorKind.STOPPED:
            return None, None
        return FollowupOutcome(job, problem=str(exc)), None
    except BadRunError as exc:
        return FollowupOutcome(job, problem=str(exc)), None
    if row["id"] != job.run_id:
        return FollowupOutcome(job, problem=f"run {job.run_id[:64]}: retrieve answered another run"), None
    updated = False
    if job.refresh:
        stored = index.stored(job.run_id)
        if stored is not None and older(stored, micros(row["updated_at"])):
            return FollowupOutcome(job), None  # a stale copy: the stored answer stands
        updated = stored is None or differs(stored, micros(row["updated_at"]), row.get("status"))
    return FollowupOutcome(job, updated=updated), row


def fetch_followups(
    client: RecoupClient,
    jobs: list[Job],
    index: Index,
    options: FetchOptions,
    budget: Budget,
    concurrency: int = defaults.MAX_CONCURRENCY,
) -> Iterator[FollowupBatch]:
    """Fetches planned runs by id until the plan is done or the budget is spent.

    Requests under way when the budget runs out finish and are loaded; the others are left for
    the next sync (they have no outcome). Yields the answers in batches for the loader, each
    with the outcome of every fetch it covers. An AuthError stops everything.
    """
    if not jobs:
        return
    workers = max(1, concurrency)
    batch = FollowupBatch()
    started, fetched, last_log = 0, 0, time.monotonic()
    with ThreadPoolExecutor(workers, thread_name_prefix="run") as pool:
        pending: set[Future[tuple[FollowupOutcome | None, dict[str, Any] | None]]] = set()
        try:
            while True:
                while len(pending) < 2 * workers and started < len(jobs) and not budget.spent():
                    pending.add(pool.submit(_retrieve, client, jobs[started], options, index))
                    started += 1
                    batch.started_at = budget.elapsed
                if not pending:
                    break
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    outcome, row = future.result()
                    if outcome is None:  # stopped in flight: left for the next sync
                        continue
                    fetched += 1
                    batch.outcomes.append(outcome)
                    if row is not None:
                        batch.rows.detail_rows.append(row)
                if len(batch.rows.detail_rows) >= BATCH_ROWS:
                    yield batch
                    batch = FollowupBatch(started_at=batch.started_at)
                if time.monotonic() - last_log >= 2.0:
                    last_log = time.monotonic()
                    log.info("runs by id %d/%d", fetched, len(jobs))
        finally:
            for future in pending:
                future.cancel()
    left = len(jobs) - started
    if started:
        log.info("runs by id %d/%d%s", fetched, len(jobs), f" · {left} deferred" if left else "")
    if batch.outcomes or batch.started_at is not None:
        yield batch
