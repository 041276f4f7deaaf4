"""What listing an account produces: the numbers for sync_log, apart from the rows to load."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipelines.recoup.columnar import CheckedPage
from pipelines.recoup.index import Job
from pipelines.recoup.pages import PageMark


@dataclass
class Rows:
    """Runs to load (new or changed): checked list pages, and answers taken run by run.

    They travel to the loader apart from the account's result, which the summary keeps: once
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


@dataclass
class AccountResult:
    """What one account's sync did: the numbers for sync_log and the work left for later."""

    account: str
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
    def ok(self) -> bool:
        """True when the account had no error and no rejected run."""
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
class Listed:
    """An account's list, read: its result and the rows it gave to load."""

    result: AccountResult
    rows: Rows = field(default_factory=Rows)

    @property
    def has_rows(self) -> bool:
        """True when the list gave runs to load."""
        return self.rows.has_rows
