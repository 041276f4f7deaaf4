"""Values that describe what the warehouse already holds: a stored run, a page mark, a run to fetch."""

from __future__ import annotations

from typing import NamedTuple


class StoredRun(NamedTuple):
    """What the warehouse knows of a run before this sync (times in epoch microseconds)."""

    account_id: str
    status: str | None
    updated_us: int | None
    detailed_us: int | None  # the updatedAt at which details were last fetched


class Job(NamedTuple):
    """One run to fetch by id after the lists: a refresh or a details fetch."""

    run_id: str
    account: str
    failed: bool  # failed runs' details go first
    created_us: int  # then the newest
    listed: bool = True  # the run was in this sync's list (so it is already counted as seen)
    refresh: bool = False  # a stored in-flight run that left the list, not a details fetch


class PageMark(NamedTuple):
    """The last list answer of an account read in full and stored without a problem."""

    digest: str
    listed: int  # how many runs it listed
    in_flight: list[str]  # which of them were still in flight (the others outside it get refreshed)
