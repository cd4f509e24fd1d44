"""The chapter's figure scripts (scripts/gradient_*.py): one command line for all of them,
with the errors and exits of every command (:mod:`xpnet.cli.framework`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .. import plots
from ..backends import Backend, BackendError, get_backend
from .framework import (
    CliRun,
    CommandParser,
    check_output,
    figure_format,
    positive_int,
    run_command,
    save_figure,
)

__all__ = ["figure_main"]


def figure_main(
    argv: Sequence[str] | None,
    *,
    prog: str,
    description: str,
    default_out: str,
    draw: Callable[[Backend, argparse.Namespace], tuple[Any, str]],
    add_arguments: Callable[[argparse.ArgumentParser], Any] | None = None,
) -> int:
    """The shared command line of the chapter's figure scripts.

    ``draw(backend, args)`` returns ``(figure, summary_line)``; the figure is saved to
    ``--out`` and shown only with ``--show``. The backend comes from ``XPNET_BACKEND`` /
    ``XPNET_DEVICE``, always in float64 as the chapter computes.
    """
    parser = CommandParser(prog=prog, description=description)
    if add_arguments is not None:
        add_arguments(parser)
    parser.add_argument("--out", type=Path, default=Path(default_out), help="figure to write")
    parser.add_argument("--dpi", type=positive_int, default=100, help="resolution")
    parser.add_argument("--show", action="store_true", help="also open a window")
    return run_command(parser, argv, lambda args, run: _figure(args, run, draw))


def _figure(args: argparse.Namespace, run: CliRun, draw: Callable[..., tuple[Any, str]]) -> None:
    with run.usage_errors(BackendError):
        check_output("--out", args.out)
        fmt = figure_format("--out", args.out)
        backend = get_backend(dtype="float64")
    run.stage = "while drawing"
    with run.usage_errors(ImportError):  # matplotlib missing
        fig, summary = draw(backend, args)
    save_figure(run, fig, args.out, fmt, args.dpi)
    print(summary)
    print(f"wrote {args.out} ({backend.name} on {backend.device_name})")
    if args.show:
        plots.show(fig)
