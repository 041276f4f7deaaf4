"""A throwaway PostgreSQL cluster on 127.0.0.1 for a DuckLake catalog.

The lake tests and the benchmark start one of their own, never touching a server of the machine.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg

from pipelines.lake import READER_GRANTS


class PostgresMissing(RuntimeError):
    """PostgreSQL cannot be run here (not installed, or no user to run it as)."""


PG_OWNER, PG_READER, PG_PASSWORD = "recoup", "recoup_reader", "recoup-test-password"


class PostgresCluster:
    """A throwaway PostgreSQL cluster on 127.0.0.1, run by an unprivileged user when we are root."""

    def __init__(self) -> None:
        # Debian keeps them out of PATH, in /usr/lib/postgresql/<version>/bin.
        folders = [
            os.environ.get("PATH", ""),
            *sorted(map(str, Path("/usr/lib/postgresql").glob("*/bin")), reverse=True),
        ]
        initdb, pg_ctl = (shutil.which(tool, path=os.pathsep.join(folders)) for tool in ("initdb", "pg_ctl"))
        if not (initdb and pg_ctl):
            raise PostgresMissing(
                "PostgreSQL is not installed (no initdb and pg_ctl on PATH or in /usr/lib/postgresql)"
            )
        self.initdb, self.pg_ctl = initdb, pg_ctl
        self.folder = Path(tempfile.mkdtemp(prefix="recoup-pg-"))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._user = self._unprivileged_user()
        if self._user:
            os.chown(self.folder, self._user.pw_uid, self._user.pw_gid)
        self._databases = 0

    @staticmethod
    def _unprivileged_user() -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None  # PostgreSQL refuses to run as root only
        for name in ("postgres", "nobody"):
            try:
                return pwd.getpwnam(name)
            except KeyError:
                continue
        raise PostgresMissing("running as root and no 'postgres' or 'nobody' user to run PostgreSQL")

    def _run(self, *args: str) -> None:
        user = self._user

        def demote() -> None:
            if user:
                os.setgid(user.pw_gid)
                os.setuid(user.pw_uid)

        done = subprocess.run(list(args), preexec_fn=demote, cwd=self.folder, capture_output=True, text=True,
                              env={**os.environ, "HOME": str(self.folder), "LC_ALL": "C"}, timeout=120)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed: {done.stderr.strip()[-500:]}")

    def start(self) -> None:
        """Creates the cluster with an owner and a read-only role, both with `PG_PASSWORD`, and starts it."""
        secret = self.folder / "pwfile"
        secret.write_text(PG_PASSWORD + "\n")
        if self._user:
            os.chown(secret, self._user.pw_uid, self._user.pw_gid)
        data = self.folder / "data"
        self._run(self.initdb, "-D", str(data), "-U", PG_OWNER, f"--pwfile={secret}", "-E", "UTF8",
                  "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync")  # fmt: skip
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60"
        self._run(self.pg_ctl, "-D", str(data), "-l", str(self.folder / "log"), "-o", options, "-w", "start")
        self.execute("postgres", f"create role {PG_READER} login password '{PG_PASSWORD}'")

    def stop(self) -> None:
        """Stops the server at once and deletes its folder."""
        with contextlib.suppress(Exception):
            self._run(self.pg_ctl, "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    def conninfo(self, database: str, user: str = PG_OWNER) -> str:
        """A libpq connection string for `database` as `user`, without the password."""
        return f"dbname={database} host=127.0.0.1 port={self.port} user={user}"

    def execute(self, database: str, sql: str) -> None:
        """Runs each `;`-separated statement of `sql` in `database` as the owner, autocommitted."""
        with psycopg.connect(self.conninfo(database), password=PG_PASSWORD, autocommit=True) as con:
            for statement in filter(str.strip, sql.split(";")):
                con.execute(statement)

    def new_database(self) -> str:
        """An empty catalog database that the read-only role may read."""
        self._databases += 1
        name = f"lake{self._databases}"
        self.execute("postgres", f"create database {name}")
        self.execute(name, READER_GRANTS.format(database=name, reader=PG_READER, owner=PG_OWNER))
        return name
