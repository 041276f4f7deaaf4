"""`recoup emulator --live`: a world that moves with the clock, and admin endpoints to rehearse with.

Every few seconds the emulator's clock catches up with the wall clock: each account gets new
runs now and then, runs in flight finish, a finished run's cost is corrected. The admin
endpoints (POST, on the emulator's loopback port, no key) change the world by hand:

- `/admin/revoke?account=ID` and `/admin/grant?account=ID`: the demo key loses or regains it;
- `/admin/down?seconds=N`: every request answers 503 for N seconds; `/admin/up` ends it early;
- `/admin/runs?account=ID&count=N`: N new runs now.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

from pipelines.emulator.world import World

STEP_SECONDS = 5.0


def step(world: World) -> None:
    """One move of a live world: the clock to now, new runs, finished runs, a changed cost."""
    rng = world.rng
    with world.lock:
        world.now = max(world.now, datetime.now(UTC).replace(microsecond=0))
        for account in world.account_ids:
            if rng.random() < 0.5:
                world.add_run(account, created_at=world.now)
            flying = world.in_flight(account)
            if flying and rng.random() < 0.7:
                world.complete_run(rng.choice(flying))
        if rng.random() < 0.2:
            account = rng.choice(world.account_ids)
            finished = [r for r in world.visible(account, 100) if r["id"] not in world.in_flight(account)]
            if finished:
                run = rng.choice(finished)
                world.change_run(run["id"], costInCents=round(run.get("costInCents", 0) * 1.1 + 1, 6))


def start(world: World, every: float = STEP_SECONDS) -> threading.Event:
    """Moves `world` every `every` seconds in a daemon thread; set the returned event to stop."""
    stopped = threading.Event()

    def run() -> None:
        while not stopped.wait(every):
            step(world)

    threading.Thread(target=run, name="live-world", daemon=True).start()
    return stopped


def admin(world: World, path: str, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
    """Answers one admin request (see the module's docstring)."""
    account = (query.get("account") or [""])[-1]
    if path in ("/admin/revoke", "/admin/grant", "/admin/runs") and account not in world.account_ids:
        return 404, {"status": "error", "error": f"no account {account[:40]!r}"}
    try:
        number = float((query.get("seconds") or query.get("count") or ["0"])[-1])
    except ValueError:
        return 400, {"status": "error", "error": "seconds and count are numbers"}
    if path == "/admin/revoke":
        world.revoke(world.demo_key, account)
    elif path == "/admin/grant":
        world.grant(world.demo_key, account)
    elif path == "/admin/down":
        world.down_until = time.monotonic() + number
    elif path == "/admin/up":
        world.down_until = 0.0
    elif path == "/admin/runs":
        for _ in range(int(number)):
            world.add_run(account, created_at=world.now)
    else:
        return 404, {"status": "error", "error": "Not found"}
    return 200, {"status": "success"}
