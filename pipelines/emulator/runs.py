"""What an emulated run is made of, and how its status settles its times, cost and attempts.

The workload's statuses, tasks, tags, environments and errors are weighted like a real one.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from pipelines.emulator.statuses import TERMINAL

MAX_TAGS = 10

# Weighted like a real workload: mostly completed, a tail of failures and runs in flight.
STATUS_WEIGHTS = {
    "COMPLETED": 70, "FAILED": 7, "CRASHED": 3, "EXECUTING": 5, "QUEUED": 4, "CANCELED": 3,
    "DELAYED": 2, "TIMED_OUT": 2, "SYSTEM_FAILURE": 1, "REATTEMPTING": 1, "FROZEN": 1,
    "WAITING_FOR_DEPLOY": 0.5, "INTERRUPTED": 0.5, "EXPIRED": 0.5, "PENDING_VERSION": 0.5,
}  # fmt: skip
TASKS = (
    "generate-artist-report", "sync-spotify-catalog", "send-weekly-digest", "scrape-tiktok-trends",
    "transcode-audio", "ai-chat-completion", "refresh-fan-segments", "post-social-content",
)  # fmt: skip
EXTRA_TAGS = (
    "type:report", "type:sync", "priority:high", "priority:low", "source:spotify",
    "source:tiktok", "artist:Beyoncé", "région:Île-de-France", "campaign:🎵 summer drop",
    "urgent", "backfill", "retry-safe", "env:", "url:https://example.com/a:b", "日本語:タグ",
)  # fmt: skip
ENVS = (("env_prod", "prod"), ("env_staging", "staging"), ("env_dev", "dev"))
ERRORS = (
    ("TimeoutError", "Request to Spotify timed out after 30000ms"),
    ("RateLimitError", "TikTok API rate limit exceeded"),
    ("TypeError", "Cannot read properties of undefined (reading 'artistId')"),
    ("Error", "OpenAI returned 503: the engine is currently overloaded"),
)


def settle(run: dict[str, Any], status: str, rng: random.Random, now: datetime) -> None:
    """Sets a run's status and everything that follows from it: times, cost, attempts, error."""
    run["status"] = status
    created = run["createdAt"]
    queued = status in ("QUEUED", "DELAYED", "PENDING_VERSION", "WAITING_FOR_DEPLOY", "EXPIRED")
    started = None if queued else created + timedelta(milliseconds=rng.randrange(50, 20_000))
    duration = 0 if queued else rng.randrange(200, 600_000)
    finished = started + timedelta(milliseconds=duration) if started and status in TERMINAL else None
    run["startedAt"], run["finishedAt"] = started, finished
    run["delayedUntil"] = created + timedelta(minutes=10) if status == "DELAYED" else None
    run["ttl"] = "10m" if queued else None
    run["expiredAt"] = created + timedelta(minutes=10) if status == "EXPIRED" else None
    run["durationMs"] = duration
    run["costInCents"] = round(duration * rng.uniform(0.00001, 0.0004), 6)
    run["baseCostInCents"] = 0.0 if queued else 0.0025
    run["updatedAt"] = min(finished or started or created, now) if finished or started else created
    failed = status in ("FAILED", "CRASHED", "SYSTEM_FAILURE", "INTERRUPTED", "TIMED_OUT")
    if failed:
        name, message = rng.choice(ERRORS)
        run["error"] = {
            "message": message,
            "name": name,
            "stackTrace": f"{name}: {message}\n    at run (src/trigger/task.ts:42:7)",
        }
    else:
        run["error"] = None
    run["output"] = {"ok": True, "rows": rng.randrange(1000)} if status == "COMPLETED" else None
    count = 0 if queued else rng.choice((1, 1, 1, 2, 3)) if failed else rng.choice((1, 1, 1, 1, 2))
    attempts = []
    for number in range(count):
        last = number == count - 1
        a_start = (started or created) + timedelta(seconds=number * 5)
        attempts.append({
            "id": f"attempt_{run['id'][4:16]}{number}",
            "status": (status if last else "FAILED") if status in TERMINAL else ("EXECUTING" if last else "FAILED"),
            "createdAt": a_start,
            "updatedAt": finished or a_start,
            "startedAt": a_start,
            "completedAt": (finished if last else a_start + timedelta(seconds=2)) if status in TERMINAL or not last else None,
            "error": run["error"] if (failed and last) or not last else None,
        })  # fmt: skip
    run["attempts"] = attempts
