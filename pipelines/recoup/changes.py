"""Change detection: a list answer compared with what the warehouse holds."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from pipelines.recoup.columnar import CheckedPage, list_answers
from pipelines.recoup.errors import BadRunError
from pipelines.recoup.index import Index
from pipelines.recoup.options import FetchOptions
from pipelines.recoup.outcomes import PageVerdict, Rows
from pipelines.recoup.settings import LEGACY_TO_CURRENT, LIST_LIMIT
from pipelines.recoup.stored import Job, PageMark, StoredRun
from pipelines.recoup.transform import carries_details, is_terminal, status_group
from pipelines.recoup.values import micros, to_utc


def same_status(a: str | None, b: str | None) -> bool:
    """The same state reads FROZEN in a list and WAITING when retrieved: not a change."""
    return LEGACY_TO_CURRENT.get(a or "", a) == LEGACY_TO_CURRENT.get(b or "", b)


def differs(stored: StoredRun, updated_us: int | None, status: str | None) -> bool:
    """True when an answer changes what is stored of a run."""
    return updated_us != stored.updated_us or not same_status(stored.status, status)


def older(stored: StoredRun, updated_us: int | None) -> bool:
    """True when an answer was last updated before the stored one: a stale copy, never loaded.

    (A lagging replica can answer a finished run as still executing, at its older cost.)
    """
    return updated_us is not None and stored.updated_us is not None and updated_us < stored.updated_us


def _wants_details(
    status: str | None, updated_us: int | None, stored: StoredRun | None, options: FetchOptions
) -> bool:
    if options.details == "none" or not is_terminal(status):
        return False
    if options.details == "failed" and status_group(status) != "failed":
        return False
    return stored is None or stored.detailed_us != updated_us


class Verdict(Enum):
    """What a list item is to the warehouse (see `_compare`)."""

    SAME = "same"
    OLDER = "older"
    DETAILS = "details"
    CHANGED = "changed"
    FOREIGN = "foreign"


def _compare(item: Any, account: str, index: Index, options: FetchOptions) -> Verdict:
    """The cheap test that lets most items of a re-sync skip the transform.

    SAME: as stored. OLDER: updated before the stored answer, which stands. DETAILS: as
    stored, but its details are still to fetch. CHANGED: new,
    changed, or not a valid run (the transform decides which). FOREIGN: stored under another
    account; a run keeps the account that first listed it.
    """
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        return Verdict.CHANGED
    stored = index.stored(item["id"])
    status = item.get("status")
    if stored is not None and stored.account_id != account:
        return Verdict.FOREIGN
    if stored is None and index.claim(item["id"], account) != account:  # new, on two accounts' pages
        return Verdict.FOREIGN
    if stored is None or not isinstance(status, str | None):
        return Verdict.CHANGED
    try:
        updated_us = micros(to_utc(item.get("updatedAt") or item.get("createdAt"), "updatedAt"))
    except BadRunError:
        return Verdict.CHANGED
    if older(stored, updated_us):
        return Verdict.OLDER
    if differs(stored, updated_us, status):
        return Verdict.CHANGED
    if _wants_details(status, updated_us, stored, options) and not carries_details(item):
        return Verdict.DETAILS
    return Verdict.SAME


def _created_us(items: dict[str, Any]) -> dict[str, int]:
    """Creation times of listed runs, to order their details newest first."""
    created = {}
    for run_id, item in items.items():
        try:
            created[run_id] = micros(to_utc(item.get("createdAt"), "createdAt")) or 0
        except BadRunError:
            created[run_id] = 0
    return created


def compare_page(
    items: list[Any], account: str, index: Index, options: FetchOptions
) -> tuple[PageVerdict, Rows]:
    """Compares a list answer with what the warehouse holds.

    Returns:
        The verdict (counts, details wanted, flags, the page's mark) and the rows to load.
    """
    seen_at = datetime.now(UTC)
    seen: set[str] = set()
    in_flight: list[str] = []
    changed, wanted = [], []
    foreign: dict[str, str] = {}
    rows = Rows()
    for item in items:
        judged = _compare(item, account, index, options)
        if judged == Verdict.CHANGED:
            changed.append(item)
            continue
        if judged == Verdict.FOREIGN:
            foreign[item["id"]] = index.owner(item["id"]) or ""
            continue
        seen.add(item["id"])
        kept = index.stored(item["id"]) if judged == Verdict.OLDER else None
        status = kept.status if kept else item.get("status")  # an older answer says nothing new
        if not is_terminal(status):
            in_flight.append(item["id"])
        if judged == Verdict.DETAILS:
            wanted.append((item["id"], item.get("status")))
    checked, problems = (
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
    facts: Sequence[tuple[str, int | None, str | None, bool]]  # CheckedPage.facts, or read from rows
    if isinstance(checked, CheckedPage):
        facts = checked.facts
        if facts:
            rows.pages.append(checked)
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
        rows.list_rows = checked
    new, updated = 0, set()
    for run_id, updated_us, status, carried in facts:
        seen.add(run_id)
        if not is_terminal(status):
            in_flight.append(run_id)
        stored = index.stored(run_id)
        if stored is None:
            new += 1
        elif differs(stored, updated_us, status):
            updated.add(run_id)
        if _wants_details(status, updated_us, stored, options) and not carried:
            wanted.append((run_id, status))
    to_detail: list[Job] = []
    if wanted:
        by_id = {
            item["id"]: item for item in items if isinstance(item, dict) and isinstance(item.get("id"), str)
        }
        created = _created_us({run_id: by_id[run_id] for run_id, _ in wanted if run_id in by_id})
        to_detail = [
            Job(run_id, account, status_group(status) == "failed", created.get(run_id, 0))
            for run_id, status in dict(wanted).items()
        ]
    full = len(items) >= LIST_LIMIT
    first_sync = full and account not in index.stored_runs
    oldest_listed = None
    if first_sync:
        dates = [i["createdAt"] for i in items if isinstance(i, dict) and isinstance(i.get("createdAt"), str)]
        oldest_listed = min(dates) if dates else None
    possible_gap = not first_sync and full and not any(index.holds(run_id, account) for run_id in seen)
    verdict = PageVerdict(
        seen=frozenset(seen),
        page=PageMark("", len(seen), in_flight),
        new=new,
        updated=frozenset(updated),
        problems=tuple(problems),
        foreign=foreign,
        to_detail=tuple(to_detail),
        first_sync=first_sync,
        oldest_listed=oldest_listed,
        possible_gap=possible_gap,
    )
    return verdict, rows
