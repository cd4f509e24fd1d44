"""The chapter's gradient_1d.py: f(x) = 0.01x² + 0.1x and its tangent at x = 5.

Usage::

    python scripts/gradient_1d.py [--x0 5] [--out gradient_1d.png] [--show]

Writes a PNG (``--out``, default ``gradient_1d.png`` in the current directory); opens a
window only with ``--show``. ``XPNET_BACKEND`` / ``XPNET_DEVICE`` pick where f and its
derivative are evaluated (always in float64).
"""

from __future__ import annotations

import argparse
import sys

import xpnet
from xpnet import plots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--x0", type=float, default=5.0, help="tangent point (default 5)")
    parser.add_argument("--out", default="gradient_1d.png", help="PNG to write")
    parser.add_argument("--dpi", type=int, default=100)
    parser.add_argument("--show", action="store_true", help="also open a window")
    args = parser.parse_args(argv)
    try:
        backend = xpnet.get_backend(dtype="float64")
        fig = plots.plot_tangent(plots.function_1, args.x0, backend=backend)
        fig.savefig(args.out, dpi=args.dpi)
        slope = xpnet.numerical_diff(plots.function_1, backend.asarray(args.x0))
        print(f"slope at x={args.x0:g}: {float(backend.to_numpy(slope))}")
        print(f"wrote {args.out}")
        if args.show:
            plots.show(fig)
    except (xpnet.BackendError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
