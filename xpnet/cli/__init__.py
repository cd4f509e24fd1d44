"""The command lines: ``xpnet-train``, ``xpnet-evaluate``, ``xpnet-sweep`` and the chapter's
figure scripts, one module each, on one framework (:mod:`xpnet.cli.framework`): the same
error lines and exit statuses, warnings, help and atomic outputs for all of them.
"""

from .evaluate import evaluate_main
from .figures import figure_main
from .framework import UsageError, check_output, cli_errors, run_cli
from .sweep import sweep_main
from .train import train_main

__all__ = [
    "UsageError",
    "check_output",
    "cli_errors",
    "evaluate_main",
    "figure_main",
    "run_cli",
    "sweep_main",
    "train_main",
]
