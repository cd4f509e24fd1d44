"""The chapter's gradient_1d.py: f(x) = 0.01x² + 0.1x and its tangent at x = 5.

Usage::

    python scripts/gradient_1d.py [--x0 5] [--out gradient_1d.png] [--show]

Writes a PNG (``--out``, default ``gradient_1d.png`` in the current directory); opens a
window only with ``--show``. ``XPNET_BACKEND`` / ``XPNET_DEVICE`` pick where f and its
derivative are evaluated (always in float64).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run from a checkout without installing: the package sits next to this folder.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import xpnet  # noqa: E402
from xpnet import plots  # noqa: E402
from xpnet.cli import figure_main  # noqa: E402
from xpnet.cli.framework import finite_float  # noqa: E402


def _draw(backend, args):
    fig = plots.plot_tangent(plots.function_1, args.x0, backend=backend)
    slope = xpnet.numerical_diff(plots.function_1, backend.asarray(args.x0))
    return fig, f"slope at x={args.x0:g}: {float(backend.to_numpy(slope))}"


def main(argv: list[str] | None = None) -> int:
    return figure_main(
        argv,
        prog="gradient_1d",
        description=__doc__.splitlines()[0],
        default_out="gradient_1d.png",
        draw=_draw,
        add_arguments=lambda p: p.add_argument(
            "--x0", type=finite_float, default=5.0, help="tangent point"
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
