"""The report's settings: where to read and write, the period, and which runs it counts."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from pipelines import defaults
from pipelines.config_values import parse_flag, parse_integer

DEFAULT_DAYS = defaults.REPORT_DAYS
USAGE = ("RECOUP_REPORT_DAYS must be a whole number >= 1, RECOUP_REPORT_END a date (YYYY-MM-DD), "
         "RECOUP_REPORT_INCLUDE_TESTS and RECOUP_REPORT_INCLUDE_IN_FLIGHT true or false")  # fmt: skip


@dataclass(frozen=True)
class ReportSettings:
    """What `make report` reads from the environment."""

    db: Path
    out_dir: Path
    days: int
    end: date | None  # None: today (UTC)
    include_tests: bool
    include_in_flight: bool


def report_period(days: int = DEFAULT_DAYS, end: date | None = None) -> tuple[date, date]:
    """The first and last UTC day of a period of `days` days ending `end` (default today), inclusive."""
    end = end or datetime.now(UTC).date()
    return end - timedelta(days=days - 1), end


def load_report_settings(env: Mapping[str, str] | None = None) -> ReportSettings:
    """Reads RECOUP_REPORT_*, RECOUP_REPORTS_DIR and RECOUP_DB.

    Raises:
        ValueError: a setting is unusable (USAGE says what each must be).
    """
    env = os.environ if env is None else env
    end_text = env.get("RECOUP_REPORT_END")
    days = parse_integer("RECOUP_REPORT_DAYS", env.get("RECOUP_REPORT_DAYS"), DEFAULT_DAYS, 1)
    end = date.fromisoformat(end_text) if end_text else None
    include_tests = parse_flag("RECOUP_REPORT_INCLUDE_TESTS", env.get("RECOUP_REPORT_INCLUDE_TESTS"))
    include_in_flight = parse_flag(
        "RECOUP_REPORT_INCLUDE_IN_FLIGHT", env.get("RECOUP_REPORT_INCLUDE_IN_FLIGHT")
    )
    if env.get("RECOUP_DB"):
        db = Path(env["RECOUP_DB"])
    else:  # the .dlt/ files may name it; reading them needs dlt, a heavy import the report avoids otherwise
        from pipelines.config import database_path

        db = database_path(env)
    out_dir = Path(env.get("RECOUP_REPORTS_DIR") or defaults.REPORTS_DIR)
    return ReportSettings(db, out_dir, days, end, include_tests, include_in_flight)
