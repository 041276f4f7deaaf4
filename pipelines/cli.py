"""`recoup`: the one command line; it parses, wires the modules together and decides exit codes.

Exit codes of `recoup sync` (cron relies on them): 0 every account listed and loaded; 1 at least
one account failed (the others loaded); 2 bad configuration, bad key, or nothing could be listed;
75 another sync holds the lock; 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from urllib.parse import urlsplit

import orjson

from pipelines import defaults, logs
from pipelines.stopping import EXIT_ABORTED

log = logging.getLogger("recoup")
result = logging.getLogger(logs.RESULT_LOGGER)


def _host(base_url: str) -> str:
    """The host (and port) of a URL, without any user:password@ part."""
    return urlsplit(base_url).netloc.rpartition("@")[2] or base_url[:80]


# Each command imports what it needs when it runs: `--help` answers at once, without loading dlt.


def sync(args: argparse.Namespace) -> int:
    """One sync; maps what went wrong to the exit codes cron relies on."""
    import duckdb

    from pipelines.archive import archive_settings
    from pipelines.config import load_settings
    from pipelines.recoup.errors import ApiError, AuthError, ConfigError, LockHeld, RecoupError
    from pipelines.recoup_pipeline import EXIT_CONFIG, EXIT_LOCKED, EXIT_PARTIAL, run_sync

    try:
        settings = load_settings()
        summary = run_sync(settings, archive=archive_settings(os.environ))
    except LockHeld as exc:
        log.error("sync: %s", exc)
        return EXIT_LOCKED
    except (ConfigError, AuthError) as exc:
        log.error("sync: %s", exc)
        return EXIT_CONFIG
    except ApiError as exc:  # the key's own account could not be looked up: nothing was listed
        if "transport error" in str(exc):
            log.error("sync: cannot reach %s (RECOUP_BASE_URL): %s", _host(settings.base_url), exc)
        else:
            log.error("sync: %s", exc)
        return EXIT_CONFIG
    except RecoupError as exc:
        log.error("sync: %s", exc)
        return EXIT_PARTIAL
    except duckdb.Error as exc:  # e.g. the disk filled at the checkpoint; RECOUP_DB is left untouched
        log.error("sync: writing the working copy failed, the published warehouse is as it was: %s",
                  str(exc).splitlines()[0][:300])  # fmt: skip
        return EXIT_PARTIAL
    except OSError as exc:  # e.g. the disk is full; the published warehouse is left untouched
        log.error("sync: %s (%s)", exc.strerror or exc, exc.filename or "while writing the working copy")
        return EXIT_PARTIAL
    if summary.unreachable:
        log.error("sync: cannot reach %s (RECOUP_BASE_URL): no account could be listed: %s",
                  _host(settings.base_url), summary.failed[0].error)  # fmt: skip
        return EXIT_CONFIG
    for line in summary.lines():
        result.info(line)
    result.info("warehouse: %s", settings.db)
    if summary.nothing_listed:
        log.error("sync: no account could be listed from %s (RECOUP_BASE_URL)", _host(settings.base_url))
        return EXIT_CONFIG
    return summary.exit_code


def status(args: argparse.Namespace) -> int:
    """The freshness of the published warehouse; 1 when --max-age is exceeded."""
    from pipelines.config import database_path
    from pipelines.status import StatusError, parse_duration, read_status

    try:
        max_age = parse_duration(args.max_age) if args.max_age else None
        state = read_status(database_path())
    except (ValueError, StatusError) as exc:
        log.error("status: %s", exc)
        return 2
    if args.json:
        print(orjson.dumps(state.to_dict(max_age)).decode())
    else:
        print("\n".join(state.lines(max_age, problems_only=args.quiet)))
    healthy = bool(state.accounts) and not (max_age and state.stale(max_age))
    return 0 if max_age is None or healthy else 1


def restore(args: argparse.Namespace) -> int:
    """`recoup restore`: rebuilds the warehouse from RECOUP_ARCHIVE."""
    from pipelines.archive.commands import restore_command

    return restore_command(os.environ, args.at, args.force, args.to)


def archive_status(args: argparse.Namespace) -> int:
    """`recoup archive status`: the archive's newest sync and what it does not hold yet."""
    from pipelines.archive.commands import status_command

    return status_command(os.environ, args.max_age, args.json)


def models(args: argparse.Namespace) -> int:
    """`recoup models`: rebuilds the SQL models of sql/ in the warehouse."""
    from pipelines.models import main

    return main()


def report(args: argparse.Namespace) -> int:
    """`recoup report`: writes the cost report into RECOUP_REPORTS_DIR."""
    from pipelines.report import main

    return main()


def demo(args: argparse.Namespace) -> int:
    """`recoup demo`: the zero-config tour in a folder of its own."""
    from pipelines.demo import main

    return main()


def emulator(args: argparse.Namespace) -> int:
    """`recoup emulator`: serves the Recoup API emulator, with the emulator's own options."""
    from pipelines.emulator.__main__ import main

    return main(args.options)


_SYNC_SETTINGS = (
    f"Settings (environment, see README): RECOUP_API_KEY (required); RECOUP_DB (default {defaults.DB}); "
    "RECOUP_ACCOUNTS (default: the key's own account); "
    f"RECOUP_MAX_CONCURRENCY (default {defaults.MAX_CONCURRENCY}); "
    f"RECOUP_MAX_RPM (default {defaults.MAX_RPM}; 0 = no cap); "
    f"RECOUP_RETRY_ATTEMPTS (default {defaults.RETRY_ATTEMPTS}); "
    f"RECOUP_SYNC_SECONDS (default {defaults.SYNC_SECONDS}; 0 = none); "
    f"RECOUP_DETAILS (default {defaults.DETAILS}: all, failed or none)."
)


def _parser() -> argparse.ArgumentParser:
    # Global options are accepted before or after the subcommand; SUPPRESS keeps a subcommand
    # from resetting one given before it, so their defaults are filled in after parsing.
    common = argparse.ArgumentParser(add_help=False)
    noise = common.add_mutually_exclusive_group()
    noise.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                       help="only warnings, errors and results (status: only accounts with a problem)")  # fmt: skip
    noise.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                       help="also debug messages and every HTTP request")  # fmt: skip
    common.add_argument("--log-format", choices=("text", "json"), default=argparse.SUPPRESS,
                        help="text (default): an ISO-8601 UTC time first; json: one object per line")  # fmt: skip
    parser = argparse.ArgumentParser(
        prog="recoup", parents=[common], description="Copies Recoup task runs into a DuckDB warehouse.",
        epilog="Configuration comes from RECOUP_* environment variables (see README).",
    )  # fmt: skip
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, run: Callable[[argparse.Namespace], int], what: str, epilog: str | None = None
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=what, description=what, epilog=epilog)
        sub.set_defaults(run=run)
        return sub

    add("sync", sync, "one sync of every configured account into RECOUP_DB "
        "(exit 0 ok, 1 an account failed, 2 bad config/key or nothing listed, 75 lock held, 130 interrupted)",
        _SYNC_SETTINGS)  # fmt: skip
    check = add("status", status, "per account: last good sync and its age, failures, gaps, details backlog")
    check.add_argument("--max-age", metavar="DURATION",
                       help="exit 1 when an account's last good sync is older (90s, 15m, 2h, 1d)")  # fmt: skip
    check.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    back = add(
        "restore", restore, "rebuild RECOUP_DB from RECOUP_ARCHIVE (exit 2 when it exists, unless --force)"
    )
    back.add_argument("--at", metavar="TIME",
                      help="the state as of the newest sync at or before TIME (2026-11-20T12:00Z, 2026-11-20, 2h)")  # fmt: skip
    back.add_argument("--force", action="store_true", help="replace an existing warehouse")
    back.add_argument("--to", metavar="PATH", help="rebuild this file instead of RECOUP_DB")
    archive = add("archive", archive_status, "the archive (RECOUP_ARCHIVE): `recoup archive status`")
    archive.add_argument(
        "action", choices=("status",), help="status: newest archived sync, its age, what is not archived yet"
    )
    archive.add_argument("--max-age", metavar="DURATION",
                         help="exit 1 when the newest archived sync is older (90s, 15m, 2h, 1d)")  # fmt: skip
    archive.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    add("models", models, "rebuild the SQL models of sql/ in RECOUP_DB")
    add("report", report, f"write the cost report into RECOUP_REPORTS_DIR (default {defaults.REPORTS_DIR}/)")
    tour = f"zero-config tour in {defaults.DEMO_DIR}/ (or RECOUP_DEMO_DIR): emulator, two syncs, the report"
    add("demo", demo, tour)
    # The emulator parses its own options; `recoup emulator --help` shows them.
    commands.add_parser("emulator", add_help=False, help="serve the Recoup API emulator on 127.0.0.1 "
                        "(options: recoup emulator --help)").set_defaults(run=emulator)  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> int:
    """The `recoup` console script: parses the arguments, sets up logging, runs the subcommand.

    Returns:
        The process's exit code (see README for `sync`'s).
    """
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    if rest and args.run is not emulator:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.options = rest  # the emulator's own
    for name, default in (("quiet", False), ("verbose", False), ("log_format", "text")):
        vars(args).setdefault(name, default)
    level = logging.WARNING if args.quiet else logging.DEBUG if args.verbose else logging.INFO
    logs.configure(level, args.log_format)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        # During a sync's fetching and loading the sync itself handles SIGINT (see stopping.py);
        # this is an interrupt before or around it, e.g. while waiting for the lock.
        log.error("%s: interrupted; the published warehouse is as the last sync left it", args.command)
        return EXIT_ABORTED
    except BrokenPipeError:  # the reader went away (`recoup status | head`): stop writing, quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
