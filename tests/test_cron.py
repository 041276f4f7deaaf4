"""The crontab of docs/operations.md, run by a real cron daemon for two minutes.

Each line is taken from the docs as written; only its folder, its log folder and its schedule
(every minute) change. The secret stays out of the crontab, in `.dlt/secrets.toml` (mode 600),
as the docs say. Cron runs every line through a SHELL that keeps what it would have mailed, so
the test reads the alert mails without a mail server.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import duckdb
import pytest

from pipelines.emulator import EmulatorServer, World
from tests.conftest import ISO_UTC, ROOT, venv_script, wait_until

CRON = shutil.which("cron") or "/usr/sbin/cron"
CRON_D = Path("/etc/cron.d")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CRON).is_file() or os.geteuid() != 0 or not CRON_D.is_dir(),
        reason="needs Debian's cron (apt-get install cron) and root to start it",
    ),
]


def _documented_crontab() -> list[str]:
    """The cron block of docs/operations.md, its lines as they are."""
    text = (ROOT / "docs" / "operations.md").read_text()
    block = re.search(r"## Cron\n\n```cron\n(.*?)```", text, re.DOTALL)
    assert block, "docs/operations.md has a ```cron block under ## Cron"
    return block.group(1).splitlines()


def _as_a_test_crontab(lines: list[str], project: Path, logs: Path, shell: Path, env: dict[str, str]) -> str:
    """The documented lines every minute, in the test's folders, run as root through `shell`."""
    out = [f"SHELL={shell}", 'MAILTO=""', *(f"{k}={v}" for k, v in env.items())]
    for line in lines:
        if not line.strip() or line.startswith("#") or line.startswith("MAILTO="):
            continue
        fields = line.split(maxsplit=5)
        command = fields[5].replace("/srv/recoup-runs", str(project)).replace("/var/log/recoup", str(logs))
        out.append(f"* * * * * root {command}")
    return "\n".join(out) + "\n"


def test_the_documented_crontab_under_a_real_cron_daemon(
    world: World, emulator: EmulatorServer, tmp_path: Path
) -> None:
    project, logs, mail = tmp_path / "recoup-runs", tmp_path / "log", tmp_path / "mail"
    (project / ".dlt").mkdir(parents=True)
    logs.mkdir()
    mail.mkdir()
    (project / ".venv").symlink_to(venv_script("recoup").parent.parent)
    secrets = project / ".dlt" / "secrets.toml"
    secrets.touch(mode=0o600)
    secrets.write_text(f'[sources.recoup]\napi_key = "{world.demo_key}"\n')
    # What cron would mail: everything a job prints, one file per job.
    shell = tmp_path / "keep-mail"
    shell.write_text(f'#!/bin/sh\nexec /bin/sh "$@" > "$(mktemp -p {mail})" 2>&1\n')
    shell.chmod(0o755)
    db = project / "recoup.duckdb"
    settings = {"RECOUP_BASE_URL": emulator.url, "RECOUP_ACCOUNTS": ",".join(world.account_ids),
                "RECOUP_DB": str(db), "RECOUP_MAX_RPM": "0"}  # fmt: skip
    crontab = CRON_D / f"recoup-runs-test-{os.getpid()}"
    crontab.write_text(_as_a_test_crontab(_documented_crontab(), project, logs, shell, settings))
    crontab.chmod(stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH)
    daemon = subprocess.Popen([CRON, "-f", "-L", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: len(_summaries(logs)) >= 2, "two syncs from cron", timeout=200)
        wait_until(lambda: (logs / "report.log").is_file() and len(list(mail.iterdir())) >= 8,
                   "the second minute's jobs", timeout=60)  # fmt: skip
    finally:
        crontab.unlink()
        daemon.terminate()
        daemon.wait(10)

    sync_log = (logs / "sync.log").read_text()
    assert all(ISO_UTC.match(line) for line in sync_log.splitlines() if line.strip()), "every line dated"
    assert world.demo_key not in sync_log + "".join(p.read_text() for p in mail.iterdir())
    with duckdb.connect(str(db), read_only=True) as con:
        syncs = con.execute("select exit_code, published from analytics.syncs order by synced_at").fetchall()
        runs = con.execute("select count(*) from analytics.runs").fetchone()[0]
    assert len(syncs) >= 2 and syncs[0] == (0, True) and all(published for _, published in syncs), syncs
    assert runs == sum(len(world.visible(a, 100)) for a in world.account_ids)
    mailed = [p.read_text() for p in mail.iterdir() if p.read_text().strip()]
    # The first minute's status and alert find no warehouse yet, and cron mails what they say.
    assert any("no warehouse" in text for text in mailed), mailed


def _summaries(logs: Path) -> list[str]:
    path = logs / "sync.log"
    return [line for line in path.read_text().splitlines() if "accounts ok" in line] if path.is_file() else []
