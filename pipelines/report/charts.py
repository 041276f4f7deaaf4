"""The report's charts: inline SVG bar and line charts by day, and HTML bars, from its tables."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date
from typing import Any

from pipelines.report.data import Report
from pipelines.report.formats import FORMATTERS, esc

PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
           "#9c755f", "#bab0ac")  # fmt: skip
STATUS_COLOURS = {"succeeded": "#59a14f", "failed": "#e15759", "canceled": "#bab0ac", "expired": "#9c755f",
                  "queued": "#a0cbe8", "running": "#4e79a7", "waiting": "#76b7b2", "unknown": "#b07aa1"}  # fmt: skip
WIDTH, LEFT, TOP, PLOT_H = 760, 104, 12, 220  # SVG units; ticks on both axes
Series = dict[str, dict[date, Any]]  # name: {day: value}


def ticks(peak: float) -> list[float]:
    """Round steps from 0 past the peak: 1, 2, 2.5 or 5 times a power of ten."""
    if peak <= 0:
        return [0.0, 1.0]
    rough = peak / 4
    power = 10 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= rough)
    return [i * step for i in range(math.ceil(peak / step - 1e-9) + 1)]


def tick_label(value: float, fmt: str, step: float) -> str:
    """A tick with as many decimals as its step needs ($0.025, 2.5 min, 40)."""
    decimals = next(d for d in range(8) if abs(step * 10**d - round(step * 10**d)) < 1e-6)
    if fmt == "usd":
        return f"${value:,.{0 if decimals == 0 else max(2, decimals)}f}"
    number = f"{value:,.{decimals}f}"
    return {"minutes": f"{number} min", "seconds": f"{number} s"}.get(fmt, number)


def _axes(days: list[date], peak: float, fmt: str) -> tuple[list[str], Callable[[float], float], float]:
    """Grid lines, y tick labels and x day labels; returns them, the y scale and the slot width."""
    unit = 60 if fmt == "seconds" and peak >= 120 else 1  # ticks at round minutes, not 200 s
    marks = [t * unit for t in ticks(peak / unit)]
    fmt = "minutes" if unit == 60 else fmt
    top, slot = marks[-1] or 1, (WIDTH - LEFT - 10) / max(1, len(days))

    def y(value: float) -> float:
        return TOP + PLOT_H * (1 - value / top)

    step = (marks[1] - marks[0]) / unit
    parts = [f'<line x1="{LEFT}" x2="{WIDTH - 10}" y1="{y(t):.1f}" y2="{y(t):.1f}" class="grid"/>'
             f'<text x="{LEFT - 6}" y="{y(t) + 4:.1f}" text-anchor="end" class="tick">{tick_label(t / unit, fmt, step)}</text>'
             for t in marks]  # fmt: skip
    every = max(1, math.ceil(len(days) / 7))
    for i, day in enumerate(days):
        if i % every == 0:
            x = LEFT + (i + 0.5) * slot
            parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP + PLOT_H}" y2="{TOP + PLOT_H + 4}" class="axis"/>'
                         f'<text x="{x:.1f}" y="{TOP + PLOT_H + 18}" text-anchor="middle" class="tick">{day:%b %d}</text>')  # fmt: skip
    return parts, y, slot


def _figure(
    title: str, parts: list[str], legend: list[tuple[str, str]], height: int = TOP + PLOT_H + 26
) -> str:
    keys = "".join(f'<span><i style="background:{c}"></i>{esc(n)}</span>' for n, c in legend)
    return (f'<figure><figcaption>{esc(title)}</figcaption><div class="chart"><svg viewBox="0 0 {WIDTH} {height}" '
            f'role="img" aria-label="{esc(title)}">{"".join(parts)}</svg></div>'
            f'{f"<div class=legend>{keys}</div>" if keys else ""}</figure>')  # fmt: skip


def stacked_bars(title: str, days: list[date], series: Series, fmt: str,
                 colours: dict[str, str] | None = None) -> str:  # fmt: skip
    """One bar per day, one coloured segment per series."""
    colour = {name: (colours or {}).get(name, PALETTE[i % len(PALETTE)]) for i, name in enumerate(series)}
    peak = max((sum(float(s.get(d) or 0) for s in series.values()) for d in days), default=0)
    parts, y, slot = _axes(days, peak, fmt)
    for i, day in enumerate(days):
        base = 0.0
        for name, values in series.items():
            value = float(values.get(day) or 0)
            if value > 0:
                parts.append(f'<rect x="{LEFT + i * slot + slot * 0.1:.1f}" y="{y(base + value):.1f}" '
                             f'width="{slot * 0.8:.1f}" height="{y(base) - y(base + value):.1f}" fill="{colour[name]}">'
                             f'<title>{day} {esc(name)}: {FORMATTERS[fmt](values[day])}</title></rect>')  # fmt: skip
            base += value
    return _figure(title, parts, list(colour.items()))


def lines(title: str, days: list[date], series: Series, fmt: str) -> str:
    """One line per series across the days; a day without a value breaks the line."""
    peak = max((float(v) for s in series.values() for v in s.values() if v is not None), default=0)
    parts, y, slot = _axes(days, peak, fmt)
    legend = []
    for j, (name, values) in enumerate(series.items()):
        colour = PALETTE[j % len(PALETTE)]
        path, pen = [], "M"
        for i, day in enumerate(days):
            if values.get(day) is None:
                pen = "M"
                continue
            x = LEFT + (i + 0.5) * slot
            path.append(f"{pen}{x:.1f},{y(float(values[day])):.1f}")
            parts.append(f'<circle cx="{x:.1f}" cy="{y(float(values[day])):.1f}" r="2.5" fill="{colour}">'
                         f'<title>{day} {esc(name)}: {FORMATTERS[fmt](values[day])}</title></circle>')  # fmt: skip
            pen = "L"
        parts.append(f'<path d="{" ".join(path)}" fill="none" stroke="{colour}" stroke-width="1.8"/>')
        legend.append((name, colour))
    return _figure(title, parts, legend)


def bars(title: str, rows: list[tuple[str, Any]], fmt: str, of: int) -> str:
    """Horizontal bars in HTML, a value on each; the title says when only the top ones are drawn."""
    rows = rows[:12]
    top = max((float(v) for _, v in rows if v), default=0) or 1
    items = "".join(
        f'<div class="bar"><span class="name" title="{esc(label)}">{esc(label)}</span>'
        f'<span class="track"><i style="width:{100 * float(value or 0) / top:.1f}%"></i></span>'
        f'<span class="num">{FORMATTERS[fmt](value) if value is not None else "–"}</span></div>'
        for label, value in rows
    )
    shown = f" (top {len(rows)} of {of})" if of > len(rows) else ""
    return f'<figure><figcaption>{esc(title + shown)}</figcaption><div class="bars">{items}</div></figure>'


def _sum_by_day(records: list[dict[str, Any]], key: str, value: str, keep: list[str]) -> Series:
    """Sums `value` per day into one series per kept `key`; the other keys into 'others'."""
    series: Series = {name: {} for name in keep}
    for row in records:
        bucket = series.setdefault(row[key] if row[key] in keep else "others", {})
        bucket[row["day"]] = (bucket.get(row["day"]) or 0) + (row[value] or 0)
    return series


def _top(totals: dict[str, Any], count: int) -> list[str]:
    """The `count` names with the largest totals, ties by name."""
    return sorted(totals, key=lambda name: (-totals[name], name))[:count]


def report_charts(report: Report, days: list[date]) -> str:
    """Every chart of the page, in order: by day first, then the breakdowns."""
    t = report.tables
    daily_cost = t["daily_cost"].records()
    cost_of: dict[str, Any] = {}
    for row in daily_cost:
        cost_of[row["account_id"]] = cost_of.get(row["account_id"], 0) + (row["total_cost_usd"] or 0)
    top_accounts = sorted(cost_of, key=lambda a: -cost_of[a])[:9]  # ties keep the table's order
    by_status = t["daily_runs_by_status"].records()
    statuses = [s for s in STATUS_COLOURS if any(r["status_group"] == s for r in by_status)]
    health = t["daily_task_health"].records()
    failures: dict[str, int] = {}
    volume: dict[str, int] = {}
    for row in health:
        task = row["task_identifier"]
        failures[task] = failures.get(task, 0) + row["failed_run_count"]
        volume[task] = volume.get(task, 0) + row["run_count"]
    failing = [task for task in _top(failures, len(failures)) if failures[task]][:6]
    busiest = _top(volume, 6)
    failed_series: Series = {task: {} for task in failing}
    speed_series: Series = {task: {} for task in busiest}
    for row in health:
        if row["task_identifier"] in failed_series:
            failed_series[row["task_identifier"]][row["day"]] = row["failed_run_count"]
        if row["task_identifier"] in speed_series:
            speed_series[row["task_identifier"]][row["day"]] = row["duration_p95_s"]
    by_task, by_env = t["cost_by_task"].records(), t["cost_by_env"].records()
    reliability = t["reliability_by_task"].records()
    return "".join([
        stacked_bars("Daily cost by account (USD)", days,
                     {report.account_names.get(a, a): v for a, v in
                      _sum_by_day(daily_cost, "account_id", "total_cost_usd", top_accounts).items()}, "usd"),
        stacked_bars("Runs per day by status", days, _sum_by_day(by_status, "status_group", "run_count", statuses),
                     "int", STATUS_COLOURS),
        lines(f"Failed runs per day, the {len(failing)} tasks with most failures", days, failed_series, "int")
        if failing else "<p class=note>No failed runs in the period.</p>",
        lines(f"Duration p95 per day, the {len(busiest)} busiest tasks", days, speed_series, "seconds"),
        bars("Cost by task (USD)", [(r["task_identifier"], r["total_cost_usd"]) for r in by_task], "usd", len(by_task)),
        bars("Cost by environment (USD)", [(r["env_name"] or "(none)", r["total_cost_usd"]) for r in by_env], "usd",
             len(by_env)),
        bars("Failure rate by task", [(r["task_identifier"], r["failure_rate"]) for r in reliability], "percent",
             len(reliability)),
    ])  # fmt: skip
