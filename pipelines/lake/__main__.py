"""`python -m pipelines.lake migrate | install-extensions` (see commands.py)."""

import sys

from pipelines.lake.commands import main

sys.exit(main())
