"""Log lines for unattended use: an ISO-8601 UTC timestamp on each, as text or one JSON object."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import orjson

from pipelines.recoup.safety import mask_catalog

RESULT_LOGGER = "recoup.result"  # the closing lines of a command: stdout, never silenced


def utc_iso(created: float) -> str:
    """`2026-11-29T06:00:26.123Z`: sorts as text, reads the same in every time zone."""
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TextFormatter(logging.Formatter):
    """`<timestamp> <message>`; warnings and errors name their level."""

    def format(self, record: logging.LogRecord) -> str:
        """The timestamp, the level unless it is INFO, then the message."""
        level = "" if record.levelno == logging.INFO else f"{record.levelname} "
        return f"{utc_iso(record.created)} {level}{record.getMessage()}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one JSON object on one line."""
        entry = {
            "ts": utc_iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)  # numbers a line reports, given as `extra={"fields": ...}`
        if isinstance(fields, dict):
            entry.update({key: value for key, value in fields.items() if key not in entry})
        return orjson.dumps(entry).decode()


class MaskCatalog(logging.Filter):
    """Masks catalog passwords in every record: a DuckDB or psycopg error may echo RECOUP_LAKE."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keeps the record, its message masked."""
        record.msg, record.args = mask_catalog(record.getMessage()), None
        return True


def configure(level: int, log_format: str) -> None:
    """Progress and errors go to stderr at `level`; result lines go to stdout whatever the level."""
    formatter = JsonFormatter() if log_format == "json" else TextFormatter()
    progress = logging.StreamHandler(sys.stderr)
    progress.setFormatter(formatter)
    progress.addFilter(MaskCatalog())
    root = logging.getLogger()
    root.handlers[:] = [progress]
    root.setLevel(level)
    # httpx logs every request at INFO, httpcore every socket step at DEBUG: --verbose shows the former.
    logging.getLogger("httpx").setLevel(logging.INFO if level <= logging.DEBUG else logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    results = logging.StreamHandler(sys.stdout)
    results.setFormatter(formatter)
    results.addFilter(MaskCatalog())
    result_log = logging.getLogger(RESULT_LOGGER)
    result_log.handlers[:] = [results]
    result_log.setLevel(logging.INFO)
    result_log.propagate = False
