"""`python -m pipelines.models`: `make models` (see runner.py)."""

import sys

from pipelines.models.runner import main

sys.exit(main())
