"""The load step of a sync: dlt extracts, normalizes and loads this sync's rows into the working file."""

from __future__ import annotations

import contextlib
import ctypes
import logging
from typing import Any

import dlt
import duckdb
import pyarrow as pa
from dlt.pipeline.exceptions import PipelineStepFailed

from pipelines import warehouse
from pipelines.recoup import LoadSize
from pipelines.recoup.errors import RecoupError
from pipelines.recoup.settings import PIPELINE_NAME, RAW_DATASET

log = logging.getLogger("recoup")


def release_freed_memory() -> None:
    """Hands freed memory back to the OS before DuckDB's next step needs memory.

    Arrow's allocator and glibc's malloc both keep freed blocks for reuse; without this the
    peak RSS of a large sync is the fetch working set plus DuckDB's budget.
    """
    pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):  # glibc only
        ctypes.CDLL(None).malloc_trim(0)


def open_pipeline(con: duckdb.DuckDBPyConnection, paths: warehouse.Paths) -> dlt.Pipeline:
    """The dlt pipeline on the working file.

    Its state and schema are restored from the warehouse when the local folder is gone or older.
    """
    pipeline = dlt.pipeline(
        pipeline_name=PIPELINE_NAME,
        destination=dlt.destinations.duckdb(con),
        dataset_name=RAW_DATASET,
        pipelines_dir=str(paths.work_pipelines_dir),
    )
    # dlt's own handlers would fail the load on SIGTERM; pipelines/stopping.py owns the signals.
    pipeline.config.runtime.intercept_signals = False
    pipeline.sync_destination()
    return pipeline


# dlt loads its jobs (one per table) in parallel by default; DuckDB's memory limit does not
# cover its Parquet readers' buffers, so each concurrent job adds its own (a 476 k-run first
# sync peaked at 676 MB with dlt's default, 545 MB with one job at a time, in about the same time).
LOAD_WORKERS = 1


def load(
    source: Any, con: duckdb.DuckDBPyConnection, paths: warehouse.Paths, size: LoadSize, memory_mb: int
) -> None:
    """Extracts, normalizes and loads into the working file; unwraps our own errors.

    Raises:
        RecoupError: a step failed; the message names the step and the first cause.
    """
    try:
        pipeline = open_pipeline(con, paths)
        pipeline.extract(source, loader_file_format="parquet")
        release_freed_memory()
        if size.large_bytes:  # DuckDB's merge holds large values in memory: give it room for them
            limits = warehouse.step_limits("load", memory_mb, size.large_bytes)
            log.info(
                "%.0f MB of large JSON values: DuckDB gets %s",
                size.large_bytes / 2**20,
                limits["memory_limit"],
            )
            warehouse.use_limits(con, limits)
        log.info("normalizing")
        pipeline.normalize()
        log.info("loading into the working copy")
        pipeline.load(workers=LOAD_WORKERS)
    except PipelineStepFailed as exc:
        first = cause = exc.__cause__ or exc.__context__
        while cause is not None and not isinstance(cause, RecoupError):
            cause = cause.__cause__ or cause.__context__
        if isinstance(cause, RecoupError):
            raise cause from None
        reason = f"{type(first).__name__}: {str(first).splitlines()[0][:300]}" if first else str(exc)[:300]
        raise RecoupError(f"loading failed at step {exc.step}: {reason}") from None
