"""Train many configurations at once as stacked models: ``python scripts/sweep.py --help``."""

import sys

from xpnet.sweep_cli import sweep_main

if __name__ == "__main__":
    sys.exit(sweep_main())
