"""The chapter's gradient_method.py: gradient descent on x0² + x1² from (-3, 4).

Usage::

    python scripts/gradient_method.py [--lr 0.1] [--step-num 20] [--out gradient_method.png]
                                      [--show]

Runs :func:`xpnet.gradient_descent` on the backend chosen by ``XPNET_BACKEND`` /
``XPNET_DEVICE`` (float64) and plots the visited points. Writes a PNG (``--out``, default
``gradient_method.png`` in the current directory); opens a window only with ``--show``.
"""

from __future__ import annotations

import argparse
import sys

import xpnet
from xpnet import plots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--init", type=float, nargs=2, default=[-3.0, 4.0], metavar="X")
    parser.add_argument("--lr", type=float, default=0.1, help="learning rate (default 0.1)")
    parser.add_argument("--step-num", type=int, default=20, help="steps (default 20)")
    parser.add_argument("--out", default="gradient_method.png", help="PNG to write")
    parser.add_argument("--dpi", type=int, default=100)
    parser.add_argument("--show", action="store_true", help="also open a window")
    args = parser.parse_args(argv)
    try:
        backend = xpnet.get_backend(dtype="float64")
        init_x = backend.asarray([float(v) for v in args.init])
        x, history = xpnet.gradient_descent(
            plots.function_2, init_x, lr=args.lr, step_num=args.step_num
        )
        fig = plots.plot_descent_path(history)
        fig.savefig(args.out, dpi=args.dpi)
        print(f"x after {args.step_num} steps: {backend.to_numpy(x)}")
        print(f"wrote {args.out}")
        if args.show:
            plots.show(fig)
    except (xpnet.BackendError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
