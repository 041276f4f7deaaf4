"""What the warehouse holds that a list can still mention, as the fetch reads it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from pipelines.recoup.outcomes import AccountLog
from pipelines.recoup.pages import OPEN_KEY, STATE_KEY, PageBook
from pipelines.recoup.stored import Job, PageMark, StoredRun

__all__ = ["Index", "Job", "StoredRun"]


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
    stored_runs: dict[str, int] = field(default_factory=dict)  # by account: how many runs are stored
    page_book: PageBook = field(default_factory=PageBook)  # the page marks this sync starts from
    open_mark: dict[str, str] | None = None  # no older run is recent, in flight or awaiting details
    _runs: dict[str, tuple] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _claims: dict[str, str] = field(default_factory=dict)  # new runs: the account that listed each first

    @property
    def runs(self) -> dict[str, tuple]:
        """Each stored run's account_id, status, updated_us and detailed_us, by id.

        Read on first use, once, by whichever thread asks first.
        """
        if self._runs is None:
            with self._lock:
                if self._runs is None:
                    latest = self.read_latest() if self.read_latest else None
                    columns = [] if latest is None else [c.to_pylist() for c in latest.columns]
                    ids, *known = columns or [[]] * 5
                    self._runs = dict(zip(ids, zip(*known, strict=True), strict=True))
        return self._runs

    def state_after(self, results: Iterable[AccountLog]) -> dict[str, Any]:
        """The source state dlt stores with this sync's load: the page marks and the open-runs mark."""
        return {STATE_KEY: self.page_book.after(results), OPEN_KEY: self.open_mark}

    def stored(self, run_id: str) -> StoredRun | None:
        """What the warehouse holds of `run_id`, or None for a run it does not hold."""
        known = self.runs.get(run_id)
        return None if known is None else StoredRun._make(known)

    def owner(self, run_id: str) -> str | None:
        """The account a run belongs to: the stored one, or the first to list it in this sync."""
        known = self.runs.get(run_id)
        return known[0] if known is not None else self._claims.get(run_id)

    def claim(self, run_id: str, account: str) -> str:
        """Claims a run the warehouse does not hold for `account`; returns the account it belongs to.

        That is `account`, unless another account's page listed it first in this sync (the
        listings run in threads).
        """
        with self._lock:
            return self._claims.setdefault(run_id, account)

    def holds(self, run_id: str, account: str) -> bool:
        """True when the warehouse holds `run_id` under `account`."""
        known = self.runs.get(run_id)
        return known is not None and known[0] == account

    def in_flight(self, account: str) -> list[str]:
        """The ids of `account`'s stored runs still in flight."""
        return self.in_flight_ids.get(account, [])
