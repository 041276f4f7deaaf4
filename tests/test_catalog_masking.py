"""The catalog's password never shows: in every form libpq takes, in every message, the catalog up or down."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.lake import describe
from pipelines.recoup.safety import mask_catalog
from tests.conftest import closed_port, run_cli, run_recoup
from tools.local_postgres import PG_PASSWORD, PostgresCluster

SECRET = "s3cr3t-Pw"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (f"dbname=lake host=h password={SECRET} user=u", "dbname=lake host=h password=*** user=u"),
        (f"dbname=lake password = {SECRET} user=u", "dbname=lake password = *** user=u"),
        (f"dbname=lake PASSWORD={SECRET}", "dbname=lake PASSWORD=***"),
        (f"password='{SECRET} with spaces' user=u", "password=*** user=u"),
        (f"password = 'it\\'s {SECRET}' user=u", "password = *** user=u"),
        (f"postgresql://recoup:{SECRET}@127.0.0.1:5432/lake", "postgresql://recoup:***@127.0.0.1:5432/lake"),
        (f"postgres://recoup:{SECRET}@h/lake?sslmode=require", "postgres://recoup:***@h/lake?sslmode=require"),
        (f"postgres://:{SECRET}@h/lake", "postgres://:***@h/lake"),
        (f"postgres://recoup@h/lake?sslmode=require&password={SECRET}", "postgres://recoup@h/lake?sslmode=require&password=***"),
        (f'Unable to connect to Postgres at "dbname=x password={SECRET}": refused', 'Unable to connect to Postgres at "dbname=x password=***": refused'),
        ("dbname=lake host=h user=u", "dbname=lake host=h user=u"),
    ],
)  # fmt: skip
def test_every_form_of_a_catalog_password_is_masked(text: str, masked: str) -> None:
    assert mask_catalog(text) == masked
    assert SECRET not in describe(f"postgres:{text}")


def _catalogs(cluster: PostgresCluster, port: int, password: str) -> dict[str, str]:
    host = f"host=127.0.0.1 port={port} user=recoup"
    return {
        "keyword": f"postgres:dbname=lake {host} password={password}",
        "keyword with spaces": f"postgres:dbname=lake {host} password = {password}",
        "URI": f"postgres:postgresql://recoup:{password}@127.0.0.1:{port}/lake",
        "URI query": f"postgres:postgres://recoup@127.0.0.1:{port}/lake?password={password}",
    }


@pytest.mark.slow
@pytest.mark.parametrize("catalog", ["down", "up, the password wrong"])
@pytest.mark.parametrize("form", ["keyword", "keyword with spaces", "URI", "URI query"])
def test_no_command_shows_the_catalog_password_when_the_catalog_refuses(
    postgres: PostgresCluster, tmp_path: Path, catalog: str, form: str
) -> None:
    port = closed_port() if catalog == "down" else postgres.port
    assert SECRET != PG_PASSWORD
    env = {
        "RECOUP_LAKE": _catalogs(postgres, port, SECRET)[form],
        "RECOUP_LAKE_DATA": str(tmp_path / "lake-data"),
        "RECOUP_DB": str(tmp_path / "recoup.duckdb"),
        "RECOUP_API_KEY": "recoup_sk_test",
        "RECOUP_BASE_URL": f"http://127.0.0.1:{closed_port()}",
        "RECOUP_ACCOUNTS": "6f7c1a3e-0000-4000-8000-000000000001",
        "RECOUP_REPORTS_DIR": str(tmp_path / "reports"),
    }
    for command in ("sync", "maintain", "report", "models"):
        done = (
            run_cli(env, "pipelines.cli", "maintain") if command == "maintain" else run_recoup(env, command)
        )
        assert done.returncode != 0, (command, done.stdout, done.stderr)
        output = done.stdout + done.stderr
        assert SECRET not in output, (command, output)
        assert "cannot" in output and "***" in output, (command, output)  # it says what failed, masked
