"""The DuckDB warehouse file at RECOUP_DB, one concern per module.

`paths` where a sync writes · `lock` one sync at a time · `working_copy` the private copy and
its atomic publish · `dlt_folder` dlt's pipelines folder beside the file · `connection` memory
limits · `raw_schema` the raw tables · `sync_state` what a sync starts from · `sync_log` what
it records · `outcomes` how each sync ended, recorded by the next.
"""

from pipelines.warehouse.connection import connect, step_limits, use_limits
from pipelines.warehouse.lock import sync_lock
from pipelines.warehouse.outcomes import forget_outcomes, note_outcome, pending_outcomes, record_outcomes
from pipelines.warehouse.paths import Paths, prepare_folder
from pipelines.warehouse.raw_schema import (
    RAW_TABLES,
    SIDE_TABLES,
    create_sync_tables,
    date_child_rows,
    drop_stand_ins,
    missing_raw_tables,
    prune_answers,
    side_table_columns,
)
from pipelines.warehouse.sync_log import append_sync_log, remember_lost
from pipelines.warehouse.sync_state import details_pending, keep_recent_states, read_index, read_source_state
from pipelines.warehouse.working_copy import (
    SPACE_MARGIN,
    discard_work,
    publish,
    settle_access,
    space_margin,
    start_work_copy,
)

__all__ = [
    "RAW_TABLES",
    "SIDE_TABLES",
    "SPACE_MARGIN",
    "Paths",
    "append_sync_log",
    "connect",
    "create_sync_tables",
    "date_child_rows",
    "details_pending",
    "discard_work",
    "drop_stand_ins",
    "forget_outcomes",
    "keep_recent_states",
    "missing_raw_tables",
    "note_outcome",
    "pending_outcomes",
    "prepare_folder",
    "prune_answers",
    "publish",
    "read_index",
    "read_source_state",
    "record_outcomes",
    "remember_lost",
    "settle_access",
    "side_table_columns",
    "space_margin",
    "start_work_copy",
    "step_limits",
    "sync_lock",
    "use_limits",
]
