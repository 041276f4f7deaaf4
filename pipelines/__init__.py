"""recoup-runs: copies every Recoup task run into a DuckDB warehouse."""

import os

# dlt reports usage over the network by default; a cron job should not phone home.
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
