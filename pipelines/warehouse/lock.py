"""One sync at a time per warehouse folder: locks the kernel frees if their holder dies."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import filelock

from pipelines.recoup.errors import LockHeld
from pipelines.warehouse.paths import Paths


@contextmanager
def _folder_lock(paths: Paths, deadline: float) -> Iterator[None]:
    """An exclusive lock on the folder itself, which no one deletes while it holds a warehouse.

    A lock file can be deleted while held; a second sync would then lock a new file of the same
    name and run beside the first.
    """
    folder = os.open(paths.folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        while True:
            try:
                fcntl.flock(folder, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockHeld(
                        f"another sync is running in {paths.folder} (it holds the folder's lock); not starting"
                    ) from None
                time.sleep(0.1)
        yield
    finally:
        os.close(folder)  # closing the descriptor releases the lock


@contextmanager
def sync_lock(paths: Paths, wait_seconds: float) -> Iterator[None]:
    """Holds the one-sync-at-a-time locks: the file beside the warehouse, then its folder.

    The file is what older versions (and the tools that check it) take; the folder still holds
    when the file is deleted during a sync.
    """
    deadline = time.monotonic() + max(0.0, wait_seconds)
    lock = filelock.FileLock(paths.lock, timeout=max(0.0, wait_seconds))
    try:
        lock.acquire()
    except filelock.Timeout:
        raise LockHeld(f"another sync is running on {paths.db} (lock {paths.lock}); not starting") from None
    try:
        with _folder_lock(paths, deadline):
            yield
    finally:
        lock.release()
