"""dlt's pipelines folder beside the warehouse, kept in step with the published file."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pipelines.warehouse.paths import Paths


def start_work_pipelines(paths: Paths) -> None:
    """Starts dlt's working folder from the published one (when there is one).

    dlt restores state and schema from the warehouse only when the warehouse's state is newer
    than the local one, so the local folder must never run ahead of the published warehouse:
    dlt works on a copy, and the copy replaces the published folder only with the warehouse.
    """
    if paths.pipelines_dir.is_dir():
        shutil.copytree(paths.pipelines_dir, paths.work_pipelines_dir, symlinks=True)


def _prune_loaded_packages(pipelines_dir: Path) -> None:
    """Drops the loaded packages but the description of the newest one.

    The warehouse holds their rows, and the folder would otherwise grow with every sync.
    """
    for loaded in pipelines_dir.glob("*/load/loaded"):
        packages = sorted((p for p in loaded.iterdir() if p.is_dir()), key=lambda p: p.name)
        for package in packages[:-1]:
            shutil.rmtree(package, ignore_errors=True)
        for package in packages[-1:]:
            shutil.rmtree(package / "completed_jobs", ignore_errors=True)


def publish_pipelines(paths: Paths) -> None:
    """Puts dlt's folder of the sync just published beside the warehouse.

    Not atomic (a folder cannot replace another in one rename), and need not be: a missing or
    stale folder only costs dlt a restore from the warehouse, which holds the same state.
    """
    if not paths.work_pipelines_dir.is_dir():
        return
    _prune_loaded_packages(paths.work_pipelines_dir)
    retired = paths.pipelines_dir.with_name(paths.pipelines_dir.name + ".old")
    shutil.rmtree(retired, ignore_errors=True)
    if paths.pipelines_dir.exists():
        os.replace(paths.pipelines_dir, retired)
    os.replace(paths.work_pipelines_dir, paths.pipelines_dir)
    shutil.rmtree(retired, ignore_errors=True)
