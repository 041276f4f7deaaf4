"""The wheel: installed non-editable in a fresh venv, it runs `recoup demo` and `recoup models` elsewhere."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from pipelines.models import load_models
from tests.conftest import ROOT


def _site_packages(venv: Path) -> Path:
    return Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(out), str(ROOT)], check=True, capture_output=True)  # fmt: skip
    [built] = out.glob("recoup_runs-*.whl")
    return built


def test_the_wheel_ships_the_sql_and_not_the_tools(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(n.removeprefix("pipelines/sql/") for n in names if n.startswith("pipelines/sql/"))
    assert shipped == sorted(str(p.relative_to(ROOT / "sql")) for p in (ROOT / "sql").rglob("*.sql"))
    assert "pipelines/templates/report.html" in names
    assert not [n for n in names if n.startswith(("tools/", "tests/")) or "local_postgres" in n]


@pytest.mark.slow
def test_an_installed_wheel_runs_the_demo_and_builds_the_models_from_another_folder(
    wheel: Path, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # The dependencies come from the test venv (no download); the project itself only from the wheel.
    (_site_packages(venv) / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    str(wheel)], check=True, capture_output=True)  # fmt: skip
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import pipelines; print(pipelines.__file__)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, check=True)  # fmt: skip
    assert where.stdout.startswith(str(venv)), "the package imported is the installed wheel's"

    demo = subprocess.run([str(venv / "bin" / "recoup"), "demo"], cwd=elsewhere, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert demo.returncode == 0, demo.stderr[-2000:]
    db = elsewhere / "demo" / "recoup.duckdb"
    assert db.is_file() and list((elsewhere / "demo" / "reports").rglob("report.html"))

    models = subprocess.run([str(venv / "bin" / "recoup"), "models"], cwd=elsewhere,
                            env={**env, "RECOUP_DB": str(db)}, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert models.returncode == 0, models.stderr[-2000:]
    built = len(load_models())
    assert f"models: built {built} models in {db}" in models.stdout
