"""The book's ``common.functions``: xpnet's functions under the book's names.

Each follows its inputs: NumPy arrays (what the book's scripts pass) are computed with
NumPy, arrays of another library with that library, on their device.
"""

from __future__ import annotations

from typing import Any

import numpy as np  # the book's `from common.functions import *` brings `np` too

from ... import functions, losses
from ..._array import arrays

# the book's activations under their names (`from common.functions import *` gets them)
from ...functions import *  # noqa: F403
from ...losses import cross_entropy_error, mean_squared_error

__all__ = ["cross_entropy_error", "mean_squared_error", "np", "softmax_loss", "sum_squared_error"]
__all__ += functions.__all__


def sum_squared_error(y: Any, t: Any) -> Any:
    """The book's ``0.5 * sum((y - t)**2)`` over every element (a batch is not averaged).

    For one sample it equals :func:`xpnet.mean_squared_error`, which averages over a batch.
    """
    xp, y, t = arrays(y, t)
    return 0.5 * xp.sum((y - t) ** 2)


def softmax_loss(X: Any, t: Any) -> Any:
    """``cross_entropy_error(softmax(X), t)``, as the book's (1e-7 inside the log)."""
    return losses.cross_entropy_error(functions.softmax(X), t)
