"""`make report`: the cost report (HTML with charts, Markdown summary, one CSV per table).

Reads the analysts' warehouse read-only, so it never blocks or is blocked by a sync. The
period is the last RECOUP_REPORT_DAYS UTC days (default 30) ending today, or
RECOUP_REPORT_END when given. Test runs and runs still in flight (whose cost is not final) are
left out unless RECOUP_REPORT_INCLUDE_TESTS / RECOUP_REPORT_INCLUDE_IN_FLIGHT is true; the report
says what it left out.

Its settings come with the others (`pipelines/config/`). One concern per module: `data` (every number, read from
`analytics` views by name), `formats` (how a value is written), `charts` (SVG), `render` (the
page from `pipelines/templates/report.html`, the Markdown summary, the CSVs) and `command`
(`recoup report` itself).
"""

from pipelines.report.command import report_period, write_report
from pipelines.report.data import Report, ReportError, Table, read_report

__all__ = ["Report", "ReportError", "Table", "read_report", "report_period", "write_report"]
