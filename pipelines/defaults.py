"""The default of every setting, in one place.

`pipelines/config.py` reads RECOUP_* variables (then dlt's names and `.dlt/`) and falls back to
these; the HTTP client and the fetch functions take them as parameter defaults; `recoup sync
--help` shows them; the README's table is checked against them (tests/test_defaults.py). This
module imports nothing, so the command line's help and the recoup package read it cheaply.
"""

BASE_URL = "https://recoup-api.vercel.app"
DB = "data/recoup.duckdb"  # RECOUP_DB, relative to the working directory
REPORTS_DIR = "reports"  # RECOUP_REPORTS_DIR
DEMO_DIR = "demo"  # RECOUP_DEMO_DIR, relative to the repository
MAX_CONCURRENCY = 8  # requests in flight at once
MAX_RPM = 300  # requests per minute for the whole sync: the upstream 1,500/min is shared by all of Recoup
RETRY_ATTEMPTS = 6  # tries per request
SYNC_SECONDS = 240  # the time budget of one sync, for a cron every 5 minutes; 0 = none
DETAILS = "all"  # which finished runs get a details fetch: all, failed, none
STORE_PAYLOADS = False
LOCK_WAIT = 0  # seconds a sync waits for a running one
MEMORY_MB = 0  # the most DuckDB may use in any step; 0 = a quarter of the machine's memory
REQUEST_TIMEOUT = 60.0  # seconds for a whole request
MAX_RESPONSE_BYTES = 64 * 2**20  # a full page of 100 runs is about 150 KB
# DuckDB's load within its budget fails on one value of about 7 MB (see transform.Limits).
MAX_RUN_BYTES = 4 * 2**20
MAX_FIELD_BYTES = 2 * 2**20
REPORT_DAYS = 30  # the report's period, in UTC days ending today
LAKE_KEEP_DAYS = 7  # `make maintain` expires snapshots older than this
LAKE_GRACE_MINUTES = 60  # `make maintain` deletes a file once it has been unused this long
