"""What each `recoup` subcommand does, given its parsed arguments and the loaded configuration.

A command returns its exit code when it finished its work (0, or 1 when part of it failed) and
raises when it could not: `pipelines.cli` turns every exception into one line and an exit code
by one table. Each command imports what it needs when it runs, so `--help` answers at once.
"""

from __future__ import annotations

import argparse
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import orjson

from pipelines import exit_codes, logs
from pipelines.recoup.errors import ConfigError

if TYPE_CHECKING:
    from pipelines.config import Config
    from pipelines.summary import SyncSummary

log = logging.getLogger("recoup")
result = logging.getLogger(logs.RESULT_LOGGER)


def host(base_url: str) -> str:
    """The host (and port) of a URL, without any user:password@ part."""
    return urlsplit(base_url).netloc.rpartition("@")[2] or base_url[:80]


def sync(args: argparse.Namespace, config: Config) -> int:
    """One sync; its summary's lines, and the exit code cron relies on.

    The signals are handled from before the sync's modules load until the summary is out.
    """
    from pipelines.cli.codes import exit_code_of, one_line
    from pipelines.cli.monitor import Monitor
    from pipelines.stopping import stop_on_signals

    monitor = Monitor(config.monitor, None if config.lake else config.db, config.storage.db)
    stop, working = threading.Event(), threading.Event()
    with stop_on_signals(stop, working):
        monitor.start()
        try:
            from pipelines.sync import run_sync

            summary = run_sync(config, stop=stop, working=working)
        except Exception as exc:
            monitor.end(exit_code_of(exc), None, [f"sync: {one_line(exc, config.secrets())}"])
            raise
        code = _report_sync(summary, config)
        monitor.end(code, summary, summary.lines())
        return code


def _report_sync(summary: SyncSummary, config: Config) -> int:
    api = config.require_api()
    if summary.unreachable:
        log.error("sync: cannot reach %s (RECOUP_BASE_URL): no account could be listed: %s",
                  host(api.base_url), summary.failed[0].error)  # fmt: skip
        return exit_codes.CONFIG
    entries = summary.entries()
    for level, line in entries[:-1]:
        result.log(level, line)
    level, totals = entries[-1]
    result.log(level, totals, extra={"fields": summary.fields()})  # JSON lines carry the numbers
    result.info("warehouse: %s", summary_where(config))
    if summary.nothing_listed:
        log.error("sync: no account could be listed from %s (RECOUP_BASE_URL)", host(api.base_url))
        return exit_codes.CONFIG
    return summary.exit_code


def summary_where(config: Config) -> str:
    """The warehouse a command worked on, for its closing line (a lake without its password)."""
    from pipelines.storage.reader import describe

    return describe(config.storage)


def status(args: argparse.Namespace, config: Config) -> int:
    """The freshness of the published warehouse, a file or a lake; 1 when --max-age is exceeded."""
    from pipelines.config.values import parse_duration
    from pipelines.status import read_status

    max_age = parse_duration(args.max_age) if args.max_age else None
    state = read_status(config.storage, configured=config.accounts)
    if args.json:  # one document for a monitoring system
        print(orjson.dumps(state.to_dict(max_age)).decode())
    else:
        for line in state.lines(max_age, problems_only=args.quiet):
            result.info("%s", line)
    return (
        exit_codes.OK if max_age is None or state.verdict(max_age) in ("ok", "failed") else exit_codes.PARTIAL
    )


def shell(args: argparse.Namespace, config: Config) -> int:
    """The DuckDB CLI on the published warehouse or the lake, read-only; its own exit code."""
    from pipelines.cli.shell import run_shell

    return run_shell(config, ["-c", args.sql] if args.sql else [])


def alert(args: argparse.Namespace, config: Config) -> int:
    """Cost spikes and a daily budget on one complete UTC day; 1 when an account is over."""
    from pipelines.alerts import cost_alerts, parse_day, parse_money

    day, budget = parse_day(args.day), parse_money(args.daily_budget)
    over = cost_alerts(config.storage, day, args.multiple, budget)
    for item in over:
        result.info("%s", item.line(day, budget))
    rule = f"{args.multiple:g}x the 7-day median" + (f" or ${budget:,.2f}" if budget is not None else "")
    result.info("alert: %d account(s) over %s on %s", len(over), rule, day.isoformat())
    return exit_codes.PARTIAL if over else exit_codes.OK


def models(args: argparse.Namespace, config: Config) -> int:
    """Every model of sql/ rebuilt and published, under the sync lock."""
    from pipelines.storage import open_storage

    built = open_storage(config.storage).rebuild_models()
    result.info("models: built %d models in %s", built, summary_where(config))
    return exit_codes.OK


def report(args: argparse.Namespace, config: Config) -> int:
    """The cost report into RECOUP_REPORTS_DIR; one dated line per file it wrote."""
    from pipelines.report import write_report

    for path in write_report(config.storage, config.report):
        result.info("report: wrote %s", path)
    return exit_codes.OK


def maintain(args: argparse.Namespace, config: Config) -> int:
    """The lake's housekeeping: flush, merge, expire, clean up."""
    from pipelines.lake.maintain import maintain as run

    if config.lake is None:
        raise ConfigError("maintain works on a lake: RECOUP_LAKE is not set (a file warehouse needs none)")
    for name, seconds in run(config.lake):
        result.info("maintain: %s: %.1f s", name, seconds)
    result.info("maintain: %s: snapshots older than %d days expired, files unused for %d minutes deleted",
                summary_where(config), config.lake.keep_days, config.lake.grace_minutes)  # fmt: skip
    return exit_codes.OK


def lake(args: argparse.Namespace, config: Config) -> int:
    """`recoup lake migrate [--from FILE]` and `recoup lake install-extensions`."""
    from pipelines.lake.commands import install_extensions, migrate
    from pipelines.recoup.settings import RAW_DATASET

    if args.lake_action == "install-extensions":
        result.info("extensions: ducklake, postgres_scanner, httpfs in %s", install_extensions())
        return exit_codes.OK
    if config.lake is None:
        raise ConfigError("RECOUP_LAKE is not set: it names the lake to migrate into")
    source = args.source or config.db
    for table, rows in migrate(config.lake, source).items():
        result.info("%s.%s: %d rows", RAW_DATASET, table, rows)
    result.info("migrate: %s is now in %s; models built", source, summary_where(config))
    return exit_codes.OK


def restore(args: argparse.Namespace, config: Config) -> int:
    """The warehouse rebuilt from RECOUP_ARCHIVE, as of its newest sync or `--at`."""
    from pipelines.archive.moments import parse_moment
    from pipelines.archive.restore import restore as run
    from pipelines.config.values import iso

    if not config.archive.target:
        raise ConfigError("RECOUP_ARCHIVE is not set: it names the archive (a folder or s3://bucket/prefix)")
    moment = parse_moment(args.at) if args.at else None
    target = Path(args.to).expanduser() if args.to else config.db
    done = run(config.archive, target.resolve(), moment, args.force)
    result.info("restore: %s rebuilt as of the sync of %s (1 snapshot and %d change set(s), %.1f s)",
                done.path, iso(done.point.through_at), len(done.chain) - 1, done.seconds)  # fmt: skip
    return exit_codes.OK


def archive(args: argparse.Namespace, config: Config) -> int:
    """`recoup archive status`: the newest archived sync, its age, what is not archived yet."""
    from pipelines.archive.status import read_archive_status
    from pipelines.config.values import parse_duration

    if not config.archive.target:
        raise ConfigError("RECOUP_ARCHIVE is not set: it names the archive (a folder or s3://bucket/prefix)")
    limit = parse_duration(args.max_age) if args.max_age else None
    state = read_archive_status(config.archive, config.db)
    if args.json:
        print(orjson.dumps(state.to_dict(limit)).decode())
    else:
        for line in state.lines(limit):
            result.info("%s", line)
    return exit_codes.PARTIAL if limit is not None and state.stale(limit) else exit_codes.OK
