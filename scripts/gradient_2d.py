"""The chapter's gradient_2d.py: the field of -grad(x0² + x1²) on a grid.

Usage::

    python scripts/gradient_2d.py [--out gradient_2d.png] [--show]

All 324 grid points' gradients are one vectorized central difference on the backend
chosen by ``XPNET_BACKEND`` / ``XPNET_DEVICE`` (float64). Writes a PNG (``--out``,
default ``gradient_2d.png`` in the current directory); opens a window only with
``--show``.
"""

from __future__ import annotations

import argparse
import sys

import xpnet
from xpnet import plots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="gradient_2d.png", help="PNG to write")
    parser.add_argument("--dpi", type=int, default=100)
    parser.add_argument("--show", action="store_true", help="also open a window")
    args = parser.parse_args(argv)
    try:
        backend = xpnet.get_backend(dtype="float64")
        fig = plots.plot_gradient_field(plots.function_2, backend=backend)
        fig.savefig(args.out, dpi=args.dpi)
        print(f"wrote {args.out} ({backend.name} on {backend.device_name})")
        if args.show:
            plots.show(fig)
    except (xpnet.BackendError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
