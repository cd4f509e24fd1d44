"""``python -m xpnet.book SCRIPT [ARGS...]``: see :mod:`xpnet.book.runner`."""

import sys

from .runner import main

sys.exit(main())
