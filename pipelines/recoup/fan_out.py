"""Every account listed concurrently, each result handed on as soon as it is complete."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from pipelines import defaults
from pipelines.recoup.client import RecoupClient
from pipelines.recoup.fetch import list_account
from pipelines.recoup.index import Index
from pipelines.recoup.options import FetchOptions
from pipelines.recoup.outcomes import Listed

# Accounts started per worker ahead of the consumer: while dlt writes a batch, the workers
# keep listing, and at most this many finished results wait in memory.
AHEAD = 8


def list_all(
    client: RecoupClient,
    accounts: list[str],
    index: Index,
    options: FetchOptions,
    own: bool = False,
    concurrency: int = defaults.MAX_CONCURRENCY,
    stop: threading.Event | None = None,
) -> Iterator[Listed]:
    """Lists accounts concurrently and yields each result as soon as it is complete.

    At most `AHEAD x concurrency` accounts are in progress, so memory stays bounded however many
    accounts there are. Once `stop` is set no further account is started (a signal asked the
    sync to end). An AuthError stops everything at once.
    """
    # Twice as many threads as requests in flight (the client caps those): while some threads
    # check the page they got, the others keep every request slot of the rate cap in use.
    workers = 2 * max(1, concurrency)
    with ThreadPoolExecutor(workers, thread_name_prefix="list") as pool:
        pending: set[Future[Listed]] = set()
        finished: queue.SimpleQueue[Future[Listed]] = queue.SimpleQueue()  # O(1) per result
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
