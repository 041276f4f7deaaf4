"""Each account's last list page, kept in dlt's source state so that an unchanged page is not parsed.

A mark is a digest and a few numbers per account, never a row per run: the state dlt stores
with every load stays small however long the history.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pipelines.recoup.outcomes import AccountLog
from pipelines.recoup.stored import PageMark

SOURCE_NAME = "recoup"  # the dlt source, whose state holds the marks
STATE_KEY = "pages"  # in `dlt.current.source_state()`
OPEN_KEY = "open_runs"  # beside it: the oldest creation a sync must still read (warehouse.sync_state)


@dataclass(frozen=True)
class PageBook:
    """The marks a sync starts from, and what it needs to write the next ones.

    Attributes:
        marks: by account, as the source state holds them (digest, listed, in_flight, stored, options).
        stored: each account's count of stored runs when the sync started.
        options: the sync's fetch options as text: a page read under others is read again.
    """

    marks: dict[str, dict[str, Any]] = field(default_factory=dict)
    stored: dict[str, int] = field(default_factory=dict)
    options: str = ""

    def known(self) -> dict[str, PageMark]:
        """The pages a list may skip, by account.

        A page qualifies when it was read under the same options and its account still holds
        exactly the runs it held then (someone may have deleted rows to have them read again).
        """
        return {
            account: PageMark(mark["digest"], mark["listed"], list(mark["in_flight"]))
            for account, mark in self.marks.items()
            if mark.get("options") == self.options and mark.get("stored") == self.stored.get(account)
        }

    def after(self, results: Iterable[AccountLog]) -> dict[str, dict[str, Any]]:
        """The marks once `results` are stored.

        A page read again to the same digest keeps its mark; a page read in full without a
        problem gets a new one; a page with a problem loses it, and so does the page of an
        account that another account's list showed runs of (read it in full next time).
        """
        marks = dict(self.marks)
        owners: set[str] = set()
        for result in results:
            owners.update(result.foreign.values())
            if result.ok and result.unchanged_page:
                continue
            page = result.page if result.ok else None
            if page is None or not page.digest:
                marks.pop(result.account, None)
                continue
            marks[result.account] = {
                "digest": page.digest,
                "listed": page.listed,
                "in_flight": sorted(page.in_flight),
                "stored": self.stored.get(result.account, 0) + result.new,
                "options": self.options,
            }
        for owner in owners:
            marks.pop(owner, None)
        return marks
