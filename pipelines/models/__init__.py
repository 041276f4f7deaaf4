"""The SQL models in `sql/`, applied to a warehouse in dependency order, all or nothing.

One concern per module: `files.py` the model files (what each builds and reads, the
incremental keys, the build order); `comments.py` the comments each model writes into the
catalog; `runner.py` the build (a full rebuild or an update for a sync's runs).
"""

from pipelines.models.comments import describe
from pipelines.models.files import (
    CHANGED_RUNS,
    LAYERS,
    PRUNE_COLUMN,
    SQL_DIR,
    UTC_DAY,
    Incremental,
    Model,
    ModelError,
    load_models,
)
from pipelines.models.runner import (
    DLT_STAGING,
    FINGERPRINT_TABLE,
    apply_models,
    models_behind,
)

__all__ = [
    "CHANGED_RUNS",
    "DLT_STAGING",
    "FINGERPRINT_TABLE",
    "LAYERS",
    "PRUNE_COLUMN",
    "SQL_DIR",
    "UTC_DAY",
    "Incremental",
    "Model",
    "ModelError",
    "apply_models",
    "describe",
    "load_models",
    "models_behind",
]
