"""The book's ``common.util``: loss smoothing, data shuffling, image patches."""

from __future__ import annotations

from typing import Any

import numpy as np  # the book's `from common.util import *` brings `np` too

from ...layers import col2im, conv_output_size, im2col
from ...plots import smooth_curve

__all__ = ["col2im", "conv_output_size", "im2col", "np", "shuffle_dataset", "smooth_curve"]


def shuffle_dataset(x: Any, t: Any) -> tuple[Any, Any]:
    """``x`` and ``t`` in one random order drawn from NumPy's global generator, as the book's."""
    permutation = np.random.permutation(x.shape[0])  # noqa: NPY002 (the book's generator)
    return x[permutation], t[permutation]
