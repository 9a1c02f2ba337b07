"""``python -m barbus.daemon.cli``: the ``barbus`` console script (tests run it this way)."""

import sys

from barbus.daemon.cli import main

if __name__ == "__main__":  # not when a worker process imports the main module again
    sys.exit(main())
