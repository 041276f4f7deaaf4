"""`recoup restore --at TIME`: the moments it takes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipelines.config.values import parse_duration


def parse_moment(text: str, now: datetime | None = None) -> datetime:
    """`--at`: an ISO 8601 time (UTC when it names no zone), a date (its end, UTC), or a duration ago (`2h`).

    Raises:
        ValueError: none of these.
    """
    text = text.strip()
    try:
        return (now or datetime.now(UTC)) - parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"--at {text[:40]!r} is not a time such as 2026-11-20T12:00:00Z, 2026-11-20 or 2h"
        ) from None
    if len(text) == 10:  # a date: everything archived that day
        moment += timedelta(days=1) - timedelta(microseconds=1)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
