"""Activation functions of the chapter, each forward beside its gradient.

Every function takes an array of any array-API library and returns an array of the same
namespace, on the same device, in the same floating dtype. Python numbers and lists, as
the chapter passes them, are computed as NumPy arrays.
"""

from __future__ import annotations

import math
from typing import Any

from ._array import arrays, as_float, scalar

__all__ = [
    "identity_function",
    "relu",
    "relu_grad",
    "sigmoid",
    "sigmoid_grad",
    "softmax",
    "step_function",
]


def identity_function(x: Any, /) -> Any:
    """Return ``x`` unchanged (the output activation of a regression net)."""
    return x


def step_function(x: Any, /, *, xp: Any = None) -> Any:
    """1 where ``x > 0``, else 0, in ``x``'s dtype.

    Parameters
    ----------
    x : array, any shape, real dtype
    """
    xp, x = arrays(x, xp=xp)
    return xp.astype(x > 0, x.dtype)


def sigmoid(x: Any, /, *, xp: Any = None) -> Any:
    """Logistic function 1 / (1 + exp(-x)), elementwise, accurate in both tails.

    Computed as written, which keeps a few ulp of *relative* accuracy in both tails
    (``sigmoid(-40.0)`` is 4.248e-18 in float64, where ``0.5*tanh(x/2) + 0.5`` or
    ``1 - 1/(1 + exp(x))`` give 0). ``exp(-x)`` is capped just below overflow, so no
    input warns: for ``x`` below about -708 (float64) or -87 (float32), where the true
    value is subnormal, the result is a subnormal number within ``finfo.tiny`` of it.
    One formula without a branch on the sign: NumPy's ``where`` on a mixed-sign mask
    costs several times the ``exp``.

    Parameters
    ----------
    x : array, any shape, real floating dtype (or a Python number or list)

    Returns
    -------
    array, same shape and dtype as ``x`` (integers are computed in floating point)
    """
    xp, x = arrays(x, xp=xp)
    x = as_float(x, xp)
    cap = math.log(float(xp.finfo(x.dtype).max)) - 1.0  # exp(cap) is finite
    # minimum with a 0-d array, not clip: array-api-compat's clip is several ops.
    return 1.0 / (1.0 + xp.exp(xp.minimum(-x, scalar(cap, x, xp))))


def sigmoid_grad(x: Any, /, *, xp: Any = None) -> Any:
    """Derivative of :func:`sigmoid` at ``x`` (the pre-activation), ``(1 - s) * s``.

    Computed as ``e / (1 + e)**2`` with ``e = exp(-|x|)`` (the derivative is even in
    ``x``), so both tails keep their relative accuracy: ``(1 - s) * s`` is 0 for
    ``x = 40`` where the true value is 4.248e-18.
    """
    xp, x = arrays(x, xp=xp)
    e = xp.exp(-xp.abs(as_float(x, xp)))
    r = 1.0 / (1.0 + e)
    return e * (r * r)


def sigmoid_grad_from_output(s: Any, /) -> Any:
    """Derivative of :func:`sigmoid` given its output ``s = sigmoid(x)``: ``(1 - s) * s``.

    Backprop has ``s`` from the forward pass, so this saves recomputing it.
    """
    return (1.0 - s) * s


def relu(x: Any, /, *, xp: Any = None) -> Any:
    """max(x, 0), elementwise, in ``x``'s dtype; NaN stays NaN (a divergence stays visible)."""
    xp, x = arrays(x, xp=xp)
    return xp.maximum(x, xp.zeros_like(x))


def relu_grad_from_output(y: Any, /, *, xp: Any = None) -> Any:
    """Derivative of :func:`relu` given its output ``y = relu(x)``: 1 where ``y > 0``."""
    return relu_grad(y, xp=xp)


def relu_grad(x: Any, /, *, xp: Any = None) -> Any:
    """Derivative of :func:`relu` at ``x``: 1 where ``x > 0``, else 0 (also at 0); NaN at NaN."""
    xp, x = arrays(x, xp=xp)
    return xp.where(xp.isnan(x), x, xp.astype(x > 0, x.dtype))


def softmax(x: Any, /, *, axis: int = -1, xp: Any = None) -> Any:
    """Softmax along ``axis`` (default: the last, so a batch is (N, C)).

    The row maximum is subtracted first so ``exp`` never overflows; the result is the
    same mathematically.

    Parameters
    ----------
    x : array, shape (C,) or (N, C), real floating dtype

    Returns
    -------
    array, same shape and dtype, non-negative, summing to 1 along ``axis``
    """
    xp, x = arrays(x, xp=xp)
    e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)
