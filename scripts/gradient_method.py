"""The chapter's gradient_method.py: gradient descent on x0² + x1² from (-3, 4).

Usage::

    python scripts/gradient_method.py [--lr 0.1] [--step-num 20] [--out gradient_method.png]
                                      [--show]

Runs :func:`xpnet.gradient_descent` on the backend chosen by ``XPNET_BACKEND`` /
``XPNET_DEVICE`` (float64) and plots the visited points. Writes a PNG (``--out``, default
``gradient_method.png`` in the current directory); opens a window only with ``--show``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run from a checkout without installing: the package sits next to this folder.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import xpnet  # noqa: E402
from xpnet import plots  # noqa: E402
from xpnet.cli import figure_main  # noqa: E402
from xpnet.cli.framework import finite_float, positive_int  # noqa: E402


def _arguments(parser):
    parser.add_argument(
        "--init", type=finite_float, nargs=2, default=[-3.0, 4.0], metavar="X", help="start point"
    )
    parser.add_argument("--lr", type=finite_float, default=0.1, help="learning rate")
    parser.add_argument("--step-num", type=positive_int, default=20, help="steps")


def _draw(backend, args):
    init_x = backend.asarray([float(v) for v in args.init])
    x, history = xpnet.gradient_descent(
        plots.function_2, init_x, lr=args.lr, step_num=args.step_num
    )
    fig = plots.plot_descent_path(history)
    return fig, f"x after {args.step_num} steps: {backend.to_numpy(x)}"


def main(argv: list[str] | None = None) -> int:
    return figure_main(
        argv,
        prog="gradient_method",
        description=__doc__.splitlines()[0],
        default_out="gradient_method.png",
        draw=_draw,
        add_arguments=_arguments,
    )


if __name__ == "__main__":
    sys.exit(main())
