"""One sync at a time per warehouse file: a lock beside it that the kernel frees if its holder dies."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import filelock

from pipelines.recoup.errors import LockHeld
from pipelines.warehouse.paths import Paths


@contextmanager
def sync_lock(paths: Paths, wait_seconds: float) -> Iterator[None]:
    """Holds the one-sync-at-a-time lock; the kernel frees it if the holder dies."""
    lock = filelock.FileLock(paths.lock, timeout=max(0.0, wait_seconds))
    try:
        lock.acquire()
    except filelock.Timeout:
        raise LockHeld(f"another sync is running on {paths.db} (lock {paths.lock}); not starting") from None
    try:
        yield
    finally:
        lock.release()
