"""What one sync fetches for one account, decided against what the warehouse already holds."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import pyarrow as pa

from pipelines.recoup.client import RecoupClient
from pipelines.recoup.columnar import CheckedPage, list_answers
from pipelines.recoup.errors import ApiError, AuthError, BadRunError, RunNotFound
from pipelines.recoup.settings import LEGACY_TO_CURRENT, LIST_LIMIT
from pipelines.recoup.transform import (
    DEFAULT_LIMITS,
    Limits,
    carries_details,
    is_terminal,
    micros,
    status_group,
    to_run_row,
    to_utc,
)

DETAIL_MODES = ("all", "failed", "none")
# Accounts started per worker ahead of the consumer: while dlt writes a batch, the workers
# keep fetching (a sync with 50 ms per request idled ~10% of the time at 2), and at most
# this many finished results wait in memory.
AHEAD = 8


class StoredRun(NamedTuple):
    """What the warehouse knows of a run before this sync (times in epoch microseconds)."""

    account_id: str
    status: str | None
    updated_us: int | None
    detailed_us: int | None  # the updatedAt at which details were last fetched


class PageMark(NamedTuple):
    """The last list answer of an account read in full and stored without a problem."""

    digest: str
    listed: int  # how many runs it listed
    in_flight: list[str]  # which of them were still in flight (the others outside it get refreshed)


@dataclass
class Index:
    """The runs already stored, the ones still in flight, and each account's last list page.

    `stored` answers from a dict read and built on first use: a sync whose pages are all
    unchanged never needs it.
    """

    read_latest: Callable[[], pa.Table] | None = None  # id, account_id, status, updated_us, detailed_us
    in_flight_ids: dict[str, list[str]] = field(default_factory=dict)  # by account; the API still knows them
    pages: dict[str, PageMark] = field(default_factory=dict)  # only where no stored run has gone
    _runs: dict[str, tuple] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def runs(self) -> dict[str, tuple]:
        if self._runs is None:
            with self._lock:
                if self._runs is None:
                    latest = self.read_latest() if self.read_latest else None
                    columns = [] if latest is None else [c.to_pylist() for c in latest.columns]
                    ids, *known = columns or [[]] * 5
                    self._runs = dict(zip(ids, zip(*known, strict=True), strict=True))
        return self._runs

    def stored(self, run_id: str) -> StoredRun | None:
        known = self.runs.get(run_id)
        return None if known is None else StoredRun._make(known)

    def holds(self, run_id: str, account: str) -> bool:
        known = self.runs.get(run_id)
        return known is not None and known[0] == account

    def in_flight(self, account: str) -> list[str]:
        return self.in_flight_ids.get(account, [])


@dataclass
class AccountResult:
    """Everything one account's sync produced: rows to load and the numbers for sync_log."""

    account: str
    # What to load (new or changed runs): checked list pages, and answers taken run by run.
    pages: list[CheckedPage] = field(default_factory=list)
    list_rows: list[dict[str, Any]] = field(default_factory=list)
    detail_rows: list[dict[str, Any]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)  # while fetching; then only its size is kept
    runs_seen: int = 0
    page_in_flight: list[str] = field(default_factory=list)  # listed runs not yet finished
    page: PageMark | None = None  # the list answer, when it was read (or known) without a problem
    unchanged_page: bool = False  # the list answer was the page already stored, byte for byte
    new: int = 0
    updated: set[str] = field(default_factory=set)
    refreshed: int = 0
    replaced: int = 0  # answers loaded for runs stored before: their old tags and attempts go
    lost: list[str] = field(default_factory=list)
    possible_gap: bool = False
    problems: list[str] = field(default_factory=list)
    error: str | None = None
    to_detail: list[str] = field(default_factory=list)  # runs whose details are to fetch

    @property
    def has_rows(self) -> bool:
        return bool(self.pages or self.list_rows or self.detail_rows)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.problems

    def summary_error(self) -> str | None:
        if self.error:
            return self.error
        if self.problems:
            more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
            return self.problems[0] + more
        return None


@dataclass
class FetchOptions:
    details: str = "all"  # which finished runs get a details fetch: all, failed, none
    keep_private: bool = False  # store payload and output
    limits: Limits = DEFAULT_LIMITS  # how large a run and its free-form fields may be

    def __str__(self) -> str:  # a page read under other options may need reading again
        return f"details={self.details} private={'yes' if self.keep_private else 'no'}"


def _same_status(a: str | None, b: str | None) -> bool:
    # The same state reads FROZEN in a list and WAITING when retrieved: not a change.
    return LEGACY_TO_CURRENT.get(a or "", a) == LEGACY_TO_CURRENT.get(b or "", b)


def _differs(stored: StoredRun, updated_us: int | None, status: str | None) -> bool:
    return updated_us != stored.updated_us or not _same_status(stored.status, status)


def _changed(stored: StoredRun, row: dict[str, Any]) -> bool:
    return _differs(stored, micros(row["updated_at"]), row.get("status"))


def _wants_details(
    status: str | None, updated_us: int | None, stored: StoredRun | None, options: FetchOptions
) -> bool:
    if options.details == "none" or not is_terminal(status):
        return False
    if options.details == "failed" and status_group(status) != "failed":
        return False
    return stored is None or stored.detailed_us != updated_us


SAME, DETAILS, CHANGED = "same", "details", "changed"


def _compare(item: Any, account: str, index: Index, options: FetchOptions) -> str:
    """The cheap test that lets most items of a re-sync skip the transform.

    SAME: as stored. DETAILS: as stored, but its details are still to fetch. CHANGED: new,
    changed, or not a valid run (the transform decides which).
    """
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        return CHANGED
    stored = index.stored(item["id"])
    status = item.get("status")
    if stored is None or stored.account_id != account or not isinstance(status, str | None):
        return CHANGED
    try:
        updated_us = micros(to_utc(item.get("updatedAt") or item.get("createdAt"), "updatedAt"))
    except BadRunError:
        return CHANGED
    if _differs(stored, updated_us, status):
        return CHANGED
    if _wants_details(status, updated_us, stored, options) and not carries_details(item):
        return DETAILS
    return SAME


def _read_page(items: list[Any], result: AccountResult, index: Index, options: FetchOptions) -> None:
    """Compares a list answer with the warehouse: what to load, what to fetch details of."""
    account = result.account
    seen_at = datetime.now(UTC)
    changed = []
    for item in items:
        verdict = _compare(item, account, index, options)
        if verdict == CHANGED:
            changed.append(item)
            continue
        result.seen.add(item["id"])
        if not is_terminal(item.get("status")):
            result.page_in_flight.append(item["id"])
        if verdict == DETAILS:
            result.to_detail.append(item["id"])
    checked, result.problems = (
        list_answers(
            changed,
            account_id=account,
            seen_at=seen_at,
            keep_private=options.keep_private,
            limits=options.limits,
        )
        if changed
        else ([], [])
    )
    if isinstance(checked, CheckedPage):
        facts = checked.facts
        if facts:
            result.pages.append(checked)
    else:
        facts = [
            (
                row["id"],
                micros(row["updated_at"]),
                row.get("status"),
                row["has_attempts"] and row["has_error"],
            )
            for row in checked
        ]
        result.list_rows = checked
    for run_id, updated_us, status, carried in facts:
        result.seen.add(run_id)
        if not is_terminal(status):
            result.page_in_flight.append(run_id)
        stored = index.stored(run_id)
        if stored is None:
            result.new += 1
        elif _differs(stored, updated_us, status) or stored.account_id != account:
            result.updated.add(run_id)
        result.replaced += stored is not None
        if _wants_details(status, updated_us, stored, options) and not carried:
            result.to_detail.append(run_id)
    result.possible_gap = len(items) >= LIST_LIMIT and not any(
        index.holds(run_id, account) for run_id in result.seen
    )


def fetch_account(
    client: RecoupClient,
    account: str,
    index: Index,
    options: FetchOptions,
    own: bool = False,
    pool: ThreadPoolExecutor | None = None,
) -> AccountResult:
    """Lists an account's newest runs, then fetches details and in-flight refreshes.

    Args:
        own: list without `account_id` (the key's own account, whose id is `account`).
        pool: where the per-run fetches run concurrently (the client caps requests in flight).

    Raises:
        AuthError: the key was refused; the whole sync must stop.
    """
    result = AccountResult(account)
    known = index.pages.get(account)
    try:
        page = client.fetch_runs(None if own else account, known.digest if known else None)
    except AuthError:
        raise
    except ApiError as exc:
        result.error = str(exc)
        return result
    if page.runs is None:  # byte for byte the page already stored: nothing in it changed
        result.page, result.unchanged_page = known, True
        listed, in_page = known.listed, set(known.in_flight)
    else:
        _read_page(page.runs, result, index, options)
        result.page = PageMark(page.digest, len(result.seen), result.page_in_flight)
        listed, in_page = 0, result.seen
    refresh = [run_id for run_id in index.in_flight(account) if run_id not in in_page]

    def retrieve(run_id: str) -> tuple[str, dict[str, Any] | None, str | None]:
        try:
            item = client.fetch_run(run_id)
            row = to_run_row(
                item,
                account_id=account,
                seen_at=datetime.now(UTC),
                keep_private=options.keep_private,
                limits=options.limits,
            )
            if row["id"] != run_id:
                return run_id, None, f"run {run_id[:64]}: retrieve answered another run"
            return run_id, row, None
        except RunNotFound:
            return run_id, None, None
        except AuthError:
            raise
        except (ApiError, BadRunError) as exc:
            return run_id, None, str(exc)

    jobs = list(dict.fromkeys(result.to_detail)) + refresh
    fetched = pool.map(retrieve, jobs) if pool and len(jobs) > 1 else map(retrieve, jobs)
    refreshing = set(refresh)
    for run_id, row, problem in fetched:
        if problem:
            result.problems.append(problem)
            continue
        if row is None:
            if run_id in refreshing:
                result.lost.append(run_id)
            else:
                result.page = None  # its details are still missing: read the page again next time
            continue
        result.seen.add(run_id)
        result.detail_rows.append(row)
        stored = index.stored(run_id)
        result.replaced += stored is not None
        if run_id in refreshing:
            result.refreshed += 1
            if _changed(stored, row):
                result.updated.add(run_id)
    result.runs_seen, result.seen = listed + len(result.seen), set()
    return result


def fetch_all(
    client: RecoupClient,
    accounts: list[str],
    index: Index,
    options: FetchOptions,
    own: bool = False,
    concurrency: int = 8,
    on_result: Callable[[AccountResult], None] | None = None,
) -> Iterator[AccountResult]:
    """Syncs accounts concurrently and yields each result as soon as it is complete.

    At most `AHEAD x concurrency` accounts are in progress, so memory stays bounded however many
    accounts there are. An AuthError stops everything at once.
    """
    workers = max(1, concurrency)
    with ThreadPoolExecutor(workers, thread_name_prefix="account") as accounts_pool, \
            ThreadPoolExecutor(workers, thread_name_prefix="run") as runs_pool:  # fmt: skip
        pending: set[Future[AccountResult]] = set()
        finished: queue.SimpleQueue[Future[AccountResult]] = queue.SimpleQueue()  # O(1) per result
        waiting = iter(accounts)
        try:
            while True:
                while len(pending) < AHEAD * workers:
                    account = next(waiting, None)
                    if account is None:
                        break
                    future = accounts_pool.submit(
                        fetch_account, client, account, index, options, own, runs_pool
                    )
                    future.add_done_callback(finished.put)
                    pending.add(future)
                if not pending:
                    return
                future = finished.get()
                pending.discard(future)
                result = future.result()
                if on_result:
                    on_result(result)
                yield result
        finally:
            for future in pending:
                future.cancel()
