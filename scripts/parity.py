"""Check that a backend gives NumPy's numbers: functions, gradients, training runs.

    XPNET_BACKEND=cupy python scripts/parity.py          # the GPU user's one command
    python scripts/parity.py --backend torch --out parity.json

Prints one row per check and dtype (max abs diff, max rel diff, tolerance, pass/fail) and
exits 1 if any check fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

# Run from a checkout without installing: the package sits next to this folder.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import xpnet  # noqa: E402
from xpnet import parity  # noqa: E402
from xpnet._files import atomic_write  # noqa: E402
from xpnet.cli import check_output  # noqa: E402
from xpnet.cli.framework import CliRun, CommandParser, run_command  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """1 when a check fails, 0 when all pass; bad flags exit 2 with one line."""
    return run_command(_parser(), argv, _main)


def _parser() -> CommandParser:
    p = CommandParser(prog="parity", description=__doc__.splitlines()[0])
    p.add_argument("--backend", help="backend to check (default: XPNET_BACKEND)")
    p.add_argument("--device", help="its device (default: XPNET_DEVICE)")
    p.add_argument("--reference", default="numpy", help="reference backend, run in float64")
    p.add_argument("--dtype", nargs="+", default=["float64", "float32"],
                   choices=["float64", "float32"])  # fmt: skip
    p.add_argument("--check", action="append", choices=list(parity.CHECKS),
                   help="run only these checks (repeatable)")  # fmt: skip
    p.add_argument("--out", type=Path, help="also write the results as JSON")
    return p


def _main(args: argparse.Namespace, run: CliRun) -> int:
    with run.usage_errors(xpnet.BackendError):
        check_output("--out", args.out)
        reference = xpnet.get_backend(args.reference, None, "float64")
        backends = [xpnet.get_backend(args.backend, args.device, d) for d in args.dtype]

    print(f"parity: {backends[0].name} on {backends[0].device_name} "
          f"vs {reference.name} float64")  # fmt: skip
    header = f"{'check':<32} {'dtype':<8} {'max abs':>10} {'max rel':>10} {'rtol':>8} {'atol':>8}  result"  # noqa: E501
    print(header)
    print("-" * len(header))
    results = []
    start = time.perf_counter()
    for b in backends:
        for r in parity.run_parity(b, reference, checks=args.check):
            results.append(r)
            run.stage = f"after {len(results)} checks"
            verdict = "pass" if r.passed else f"FAIL {r.detail}"
            print(f"{r.check:<32} {r.dtype:<8} {r.max_abs:>10.2e} {r.max_rel:>10.2e} "
                  f"{r.rtol:>8.1e} {r.atol:>8.1e}  {verdict}", flush=True)  # fmt: skip
    seconds = time.perf_counter() - start
    failed = [r for r in results if not r.passed]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed in {seconds:.1f} s")
    if args.out is not None:
        payload = {
            "backend": backends[0].name,
            "device": backends[0].device_name,
            "reference": reference.name,
            "seconds": seconds,
            "results": [r.as_dict() for r in results],
        }
        with atomic_write(args.out, "w") as fh:
            fh.write(json.dumps(payload, indent=1) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
