"""Configuration: `load(env)` reads and checks every setting once; the command line hands it down."""

from pipelines.config.archive import ArchiveSettings
from pipelines.config.loader import database_path, demo_folder, load, load_settings, parse_accounts
from pipelines.config.s3 import S3Config
from pipelines.config.settings import (
    ApiSettings,
    Config,
    FileSettings,
    LakeSettings,
    MonitorSettings,
    ReportSettings,
    StorageSettings,
)

__all__ = [
    "ApiSettings",
    "ArchiveSettings",
    "Config",
    "FileSettings",
    "LakeSettings",
    "MonitorSettings",
    "ReportSettings",
    "S3Config",
    "StorageSettings",
    "database_path",
    "demo_folder",
    "load",
    "load_settings",
    "parse_accounts",
]
