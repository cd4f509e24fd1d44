"""The chapter's gradient_2d.py: the field of -grad(x0² + x1²) on a grid.

Usage::

    python scripts/gradient_2d.py [--out gradient_2d.png] [--show]

All 324 grid points' gradients are one vectorized central difference on the backend
chosen by ``XPNET_BACKEND`` / ``XPNET_DEVICE`` (float64). Writes a PNG (``--out``,
default ``gradient_2d.png`` in the current directory); opens a window only with
``--show``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run from a checkout without installing: the package sits next to this folder.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from xpnet import plots  # noqa: E402
from xpnet.cli import figure_main  # noqa: E402


def _draw(backend, args):
    fig = plots.plot_gradient_field(plots.function_2, backend=backend)
    return fig, "negative gradient of x0**2 + x1**2 on the chapter's 18 x 18 grid"


def main(argv: list[str] | None = None) -> int:
    return figure_main(
        argv,
        prog="gradient_2d",
        description=__doc__.splitlines()[0],
        default_out="gradient_2d.png",
        draw=_draw,
    )


if __name__ == "__main__":
    sys.exit(main())
