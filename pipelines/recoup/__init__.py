"""The Recoup API as a dlt source: its client, its pages, its checked rows (see `source.py`).

Nothing is imported here, so that a command that needs only part of the package (the report
needs `safety` for its log lines) does not pay for dlt's import.
"""
