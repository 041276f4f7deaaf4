"""`python -m pipelines.recoup_pipeline`, as older cron lines call it: the same as `recoup sync`."""

import sys

from pipelines.cli import main

if __name__ == "__main__":
    sys.exit(main(["sync", *sys.argv[1:]]))
