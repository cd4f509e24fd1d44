"""The book's ``common.gradient``: xpnet's :func:`~xpnet.numerical_gradient`.

It perturbs ``x`` in place one element at a time and restores it, so the book's
``lambda W: self.loss(x, t)`` (which ignores its argument) sees every perturbation.
"""

from __future__ import annotations

import numpy as np  # the book's `from common.gradient import *` brings `np` too

from ...numerical import numerical_gradient

__all__ = ["np", "numerical_gradient"]
