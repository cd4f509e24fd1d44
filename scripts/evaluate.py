"""The chapter's evaluate script; see `python scripts/evaluate.py --help`."""

import sys
from pathlib import Path

# Run from a checkout without installing: the package sits next to this folder.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from xpnet.cli import evaluate_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(evaluate_main())
