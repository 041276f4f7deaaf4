"""Writes sql/staging/status_groups.sql, the SQL models' copy of the status vocabulary.

The vocabulary is written once, in pipelines/recoup/settings.py (STATUS_GROUPS, TERMINAL_GROUPS,
IN_FLIGHT_GROUPS); the sync groups statuses with it. The SQL view is generated from it: edit the
Python, then run `python -m pipelines.status_groups` (`--check` only compares).
tests/test_vocabulary.py fails while the committed file differs from what this writes.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from pipelines.recoup.settings import IN_FLIGHT_GROUPS, STATUS_GROUPS, TERMINAL_GROUPS

PATH = Path(__file__).resolve().parent.parent / "sql" / "staging" / "status_groups.sql"
_HEADER = """\
-- One row per known status of either API vocabulary (legacy list mode, current retrieve
-- mode) with its group, and whether that group is finished (the run will not change any
-- more) or in flight. Any status missing here is grouped as 'unknown' downstream: neither.
-- Generated from STATUS_GROUPS in pipelines/recoup/settings.py by
-- `python -m pipelines.status_groups`; edit the Python, not this file.
"""


def _literal(word: str) -> str:
    if not re.fullmatch(r"[A-Za-z_]+", word):
        raise ValueError(f"not a status or group name: {word!r}")
    return f"'{word}'"


def to_sql() -> str:
    """The text of sql/staging/status_groups.sql."""
    rows = [
        f"        ({_literal(status)}, {_literal(group)}, {str(group in TERMINAL_GROUPS).lower()},"
        f" {str(group in IN_FLIGHT_GROUPS).lower()})"
        for group, statuses in STATUS_GROUPS.items()
        for status in statuses
    ]
    return (
        _HEADER
        + "select * from (\n    values\n"
        + ",\n".join(rows)
        + "\n) as groups (status, status_group, is_finished, is_in_flight)\n"
    )


def main(argv: list[str] | None = None) -> int:
    """Writes the file; with `--check`, exits 1 when the committed file is out of date."""
    args = sys.argv[1:] if argv is None else argv
    current = PATH.read_text() if PATH.exists() else ""
    if "--check" in args:
        if current != to_sql():
            print(f"{PATH} differs from the vocabulary in pipelines/recoup/settings.py; "
                  "run `python -m pipelines.status_groups`", file=sys.stderr)  # fmt: skip
            return 1
        return 0
    if current != to_sql():
        PATH.write_text(to_sql())
        print(f"wrote {PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
