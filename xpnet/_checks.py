"""What :func:`xpnet.train` and a sweep check before any work: the run's arguments and
the labels."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from ._array import has_non_finite
from .backends import to_numpy

__all__ = ["check_labels", "check_run_args"]


def check_run_args(x_train: Any, t_train: Any, x_test: Any, t_test: Any, *, iters: int,
                   batch_size: int, lr: float | None = None) -> None:  # fmt: skip
    """What :func:`train` and a sweep check before any work; ``lr`` None: each config
    brings its own, checked with it."""
    if int(iters) != iters or iters < 1:
        raise ValueError(f"iters must be a positive integer, got {iters!r}")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if lr is not None and not (isinstance(lr, numbers.Real) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    if int(x_train.shape[0]) == 0:
        raise ValueError("the training set is empty")
    if int(x_train.shape[0]) != int(t_train.shape[0]):
        raise ValueError(f"x_train has {x_train.shape[0]} rows but t_train has {t_train.shape[0]}")
    if (x_test is None) != (t_test is None):
        raise ValueError("give both x_test and t_test, or neither")
    for name, x in (("x_train", x_train), ("x_test", x_test)):
        if x is not None and has_non_finite(x):
            raise ValueError(f"{name} holds NaN or inf values; clean the data first")
    if x_test is not None and int(x_test.shape[0]) != int(t_test.shape[0]):
        raise ValueError(f"x_test has {x_test.shape[0]} rows but t_test has {t_test.shape[0]}")


def check_labels(t: Any, name: str, classes: int) -> None:
    """Labels outside 0..C-1 would become all-zero one-hot rows and a silently wrong loss.

    Checked once, before the loop (a single read-back when the labels are on a device).
    """
    if t.ndim != 1:
        return
    host = to_numpy(t)
    if not np.issubdtype(host.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class labels, got dtype {host.dtype}")
    if host.size and (host.min() < 0 or host.max() >= classes):
        raise ValueError(
            f"{name} has labels from {host.min()} to {host.max()}, but the net has "
            f"{classes} outputs: labels must be 0..{classes - 1}"
        )
