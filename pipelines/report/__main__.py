"""`python -m pipelines.report` (see command.py)."""

import sys

from pipelines.report.command import main

sys.exit(main())
