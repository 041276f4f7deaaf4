"""`recoup alert`: cost spikes and daily budgets, for a cron line that mails when spend runs away.

It reads the published warehouse read-only (a file or a lake), like `status`, and judges one
complete UTC day, yesterday by default: today's spend is still growing. The SQL is in
`sql/alerts/cost.sql`; a spike is what `analytics.cost_anomalies` holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import duckdb

from pipelines.config import StorageSettings
from pipelines.lake import first_line
from pipelines.models import SQL_DIR
from pipelines.recoup.errors import ConfigError, NoWarehouse, RecoupError
from pipelines.storage.reader import describe, open_reader

DEFAULT_MULTIPLE = 3.0  # as analytics.cost_anomalies


class AlertError(ConfigError):
    """The warehouse cannot be judged: no models, or it cannot be read (exit 2)."""


@dataclass(frozen=True)
class CostAlert:
    """One account over its line on the judged day."""

    account_id: str
    total_cost_usd: Decimal
    trailing_median_usd: Decimal | None
    ratio: float | None
    spike: bool
    over_budget: bool

    def line(self, day: date, budget: Decimal | None) -> str:
        """`alert: account X: $12.34 on 2026-12-02 · 4.1x its 7-day median $3.01 · over the budget $10.00`."""
        parts = [f"alert: account {self.account_id}: ${self.total_cost_usd:,.2f} on {day.isoformat()}"]
        if self.spike and self.trailing_median_usd is not None:
            ratio = f"{self.ratio:.1f}x" if self.ratio is not None else "more than"
            parts.append(f"{ratio} its 7-day median ${self.trailing_median_usd:,.2f}")
        if self.over_budget and budget is not None:
            parts.append(f"over the daily budget ${budget:,.2f}")
        return " · ".join(parts)


def parse_day(text: str | None, today: date | None = None) -> date:
    """`YYYY-MM-DD`, or yesterday (UTC) when not given."""
    if not text:
        return (today or datetime.now(UTC).date()) - timedelta(days=1)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--day must be a date like 2026-12-02, got {text[:20]!r}") from None


def parse_money(text: str | None) -> Decimal | None:
    """A positive amount of US dollars (`250`, `99.50`); None when not given."""
    if text is None:
        return None
    try:
        amount = Decimal(text.strip().lstrip("$"))
    except ArithmeticError:
        amount = Decimal(-1)
    if not amount.is_finite() or amount <= 0:
        raise ConfigError(f"--daily-budget must be a positive amount of US dollars, got {text[:20]!r}")
    return amount


def cost_alerts(
    settings: StorageSettings, day: date, multiple: float = DEFAULT_MULTIPLE, budget: Decimal | None = None
) -> list[CostAlert]:
    """The accounts whose cost on `day` is a spike (over `multiple` x median) or over `budget`.

    Raises:
        NoWarehouse: there is none yet.
        AlertError: it has no models, or cannot be read.
    """
    if multiple <= 1:
        raise ConfigError(f"--multiple must be above 1, got {multiple:g}")
    sql = (SQL_DIR / "alerts" / "cost.sql").read_text()
    try:
        with open_reader(settings) as con:
            con.execute(f"set variable anomaly_multiple = {float(multiple)!r}")
            rows = con.execute(sql, [day, budget]).fetchall()
    except NoWarehouse:
        raise
    except duckdb.CatalogException:
        raise AlertError(f"{describe(settings)} has no analytics models: run `recoup models`") from None
    except RecoupError as exc:
        raise AlertError(str(exc)) from None
    except duckdb.Error as exc:
        raise AlertError(f"{describe(settings)} cannot be read: {first_line(exc)}") from None
    return [CostAlert(*row) for row in rows]
