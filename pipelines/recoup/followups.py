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

from pipelines import defaults
from pipelines.recoup.changes import differs
from pipelines.recoup.client import RecoupClient
from pipelines.recoup.errors import ApiError, AuthError, BadRunError, RunNotFound
from pipelines.recoup.index import Index, Job
from pipelines.recoup.options import FetchOptions
from pipelines.recoup.results import AccountResult, Rows
from pipelines.recoup.transform import micros, to_run_row

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


@dataclass
class Followups:
    """What phases two and three did, for the summary."""

    planned: int = 0
    fetched: int = 0
    refreshes_deferred: int = 0
    details_deferred: int = 0
    last_started_at: float | None = None  # when the last request by id started


def plan(results: Iterable[AccountResult]) -> list[Job]:
    """Refreshes first (in-flight runs may finish unseen), then details: failed, then newest."""
    listed = [r for r in results if r.error is None]
    refreshes = [job for r in listed for job in r.refresh]
    details = sorted(
        (job for r in listed for job in r.to_detail), key=lambda j: (not j.failed, -j.created_us)
    )
    return refreshes + details


def _retrieve(client: RecoupClient, job: Job, options: FetchOptions) -> tuple[Job, dict | None, str | None]:
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
        return job, None, None
    except AuthError:
        raise
    except (ApiError, BadRunError) as exc:
        return job, None, str(exc)
    if row["id"] != job.run_id:
        return job, None, f"run {job.run_id[:64]}: retrieve answered another run"
    return job, row, None


def _record(result: AccountResult, job: Job, row: dict | None, problem: str | None, index: Index) -> bool:
    """Counts one answer into its account's result; True when the row is to be loaded."""
    if problem:
        result.problems.append(problem)
        return False
    if row is None:  # the API no longer knows the run: it keeps its last state
        result.lost.append(job.run_id)
        return False
    result.runs_seen += not job.listed
    if job.refresh:
        result.refreshed += 1
        stored = index.stored(job.run_id)
        if stored is None or differs(stored, micros(row["updated_at"]), row.get("status")):
            result.updated.add(job.run_id)
    return True


def fetch_followups(
    client: RecoupClient,
    results: dict[str, AccountResult],
    index: Index,
    options: FetchOptions,
    budget: Budget,
    stats: Followups,
    concurrency: int = defaults.MAX_CONCURRENCY,
) -> Iterator[Rows]:
    """Fetches planned runs by id until the plan is done or the budget is spent.

    Requests under way when the budget runs out finish and are loaded; the rest is counted as
    deferred. Yields the answers in batches for the loader. An AuthError stops everything.
    """
    jobs = plan(results.values())
    stats.planned = len(jobs)
    if not jobs:
        return
    workers = max(1, concurrency)
    batch = Rows()
    started, last_log = 0, time.monotonic()
    with ThreadPoolExecutor(workers, thread_name_prefix="run") as pool:
        pending: set[Future] = set()
        try:
            while True:
                while len(pending) < 2 * workers and started < len(jobs) and not budget.spent():
                    pending.add(pool.submit(_retrieve, client, jobs[started], options))
                    started += 1
                    stats.last_started_at = budget.elapsed
                if not pending:
                    break
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    job, row, problem = future.result()
                    stats.fetched += 1
                    if _record(results[job.account], job, row, problem, index):
                        batch.detail_rows.append(row)
                if len(batch.detail_rows) >= BATCH_ROWS:
                    yield batch
                    batch = Rows()
                if time.monotonic() - last_log >= 2.0:
                    last_log = time.monotonic()
                    log.info("runs by id %d/%d", stats.fetched, len(jobs))
        finally:
            for future in pending:
                future.cancel()
    left = jobs[started:]
    stats.refreshes_deferred = sum(job.refresh for job in left)
    stats.details_deferred = len(left) - stats.refreshes_deferred
    if started:
        log.info("runs by id %d/%d%s", stats.fetched, len(jobs), f" · {len(left)} deferred" if left else "")
    if batch.detail_rows:
        yield batch
