"""The systemd units of docs/operations.md: checked by systemd's own parser, then their commands run.

No systemd manager runs where the tests do, so the units are not started by one. Instead
`systemd-analyze verify` reads them as systemd would (an unknown key, a bad calendar, a missing
program all fail it), and each unit's `ExecStart=` runs in its `WorkingDirectory=` with its
`EnvironmentFile=` as the only settings, as the unit would.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import orjson
import pytest

from pipelines.emulator import EmulatorServer, World
from tests.conftest import ISO_UTC, ROOT, venv_script

ANALYZE = shutil.which("systemd-analyze")


def _documented_units() -> dict[str, str]:
    """The unit files of the ```ini block under ## systemd, by file name."""
    text = (ROOT / "docs" / "operations.md").read_text()
    block = re.search(r"## systemd\n.*?```ini\n(.*?)```", text, re.DOTALL)
    assert block, "docs/operations.md has an ```ini block under ## systemd"
    units: dict[str, list[str]] = {}
    name = ""
    for line in block.group(1).splitlines():
        if match := re.match(r"# /etc/systemd/system/(\S+)", line):
            name = match.group(1)
            units[name] = []
        elif name:
            units[name].append(line)
    return {name: "\n".join(lines).strip() + "\n" for name, lines in units.items()}


def _settings(unit: str) -> dict[str, str]:
    return dict(re.findall(r"^(\w+)=(.*)$", unit, re.MULTILINE))


def _read_env_file(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


@pytest.mark.slow
@pytest.mark.skipif(ANALYZE is None, reason="needs systemd-analyze (Debian's systemd package)")
def test_the_documented_units_pass_systemd_analyze_and_their_commands_run(
    world: World, emulator: EmulatorServer, tmp_path: Path
) -> None:
    units = _documented_units()
    assert {"recoup-sync.service", "recoup-sync.timer", "recoup-report.service"} <= set(units)
    project = tmp_path / "recoup-runs"
    project.mkdir()
    (project / ".venv").symlink_to(venv_script("recoup").parent.parent)
    env_file = tmp_path / "recoup-runs.env"
    env_file.write_text(
        f"RECOUP_API_KEY={world.demo_key}\nRECOUP_BASE_URL={emulator.url}\n"
        f"RECOUP_ACCOUNTS={','.join(world.account_ids)}\nRECOUP_DB={project / 'data' / 'recoup.duckdb'}\n"
        f"RECOUP_MAX_RPM=0\nRECOUP_REPORTS_DIR={project / 'reports'}\n"
    )
    env_file.chmod(0o600)  # as the docs say: the secrets live here, root's alone
    folder = tmp_path / "units"
    folder.mkdir()
    for name, text in units.items():
        text = text.replace("/srv/recoup-runs", str(project)).replace("/etc/recoup-runs.env", str(env_file))
        (folder / name).write_text(text)
    # The template OnFailure= names, as the docs leave it to the operator.
    (folder / "recoup-alert@.service").write_text("[Service]\nType=oneshot\nExecStart=/bin/true %i\n")
    checked = subprocess.run([ANALYZE, "verify", "--man=no", *sorted(map(str, folder.iterdir()))],
                             capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert checked.returncode == 0 and (checked.stdout + checked.stderr).strip() == "", checked.stderr

    sync = _settings((folder / "recoup-sync.service").read_text())
    assert (
        sync["User"] and sync["SuccessExitStatus"] == "75" and sync["OnFailure"].startswith("recoup-alert@")
    )
    settings = _read_env_file(Path(sync["EnvironmentFile"]))
    base = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}  # systemd sets HOME from User=
    for name in ("recoup-sync.service", "recoup-report.service"):
        unit = _settings((folder / name).read_text())
        done = subprocess.run(shlex.split(unit["ExecStart"]), cwd=unit["WorkingDirectory"], env=base | settings,
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
        assert done.returncode == 0, (name, done.stderr)
        lines = (done.stdout + done.stderr).splitlines()
        if "--log-format json" in unit["ExecStart"]:  # the journal's lines carry their level as a field
            entries = [orjson.loads(line) for line in lines]
            assert any(e["msg"].startswith("sync: ") and "accounts ok" in e["msg"] for e in entries)
        else:
            assert lines and all(ISO_UTC.match(line) for line in lines), lines
        assert world.demo_key not in done.stdout + done.stderr
