"""Numerical differentiation: derivatives, partial derivatives, gradients, descent.

Central differences ``(f(x + h) - f(x - h)) / 2h`` as in the chapter. Two ways to get a
gradient:

* the chapter's: ``f`` is called once per perturbed element, with ``x`` itself perturbed
  in place, so ``f`` may ignore its argument and read ``x`` through a closure
  (``numerical_gradient(lambda w: net.loss(x, t), net.W)``);
* vectorized (``batched=True``): ``f`` receives a stack of perturbed copies and returns
  one value per copy, so a GPU evaluates thousands of perturbations per call.

Every vectorized difference in xpnet (this gradient, gradcheck's directions, the figures'
gradient field, the nets' structured gradient) is :func:`central_difference`, chunked to
a memory bound; every public entry point picks its step and warns about coarse dtypes
through :func:`resolve_step`, once.
"""

from __future__ import annotations

# Helpers beyond __all__ (DEFAULT_MAX_BYTES, UnitVectors, gradient_with_step, ...) are
# imported from here by the rest of xpnet.
from ._central import (  # noqa: F401
    DEFAULT_MAX_BYTES,
    UnitVectors,
    central,
    central_difference,
    chunks,
)
from ._gradient import (  # noqa: F401
    gradient_descent,
    gradient_with_step,
    numerical_diff,
    numerical_gradient,
    partial_derivative,
    stacked,
)
from ._step import PrecisionWarning, default_step, resolve_step

__all__ = [
    "PrecisionWarning",
    "central_difference",
    "default_step",
    "gradient_descent",
    "numerical_diff",
    "numerical_gradient",
    "partial_derivative",
    "resolve_step",
]
