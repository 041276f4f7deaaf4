"""The archive's commands, `recoup restore` and `recoup archive status`, given their settings explicitly.

The command line passes the environment in; nothing here reads `os.environ`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import orjson

from pipelines.archive.restore import TargetExists, restore
from pipelines.archive.s3 import redact
from pipelines.archive.settings import ArchiveSettings, archive_settings
from pipelines.archive.status import read_archive_status
from pipelines.config import database_path
from pipelines.recoup.errors import ConfigError, LockHeld, RecoupError
from pipelines.status import iso, parse_duration

log = logging.getLogger("recoup")
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_LOCKED = 0, 1, 2, 75


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


def _settings(env: Mapping[str, str]) -> ArchiveSettings:
    settings = archive_settings(env)
    if not settings.target:
        raise ConfigError("RECOUP_ARCHIVE is not set: it names the archive (a folder or s3://bucket/prefix)")
    return settings


def restore_command(env: Mapping[str, str], at: str | None, force: bool, to: str | None) -> int:
    """`recoup restore [--at TIME] [--force] [--to PATH]`: exit 0 restored, 1 failed, 2 refused or bad settings, 75 a sync runs."""
    settings: ArchiveSettings | None = None
    try:
        settings = _settings(env)
        moment = parse_moment(at) if at else None
        target = Path(to).expanduser() if to else database_path(env)
        done = restore(settings, target.resolve(), moment, force)
    except LockHeld as exc:
        log.error("restore: %s", exc)
        return EXIT_LOCKED
    except (ConfigError, ValueError, TargetExists) as exc:
        log.error("restore: %s", exc)
        return EXIT_USAGE
    except (RecoupError, duckdb.Error, OSError) as exc:
        message = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        log.error("restore: %s", redact(message, settings.s3) if settings else message)
        return EXIT_FAILED
    print(f"restore: {done.path} rebuilt as of the sync of {iso(done.point.through_at)} "
          f"(1 snapshot and {len(done.chain) - 1} change set(s), {done.seconds:.1f} s)")  # fmt: skip
    return EXIT_OK


def status_command(env: Mapping[str, str], max_age: str | None, as_json: bool) -> int:
    """`recoup archive status [--max-age DURATION] [--json]`: exit 1 when the newest archived sync is older."""
    settings: ArchiveSettings | None = None
    try:
        settings = _settings(env)
        limit = parse_duration(max_age) if max_age else None
        state = read_archive_status(settings, database_path(env))
    except (ConfigError, ValueError) as exc:
        log.error("archive status: %s", exc)
        return EXIT_USAGE
    except (RecoupError, duckdb.Error, OSError) as exc:
        message = str(exc).splitlines()[0][:300]
        log.error("archive status: %s", redact(message, settings.s3) if settings else message)
        return EXIT_FAILED
    if as_json:
        print(orjson.dumps(state.to_dict(limit)).decode())
    else:
        print("\n".join(state.lines(limit)))
    return EXIT_FAILED if limit is not None and state.stale(limit) else EXIT_OK
