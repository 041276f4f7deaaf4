"""SIGTERM and SIGINT during a sync: the first asks it to finish early, the second ends it now.

The first signal sets an event: no new request starts, what was fetched is loaded and
published. The second exits with 130 at once, whatever the main thread is doing (it may be
inside DuckDB, where Python's own handlers cannot run): the published warehouse is only ever
replaced by one atomic rename, so it stays the last complete one. Before the work begins
(starting up, waiting for the lock) there is nothing to finish: the first signal exits with 130.

dlt would install handlers of its own around its normalize and load steps and fail the load
on a signal; `pipelines.loading` turns that off, so these handlers own every phase.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator

from pipelines import exit_codes

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
EXIT_ABORTED = exit_codes.ABORTED
_QUIT = b"\0"  # no signal has number 0: tells the watcher to end

log = logging.getLogger("recoup")


def _ignore(signum: int, frame: object) -> None:
    """Python's part of a handled signal; the watcher thread does the work."""


def _abort(line: str) -> None:
    """Ends the process now with 130 (from the watcher thread: the main one may be inside DuckDB)."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
    os._exit(EXIT_ABORTED)


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event, working: threading.Event | None = None) -> Iterator[None]:
    """Turns SIGTERM/SIGINT into `stop` for the duration; a second one exits with 130.

    Args:
        working: set once there is work a stop can finish (the lock is held); until then a
            signal exits with 130 at once. None: the work has begun already.

    Outside the main thread signals cannot be handled; the block then runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    before = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}

    def watch() -> None:
        received = 0
        while (byte := os.read(read_fd, 1)) not in (b"", _QUIT):
            received += 1
            name = signal.Signals(byte[0]).name
            if received == 1 and working is not None and not working.is_set():
                _abort(f"sync: {name} before the work began: aborted; nothing was changed")
            if received == 1:
                log.warning(
                    "%s: stopping early: nothing new starts; what was fetched is loaded and published", name
                )
                stop.set()
            else:
                _abort(f"sync: {name} again: aborted; the warehouse stays as the last complete sync left it")

    watcher = threading.Thread(target=watch, name="signals", daemon=True)
    watcher.start()
    for signum in STOP_SIGNALS:
        signal.signal(signum, _ignore)
    wakeup_before = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    try:
        yield
    finally:
        signal.set_wakeup_fd(wakeup_before)
        for signum, handler in before.items():
            signal.signal(signum, handler)
        os.write(write_fd, _QUIT)
        watcher.join(timeout=5)
        os.close(write_fd)
        os.close(read_fd)
