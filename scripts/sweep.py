"""Train many configurations at once as stacked models: ``python scripts/sweep.py --help``."""

import sys
from pathlib import Path

# Run from a checkout without installing: the package sits next to this folder.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from xpnet.cli import sweep_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(sweep_main())
