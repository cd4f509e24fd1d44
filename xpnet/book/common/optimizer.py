"""The book's ``common.optimizer``: xpnet's optimizers.

``update(params, grads)`` takes what the book's scripts pass: dicts of NumPy arrays, of
backend arrays, of NumPy scalars or Python numbers (``optimizer_compare_naive.py``);
gradients of another kind than their parameter are converted to it.
"""

from __future__ import annotations

import numpy as np  # optimizer_compare_mnist.py uses the `np` of `from common.optimizer import *`

from ...optimizers import SGD, AdaGrad, Adam, Momentum, Nesterov, RMSprop

__all__ = ["SGD", "AdaGrad", "Adam", "Momentum", "Nesterov", "RMSprop", "np"]
