"""What each phase of a sync returns, and the one fold that turns them into sync_log rows.

Listing an account returns an `AccountListing`; each fetch by id returns a `FollowupOutcome`.
Nothing is filled in along the way: `fold` combines them, once every request has ended, into
one `AccountLog` per account, from which sync_log, the page marks and the summary are built.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pipelines.recoup.columnar import CheckedPage
from pipelines.recoup.errors import ErrorKind
from pipelines.recoup.stored import Job, PageMark


@dataclass
class Rows:
    """Runs to load (new or changed): checked list pages, and answers taken run by run.

    They travel to the loader apart from the account's listing, which the sync keeps: once
    loaded, nothing holds them.
    """

    pages: list[CheckedPage] = field(default_factory=list)
    list_rows: list[dict[str, Any]] = field(default_factory=list)
    detail_rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def has_rows(self) -> bool:
        """True when there is anything to load."""
        return bool(self.pages or self.list_rows or self.detail_rows)

    @property
    def runs(self) -> int:
        """How many runs there are to load."""
        return sum(map(len, self.pages)) + len(self.list_rows) + len(self.detail_rows)


@dataclass(frozen=True)
class AccountError:
    """Why an account could not be listed."""

    kind: ErrorKind
    message: str


@dataclass(frozen=True)
class PageVerdict:
    """One list answer compared with what the warehouse holds."""

    seen: frozenset[str]  # the runs it listed that stay with this account
    page: PageMark  # its mark, without the digest
    new: int = 0
    updated: frozenset[str] = frozenset()
    problems: tuple[str, ...] = ()  # runs that could not be stored, each named
    foreign: Mapping[str, str] = field(
        default_factory=dict
    )  # listed runs stored under another account: owner
    to_detail: tuple[Job, ...] = ()
    first_sync: bool = False  # a full list on the account's first sync: older runs are out of reach
    oldest_listed: str | None = None  # createdAt of the oldest run of a first full list
    possible_gap: bool = False


@dataclass(frozen=True)
class AccountListing:
    """What listing one account found, and what it plans to fetch by id afterwards."""

    account: str
    error: AccountError | None = None  # the list call failed: nothing else is known
    verdict: PageVerdict | None = None  # None for an error, or a page the same to the byte
    page: PageMark | None = None  # the list answer's mark, when it was read (or known) whole
    unchanged_page: bool = False  # the list answer was the page already stored, byte for byte
    runs_seen: int = 0
    refresh: tuple[Job, ...] = ()  # stored in-flight runs the list no longer shows
    to_detail: tuple[Job, ...] = ()  # finished runs whose details are to fetch


@dataclass
class Listed:
    """An account's listing and the rows it gave to load."""

    listing: AccountListing
    rows: Rows = field(default_factory=Rows)

    @property
    def has_rows(self) -> bool:
        """True when the list gave runs to load."""
        return self.rows.has_rows


@dataclass(frozen=True)
class FollowupOutcome:
    """What one fetch by id found."""

    job: Job
    problem: str | None = None  # the answer could not be used
    lost: bool = False  # the API no longer knows the run: it keeps its last state
    updated: bool = False  # a refresh whose answer differs from what is stored


@dataclass
class FollowupBatch:
    """Answers of fetches by id, with the outcome of each."""

    rows: Rows = field(default_factory=Rows)
    outcomes: list[FollowupOutcome] = field(default_factory=list)
    started_at: float | None = None  # seconds into the sync when the latest request by id started

    @property
    def has_rows(self) -> bool:
        """True when there is anything to load."""
        return self.rows.has_rows


@dataclass(frozen=True)
class AccountLog:
    """One account's part of a sync, once everything has ended: its sync_log row and page mark."""

    account: str
    runs_seen: int = 0
    page: PageMark | None = None
    unchanged_page: bool = False
    new: int = 0
    updated: frozenset[str] = frozenset()
    refreshed: int = 0
    lost: list[str] = field(default_factory=list)
    possible_gap: bool = False
    first_sync: bool = False
    oldest_listed: str | None = None
    problems: list[str] = field(default_factory=list)
    error: str | None = None
    error_kind: ErrorKind | None = None  # why the list call failed, when it did
    foreign: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the account had no error and no rejected run."""
        return self.error is None and not self.problems

    @property
    def list_failed(self) -> bool:
        """True when the account's list call itself failed."""
        return self.error_kind is not None

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


def _log_of(listing: AccountListing) -> AccountLog:
    verdict = listing.verdict
    base = AccountLog(
        listing.account,
        runs_seen=listing.runs_seen,
        page=listing.page,
        unchanged_page=listing.unchanged_page,
        error=listing.error.message if listing.error else None,
        error_kind=listing.error.kind if listing.error else None,
    )
    if verdict is None:
        return base
    return replace(
        base,
        new=verdict.new,
        updated=verdict.updated,
        possible_gap=verdict.possible_gap,
        first_sync=verdict.first_sync,
        oldest_listed=verdict.oldest_listed,
        problems=list(verdict.problems),
        foreign=verdict.foreign,
    )


def fold(listings: Iterable[AccountListing], outcomes: Iterable[FollowupOutcome]) -> list[AccountLog]:
    """One AccountLog per listed account: its listing, with the outcomes of its fetches by id."""
    logs = {listing.account: _log_of(listing) for listing in listings}
    extra: dict[str, dict[str, Any]] = {}
    for outcome in outcomes:
        job = outcome.job
        tally = extra.setdefault(
            job.account, {"seen": 0, "refreshed": 0, "updated": set(), "lost": [], "problems": []}
        )
        if outcome.problem:
            tally["problems"].append(outcome.problem)
        elif outcome.lost:
            tally["lost"].append(job.run_id)
        else:
            tally["seen"] += not job.listed
            tally["refreshed"] += job.refresh
            if outcome.updated:
                tally["updated"].add(job.run_id)
    for account, tally in extra.items():
        log = logs[account]
        logs[account] = replace(
            log,
            runs_seen=log.runs_seen + tally["seen"],
            refreshed=tally["refreshed"],
            updated=log.updated | tally["updated"],
            lost=tally["lost"],
            problems=log.problems + tally["problems"],
        )
    return list(logs.values())


@dataclass(frozen=True)
class Followups:
    """What the fetches by id did, for the summary."""

    planned: int = 0
    fetched: int = 0
    refreshes_deferred: int = 0
    details_deferred: int = 0
    last_started_at: float | None = None  # when the last request by id started

    @classmethod
    def of(cls, plan: list[Job], outcomes: list[FollowupOutcome], last_started_at: float | None) -> Followups:
        """The counts of a plan and the outcomes of the fetches it got to."""
        done = {(o.job.run_id, o.job.refresh) for o in outcomes}
        left = [job for job in plan if (job.run_id, job.refresh) not in done]
        refreshes = sum(job.refresh for job in left)
        return cls(len(plan), len(outcomes), refreshes, len(left) - refreshes, last_started_at)
