"""Phase one of a sync: every account's list, compared with what the warehouse holds.

Listing decides what to load (new or changed runs) and what to fetch one by one later
(`pipelines/recoup/followups.py`): details of finished runs, and stored in-flight runs that
left the list. Nothing here waits for those per-run requests, so every account is listed
before any details are fetched.
"""

from __future__ import annotations

from pipelines.recoup.changes import compare_page
from pipelines.recoup.client import RecoupClient
from pipelines.recoup.errors import ApiError, AuthError
from pipelines.recoup.index import Index, Job
from pipelines.recoup.options import DETAIL_MODES, FetchOptions
from pipelines.recoup.outcomes import AccountError, AccountListing, Listed, Rows

__all__ = ["DETAIL_MODES", "list_account"]  # DETAIL_MODES: read by pipelines/config/


def list_account(
    client: RecoupClient, account: str, index: Index, options: FetchOptions, own: bool = False
) -> Listed:
    """Lists an account's newest runs and plans what to fetch of it by id afterwards.

    Args:
        own: list without `account_id` (the key's own account, whose id is `account`).

    Returns:
        The account's listing, and the rows it gave to load.

    Raises:
        AuthError: the key was refused; the whole sync must stop.
    """
    known = index.pages.get(account)
    try:
        page = client.fetch_runs(None if own else account, known.digest if known else None)
    except AuthError:
        raise
    except ApiError as exc:
        return Listed(AccountListing(account, error=AccountError(exc.kind, str(exc))))
    rows, verdict = Rows(), None
    if page.runs is None:  # byte for byte the page already stored: nothing in it changed
        assert known is not None  # runs is None only for a known digest
        mark, runs_seen, in_page = known, known.listed, frozenset(known.in_flight)
        backlog = index.backlog.get(account, [])
        to_detail: list[Job] = []
    else:
        verdict, rows = compare_page(page.runs, account, index, options)
        mark, runs_seen, in_page = verdict.page._replace(digest=page.digest), len(verdict.seen), verdict.seen
        # A listed run was judged again above; the stored backlog speaks of the others.
        backlog = [
            job._replace(listed=False) for job in index.backlog.get(account, []) if job.run_id not in in_page
        ]
        to_detail = list(verdict.to_detail)
    planned = {job.run_id for job in to_detail}
    to_detail += [job for job in backlog if job.run_id not in planned]
    refresh = tuple(
        Job(run_id, account, False, 0, listed=False, refresh=True)
        for run_id in index.in_flight(account)
        if run_id not in in_page
    )
    listing = AccountListing(
        account,
        verdict=verdict,
        page=mark,
        unchanged_page=page.runs is None,
        runs_seen=runs_seen,
        refresh=refresh,
        to_detail=tuple(to_detail),
    )
    return Listed(listing, rows)
