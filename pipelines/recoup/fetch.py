"""Phase one of a sync: every account's list, compared with what the warehouse holds.

Listing decides what to load (new or changed runs) and what to fetch one by one later
(`pipelines/recoup/followups.py`): details of finished runs, and stored in-flight runs that
left the list. Nothing here waits for those per-run requests, so every account is listed
before any details are fetched.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import pyarrow as pa

from pipelines import defaults
from pipelines.recoup.client import RecoupClient
from pipelines.recoup.columnar import CheckedPage, list_answers
from pipelines.recoup.errors import ApiError, AuthError, BadRunError
from pipelines.recoup.settings import LEGACY_TO_CURRENT, LIST_LIMIT
from pipelines.recoup.transform import (
    DEFAULT_LIMITS,
    Limits,
    carries_details,
    is_terminal,
    micros,
    status_group,
    to_utc,
)

DETAIL_MODES = ("all", "failed", "none")
# Accounts started per worker ahead of the consumer: while dlt writes a batch, the workers
# keep listing, and at most this many finished results wait in memory.
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


class Job(NamedTuple):
    """One run to fetch by id after the lists: a refresh or a details fetch."""

    run_id: str
    account: str
    failed: bool  # failed runs' details go first
    created_us: int  # then the newest
    listed: bool = True  # the run was in this sync's list (so it is already counted as seen)
    refresh: bool = False  # a stored in-flight run that left the list, not a details fetch


@dataclass
class Index:
    """What the warehouse holds that a list can still mention, and the work left for later.

    `stored` answers from a dict read on first use (a sync whose pages are all unchanged never
    needs it); it holds the runs of the API's window, the in-flight runs and the backlog, not
    the whole history.
    """

    read_latest: Callable[[], pa.Table] | None = None  # id, account_id, status, updated_us, detailed_us
    in_flight_ids: dict[str, list[str]] = field(default_factory=dict)  # by account; the API still knows them
    pages: dict[str, PageMark] = field(default_factory=dict)  # only where no stored run has gone
    backlog: dict[str, list[Job]] = field(default_factory=dict)  # by account: finished runs awaiting details
    accounts_stored: set[str] = field(default_factory=set)  # accounts with at least one stored run
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
    runs_seen: int = 0
    page: PageMark | None = None  # the list answer, when it was read (or known) without a problem
    unchanged_page: bool = False  # the list answer was the page already stored, byte for byte
    new: int = 0
    updated: set[str] = field(default_factory=set)
    refreshed: int = 0
    lost: list[str] = field(default_factory=list)
    possible_gap: bool = False
    first_sync: bool = False  # a full list on the account's first sync: older runs are out of reach
    oldest_listed: str | None = None  # createdAt of the oldest run of a first full list
    problems: list[str] = field(default_factory=list)
    error: str | None = None
    foreign: dict[str, str] = field(default_factory=dict)  # listed runs stored under another account: owner
    refresh: list[Job] = field(default_factory=list)  # stored in-flight runs the list no longer shows
    to_detail: list[Job] = field(default_factory=list)  # finished runs whose details are to fetch

    @property
    def has_rows(self) -> bool:
        return bool(self.pages or self.list_rows or self.detail_rows)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.problems

    def summary_error(self) -> str | None:
        """The error in one line: the first problem and how many more."""
        if self.error:
            return self.error
        if self.problems:
            more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
            return self.problems[0] + more
        return None

    def full_error(self) -> str | None:
        """Every problem, for sync_log: each rejected run is named."""
        return self.error or ("; ".join(self.problems) if self.problems else None)


@dataclass
class FetchOptions:
    details: str = defaults.DETAILS  # which finished runs get a details fetch: all, failed, none
    keep_private: bool = False  # store payload and output
    limits: Limits = DEFAULT_LIMITS  # how large a run and its free-form fields may be

    def __str__(self) -> str:  # a page read under other options may need reading again
        return f"details={self.details} private={'yes' if self.keep_private else 'no'}"


def same_status(a: str | None, b: str | None) -> bool:
    """The same state reads FROZEN in a list and WAITING when retrieved: not a change."""
    return LEGACY_TO_CURRENT.get(a or "", a) == LEGACY_TO_CURRENT.get(b or "", b)


def differs(stored: StoredRun, updated_us: int | None, status: str | None) -> bool:
    """True when an answer changes what is stored of a run."""
    return updated_us != stored.updated_us or not same_status(stored.status, status)


def _wants_details(
    status: str | None, updated_us: int | None, stored: StoredRun | None, options: FetchOptions
) -> bool:
    if options.details == "none" or not is_terminal(status):
        return False
    if options.details == "failed" and status_group(status) != "failed":
        return False
    return stored is None or stored.detailed_us != updated_us


SAME, DETAILS, CHANGED, FOREIGN = "same", "details", "changed", "foreign"


def _compare(item: Any, account: str, index: Index, options: FetchOptions) -> str:
    """The cheap test that lets most items of a re-sync skip the transform.

    SAME: as stored. DETAILS: as stored, but its details are still to fetch. CHANGED: new,
    changed, or not a valid run (the transform decides which). FOREIGN: stored under another
    account; a run keeps the account that first listed it.
    """
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        return CHANGED
    stored = index.stored(item["id"])
    status = item.get("status")
    if stored is not None and stored.account_id != account:
        return FOREIGN
    if stored is None or not isinstance(status, str | None):
        return CHANGED
    try:
        updated_us = micros(to_utc(item.get("updatedAt") or item.get("createdAt"), "updatedAt"))
    except BadRunError:
        return CHANGED
    if differs(stored, updated_us, status):
        return CHANGED
    if _wants_details(status, updated_us, stored, options) and not carries_details(item):
        return DETAILS
    return SAME


def _created_us(items: dict[str, Any]) -> dict[str, int]:
    """Creation times of listed runs, to order their details newest first."""
    created = {}
    for run_id, item in items.items():
        try:
            created[run_id] = micros(to_utc(item.get("createdAt"), "createdAt")) or 0
        except BadRunError:
            created[run_id] = 0
    return created


def _read_page(items: list[Any], result: AccountResult, index: Index, options: FetchOptions) -> set[str]:
    """Compares a list answer with the warehouse: what to load, what to fetch details of.

    Returns the ids of the runs it listed.
    """
    account = result.account
    seen_at = datetime.now(UTC)
    seen: set[str] = set()
    in_flight: list[str] = []
    changed, wanted = [], []
    for item in items:
        verdict = _compare(item, account, index, options)
        if verdict == CHANGED:
            changed.append(item)
            continue
        if verdict == FOREIGN:
            result.foreign[item["id"]] = index.runs[item["id"]][0]
            continue
        seen.add(item["id"])
        if not is_terminal(item.get("status")):
            in_flight.append(item["id"])
        if verdict == DETAILS:
            wanted.append((item["id"], item.get("status")))
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
        seen.add(run_id)
        if not is_terminal(status):
            in_flight.append(run_id)
        stored = index.stored(run_id)
        if stored is None:
            result.new += 1
        elif differs(stored, updated_us, status):
            result.updated.add(run_id)
        if _wants_details(status, updated_us, stored, options) and not carried:
            wanted.append((run_id, status))
    if wanted:
        by_id = {
            item["id"]: item for item in items if isinstance(item, dict) and isinstance(item.get("id"), str)
        }
        created = _created_us({run_id: by_id[run_id] for run_id, _ in wanted if run_id in by_id})
        result.to_detail = [
            Job(run_id, account, status_group(status) == "failed", created.get(run_id, 0))
            for run_id, status in dict(wanted).items()
        ]
    full = len(items) >= LIST_LIMIT
    if full and account not in index.accounts_stored:
        result.first_sync = True
        dates = [
            i.get("createdAt") for i in items if isinstance(i, dict) and isinstance(i.get("createdAt"), str)
        ]
        result.oldest_listed = min(dates) if dates else None
    else:
        result.possible_gap = full and not any(index.holds(run_id, account) for run_id in seen)
    result.page = PageMark("", len(seen), in_flight)
    return seen


def list_account(
    client: RecoupClient, account: str, index: Index, options: FetchOptions, own: bool = False
) -> AccountResult:
    """Lists an account's newest runs and plans what to fetch of it by id afterwards.

    Args:
        own: list without `account_id` (the key's own account, whose id is `account`).

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
        result.runs_seen = known.listed
        in_page = set(known.in_flight)
        backlog = index.backlog.get(account, [])
    else:
        in_page = _read_page(page.runs, result, index, options)
        result.page = result.page._replace(digest=page.digest)
        result.runs_seen = len(in_page)
        # A listed run was judged again above; the stored backlog speaks of the others.
        backlog = [
            job._replace(listed=False) for job in index.backlog.get(account, []) if job.run_id not in in_page
        ]
    planned = {job.run_id for job in result.to_detail}
    result.to_detail += [job for job in backlog if job.run_id not in planned]
    result.refresh = [
        Job(run_id, account, False, 0, listed=False, refresh=True)
        for run_id in index.in_flight(account)
        if run_id not in in_page
    ]
    return result


def list_all(
    client: RecoupClient,
    accounts: list[str],
    index: Index,
    options: FetchOptions,
    own: bool = False,
    concurrency: int = defaults.MAX_CONCURRENCY,
    stop: threading.Event | None = None,
) -> Iterator[AccountResult]:
    """Lists accounts concurrently and yields each result as soon as it is complete.

    At most `AHEAD x concurrency` accounts are in progress, so memory stays bounded however many
    accounts there are. Once `stop` is set no further account is started (a signal asked the
    sync to end). An AuthError stops everything at once.
    """
    # Twice as many threads as requests in flight (the client caps those): while some threads
    # check the page they got, the others keep every request slot of the rate cap in use.
    workers = 2 * max(1, concurrency)
    with ThreadPoolExecutor(workers, thread_name_prefix="list") as pool:
        pending: set[Future[AccountResult]] = set()
        finished: queue.SimpleQueue[Future[AccountResult]] = queue.SimpleQueue()  # O(1) per result
        waiting = iter(accounts)
        try:
            while True:
                while len(pending) < AHEAD * workers:
                    account = None if stop is not None and stop.is_set() else next(waiting, None)
                    if account is None:
                        break
                    future = pool.submit(list_account, client, account, index, options, own)
                    future.add_done_callback(finished.put)
                    pending.add(future)
                if not pending:
                    return
                future = finished.get()
                pending.discard(future)
                yield future.result()
        finally:
            for future in pending:
                future.cancel()
