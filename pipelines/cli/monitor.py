"""How a sync reports itself to monitoring: a ping at its start and end, and a metrics file.

Both are opt-in and neither can fail the sync: a ping that cannot be sent, or a metrics file
that cannot be written, is one WARNING line.

- RECOUP_PING_URL follows the healthchecks convention: `<url>/start` when the sync starts, then
  `<url>` when it exits 0 or `<url>/<exit code>` otherwise, with the summary as the body. A
  monitor that hears no end (a killed process, a hung host) raises its own alert.
- RECOUP_METRICS_FILE is written in Prometheus' text format for node_exporter's textfile
  collector, atomically (a reader never sees half a file), at the end of every sync that got as
  far as loading its configuration: failures and a held lock (exit 75) included.

Every sync also notes how it ended in the outcome journal beside the warehouse, which the next
sync records in `raw.sync_outcomes` (`analytics.syncs`; see `pipelines/warehouse/outcomes.py`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
from prometheus_client import CollectorRegistry, Gauge, write_to_textfile
from prometheus_client.parser import text_string_to_metric_families

if TYPE_CHECKING:
    from pipelines.config import MonitorSettings
    from pipelines.summary import SyncSummary

log = logging.getLogger("recoup")

PING_TIMEOUT = 5.0  # seconds per ping: a slow monitor never holds the sync
LAST_SUCCESS = "recoup_sync_last_success_timestamp_seconds"


class Monitor:
    """The pings and the metrics file of one sync."""

    def __init__(
        self, settings: MonitorSettings, warehouse: Path | None = None, db: Path | None = None
    ) -> None:
        self.settings = settings
        self.warehouse = warehouse  # the file whose size the metrics report; None for a lake
        self.db = db  # the storage's file (a lake's working file): its folder keeps the outcome journal
        self.started = time.time()

    def start(self) -> None:
        """Pings `<url>/start`."""
        self._ping("/start", "")

    def end(self, code: int, summary: SyncSummary | None, lines: Sequence[str]) -> None:
        """Pings the end with `lines` as the body, writes the metrics file and notes the outcome."""
        if self.db is not None:
            from pipelines.warehouse import Paths, note_outcome  # loaded once the sync's modules are

            note_outcome(Paths(self.db).outcomes, self.outcome(code, summary, lines))
        self._ping("" if code == 0 else f"/{code}", "\n".join(lines)[:10_000])
        if self.settings.metrics_file is not None:
            try:
                self._write_metrics(self.settings.metrics_file, code, summary)
            except OSError as exc:
                log.warning("metrics: cannot write %s: %s", self.settings.metrics_file, exc.strerror)

    def outcome(self, code: int, summary: SyncSummary | None, lines: Sequence[str]) -> dict[str, Any]:
        """The sync's row of `raw.sync_outcomes` (all but `recorded_at`); `lines` name a failure."""
        started = datetime.fromtimestamp(self.started, UTC)
        row: dict[str, Any] = {"synced_at": started, "ended_at": datetime.now(UTC), "exit_code": code,
                               "published": summary is not None}  # fmt: skip
        if summary is None:  # it ended before publishing: its one line says why
            return {**row, "error": lines[0] if lines else None}
        fields = summary.fields()
        archive = summary.archive
        return {
            **row, **{name: fields[name] for name in ("accounts", "accounts_failed", "runs_new", "runs_updated",
                                                      "runs_refreshed", "runs_lost", "requests", "retries",
                                                      "details_pending")},
            "synced_at": summary.synced_at or started, "budget_seconds": summary.budget_seconds,
            "lists_seconds": round(summary.lists_seconds, 3),
            "archive": "off" if archive is None else "failed" if archive.error else "archived",
            "archive_error": archive.error if archive else None,
        }  # fmt: skip

    def _ping(self, suffix: str, body: str) -> None:
        url = self.settings.ping_url
        if not url:
            return
        try:
            httpx.post(url + suffix, content=body.encode(), timeout=PING_TIMEOUT).raise_for_status()
        except httpx.HTTPError as exc:  # the host only: the URL's path is its token
            reason = type(exc).__name__
            if isinstance(exc, httpx.HTTPStatusError):
                reason = f"HTTP {exc.response.status_code}"
            log.warning("ping: %s%s failed (%s); the sync goes on", urlsplit(url).hostname, suffix and " " + suffix,
                        reason)  # fmt: skip

    def _write_metrics(self, path: Path, code: int, summary: SyncSummary | None) -> None:
        now = time.time()
        registry = CollectorRegistry()

        def gauge(name: str, text: str, value: float) -> None:
            Gauge(name, text, registry=registry).set(value)

        gauge("recoup_sync_last_run_timestamp_seconds", "When the last sync ended (Unix time).", now)
        gauge(LAST_SUCCESS, "When the last sync that exited 0 ended (Unix time; 0: never).",
              now if code == 0 else _previous(path, LAST_SUCCESS))  # fmt: skip
        gauge(
            "recoup_sync_exit_code", "The last sync's exit code (0 ok, 1 partial, 2 config, 75 locked).", code
        )
        gauge("recoup_sync_duration_seconds", "How long the last sync took.", now - self.started)
        if summary is not None:
            fields = summary.fields()
            states = Gauge(
                "recoup_sync_accounts", "Accounts of the last sync, by state.", ["state"], registry=registry
            )
            states.labels("ok").set(len(summary.results) - len(summary.failed))
            states.labels("failed").set(fields["accounts_failed"])
            states.labels("unlisted").set(fields["accounts_unlisted"])
            runs = Gauge(
                "recoup_sync_runs", "Runs the last sync loaded, by kind.", ["kind"], registry=registry
            )
            for kind in ("new", "updated", "refreshed", "lost"):
                runs.labels(kind).set(fields[f"runs_{kind}"])
            gauge("recoup_sync_requests", "HTTP requests of the last sync.", fields["requests"])
            gauge("recoup_sync_retries", "Retried requests of the last sync.", fields["retries"])
            gauge("recoup_details_pending", "Finished runs still waiting for their details.",
                  fields["details_pending"])  # fmt: skip
        if self.warehouse is not None and self.warehouse.is_file():
            gauge(
                "recoup_warehouse_bytes",
                "Size of the published warehouse file.",
                self.warehouse.stat().st_size,
            )
        write_to_textfile(str(path), registry)


def _previous(path: Path, name: str) -> float:
    """A gauge's value in the file the last sync wrote; 0 when there is none."""
    try:
        text = path.read_text()
    except OSError:
        return 0.0
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name:
                    return float(sample.value)
    except ValueError:  # not a file this project wrote: start again
        return 0.0
    return 0.0
