"""`recoup`: the one command line, and the one table of its exit codes.

It parses, loads the configuration once, runs a subcommand and turns what went wrong into one
line and an exit code by `exit_code_of`:

| code | meaning (every command) |
|---|---|
| 0 | done |
| 1 | part of the work failed (an account, the models, the archive) or a check failed |
| 2 | bad configuration, bad key, no warehouse, nothing could be listed: nothing written |
| 75 | another sync or maintenance holds the lock: nothing written |
| 130 | interrupted: the last published warehouse stands |
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines import defaults, exit_codes, logs
from pipelines.cli import commands
from pipelines.cli.codes import exit_code_of, one_line
from pipelines.recoup.errors import ErrorKind, RecoupError

if TYPE_CHECKING:
    from pipelines.config import Config

log = logging.getLogger("recoup")

Command = Callable[[argparse.Namespace, "Config"], int]


def _explain(command: str, exc: BaseException, config: Config | None) -> str:
    """What a failed command prints: the error, and for a sync what it means for the warehouse."""
    import duckdb

    from pipelines.recoup.errors import NothingListed

    text = one_line(exc, config.secrets() if config else [])
    if command == "sync" and config and config.api:
        if isinstance(exc, NothingListed) and exc.kind is ErrorKind.TRANSPORT:
            return f"sync: cannot reach {commands.host(config.api.base_url)} (RECOUP_BASE_URL): {text}"
        if isinstance(exc, duckdb.Error):  # e.g. the disk filled at the checkpoint
            return f"sync: writing the working copy failed, the published warehouse is as it was: {text}"
    return f"{command}: {text}"


def run(args: argparse.Namespace) -> int:
    """Loads the configuration and runs the subcommand; every failure is one line and its exit code."""
    import duckdb

    from pipelines.config import load

    command, config = args.command, None
    try:
        config = load(os.environ)
        if command == "sync":
            config.require_api()
        return int(args.run_command(args, config))
    except (RecoupError, duckdb.Error, OSError, ValueError) as exc:
        log.error("%s", _explain(command, exc, config))
        return exit_code_of(exc)


_SYNC_SETTINGS = (
    f"Settings (environment, see docs/configuration.md): RECOUP_API_KEY (required); RECOUP_DB (default {defaults.DB}); "
    "RECOUP_ACCOUNTS (default: the key's own account); "
    f"RECOUP_MAX_CONCURRENCY (default {defaults.MAX_CONCURRENCY}); "
    f"RECOUP_MAX_RPM (default {defaults.MAX_RPM}; 0 = no cap); "
    f"RECOUP_RETRY_ATTEMPTS (default {defaults.RETRY_ATTEMPTS}); "
    f"RECOUP_SYNC_SECONDS (default {defaults.SYNC_SECONDS}; 0 = none); "
    f"RECOUP_DETAILS (default {defaults.DETAILS}: all, failed or none)."
)
_CODES = "exit 0 done, 1 part failed, 2 bad config or no warehouse, 75 lock held, 130 interrupted"


def _emulator(args: argparse.Namespace) -> int:
    """`recoup emulator`: serves the Recoup API emulator, with the emulator's own options."""
    from pipelines.emulator.__main__ import main

    return main(args.options)


def _demo(args: argparse.Namespace) -> int:
    """`recoup demo`: the zero-config tour in a folder of its own; it reads no warehouse setting."""
    from pipelines.config import database_path, demo_folder
    from pipelines.demo import run_demo

    return run_demo(demo_folder(os.environ), database_path(os.environ))


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
        epilog=f"Configuration comes from RECOUP_* environment variables (docs/configuration.md). {_CODES}.",
    )  # fmt: skip
    subs = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, action: Command | None, what: str, epilog: str | None = None
    ) -> argparse.ArgumentParser:
        sub = subs.add_parser(name, parents=[common], help=what, description=what, epilog=epilog or _CODES)
        sub.set_defaults(run_command=action)
        return sub

    add("sync", commands.sync, "one sync of every configured account into RECOUP_DB "
        "(exit 0 ok, 1 an account failed, 2 bad config/key or nothing listed, 75 lock held, 130 interrupted)",
        _SYNC_SETTINGS)  # fmt: skip
    check = add(
        "status", commands.status, "per account: last good sync and its age, failures, gaps, details backlog"
    )
    check.add_argument("--max-age", metavar="DURATION",
                       help="exit 1 when an account's last good sync is older (90s, 15m, 2h, 1d)")  # fmt: skip
    check.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    sql = add(
        "shell",
        commands.shell,
        "the warehouse (or the lake) read-only in the DuckDB CLI: it locks no one out",
    )
    sql.add_argument(
        "-c", "--command", dest="sql", metavar="SQL", help="run SQL and exit instead of a session"
    )
    spend = add(
        "alert",
        commands.alert,
        "exit 1 when an account's cost on a complete UTC day (yesterday) is a spike or over a budget",
    )
    spend.add_argument("--day", metavar="YYYY-MM-DD", help="the UTC day to judge (default: yesterday)")
    spend.add_argument(
        "--multiple",
        type=float,
        default=3.0,
        metavar="N",
        help="a spike is more than N times the account's 7-day median (default 3)",
    )
    spend.add_argument("--daily-budget", metavar="USD", help="also alert when an account's day costs more")
    back = add(
        "restore",
        commands.restore,
        "rebuild RECOUP_DB from RECOUP_ARCHIVE (exit 2 when it exists, unless --force)",
    )
    back.add_argument("--at", metavar="TIME",
                      help="the state as of the newest sync at or before TIME (2026-11-20T12:00Z, 2026-11-20, 2h)")  # fmt: skip
    back.add_argument("--force", action="store_true", help="replace an existing warehouse")
    back.add_argument("--to", metavar="PATH", help="rebuild this file instead of RECOUP_DB")
    archive = add("archive", commands.archive, "the archive (RECOUP_ARCHIVE): `recoup archive status`")
    archive.add_argument(
        "archive_action",
        metavar="status",
        choices=("status",),
        help="newest archived sync, its age, what is not archived yet",
    )
    archive.add_argument("--max-age", metavar="DURATION",
                         help="exit 1 when the newest archived sync is older (90s, 15m, 2h, 1d)")  # fmt: skip
    archive.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    add(
        "models",
        commands.models,
        "rebuild the SQL models of sql/ in the warehouse (waits up to 60 s for a sync)",
    )
    add(
        "report",
        commands.report,
        f"write the cost report into RECOUP_REPORTS_DIR (default {defaults.REPORTS_DIR}/)",
    )
    add(
        "maintain",
        commands.maintain,
        "the lake's housekeeping: flush, merge small files, expire old snapshots",
    )
    lake = add("lake", commands.lake, "the lake's commands: migrate a file warehouse, install the extensions")
    lake.add_argument("lake_action", metavar="ACTION", choices=("migrate", "install-extensions"),
                      help="migrate: copy RECOUP_DB (or --from) into an empty RECOUP_LAKE; "
                      "install-extensions: DuckDB's ducklake, postgres and httpfs from their packages")  # fmt: skip
    lake.add_argument("--from", dest="source", type=lambda p: Path(p).expanduser(),
                      metavar="FILE", help="the DuckDB file to migrate (default: RECOUP_DB)")  # fmt: skip
    tour = f"zero-config tour in {defaults.DEMO_DIR}/ (or RECOUP_DEMO_DIR): emulator, two syncs, the report"
    add("demo", None, tour).set_defaults(direct=_demo)
    # The emulator parses its own options; `recoup emulator --help` shows them.
    subs.add_parser("emulator", add_help=False, help="serve the Recoup API emulator on 127.0.0.1 "
                    "(options: recoup emulator --help)").set_defaults(run_command=None, direct=_emulator)  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> int:
    """The `recoup` console script: parses the arguments, sets up logging, runs the subcommand.

    Returns:
        The process's exit code (the table above).
    """
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "emulator":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.options = rest  # the emulator's own
    for name, default in (("quiet", False), ("verbose", False), ("log_format", "text")):
        vars(args).setdefault(name, default)
    level = logging.WARNING if args.quiet else logging.DEBUG if args.verbose else logging.INFO
    logs.configure(level, args.log_format)
    try:
        return int(args.direct(args)) if args.run_command is None else run(args)
    except KeyboardInterrupt:
        # During a sync's fetching and loading the sync itself handles SIGINT (see stopping.py);
        # this is an interrupt before or around it, e.g. while waiting for the lock.
        log.error("%s: interrupted; the published warehouse is as the last sync left it", args.command)
        return exit_codes.ABORTED
    except BrokenPipeError:  # the reader went away (`recoup status | head`): stop writing, quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return exit_codes.PARTIAL
