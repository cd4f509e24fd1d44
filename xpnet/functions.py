"""Activation functions of the chapter, each forward beside its gradient.

Every function takes an array of any array-API library and returns an array of the same
namespace, on the same device, in the same floating dtype.
"""

from __future__ import annotations

from typing import Any

from ._array import namespace

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
    xp = namespace(x, xp=xp)
    return xp.astype(x > 0, x.dtype)


def sigmoid(x: Any, /, *, xp: Any = None) -> Any:
    """Logistic function 1 / (1 + exp(-x)), elementwise.

    Computed as ``0.5 * tanh(0.5 * x) + 0.5``, the same function: tanh never overflows, so
    large ``|x|`` gives exactly 0 or 1 without overflow warnings, and it is one
    transcendental call instead of ``1 / (1 + exp(-x))``'s exp, add and divide (about 3x
    faster on small arrays, far more on large float32 ones).

    Parameters
    ----------
    x : array, any shape, real floating dtype

    Returns
    -------
    array, same shape and dtype as ``x``
    """
    xp = namespace(x, xp=xp)
    return 0.5 * xp.tanh(0.5 * x) + 0.5


def sigmoid_grad(x: Any, /, *, xp: Any = None) -> Any:
    """Derivative of :func:`sigmoid` at ``x`` (the pre-activation), ``(1 - s) * s``."""
    return sigmoid_grad_from_output(sigmoid(x, xp=xp))


def sigmoid_grad_from_output(s: Any, /) -> Any:
    """Derivative of :func:`sigmoid` given its output ``s = sigmoid(x)``: ``(1 - s) * s``.

    Backprop has ``s`` from the forward pass, so this saves recomputing it.
    """
    return (1.0 - s) * s


def relu(x: Any, /, *, xp: Any = None) -> Any:
    """max(x, 0), elementwise, in ``x``'s dtype."""
    xp = namespace(x, xp=xp)
    return xp.where(x > 0, x, xp.zeros_like(x))


def relu_grad_from_output(y: Any, /, *, xp: Any = None) -> Any:
    """Derivative of :func:`relu` given its output ``y = relu(x)``: 1 where ``y > 0``."""
    return relu_grad(y, xp=xp)


def relu_grad(x: Any, /, *, xp: Any = None) -> Any:
    """Derivative of :func:`relu` at ``x``: 1 where ``x > 0``, else 0 (also at 0)."""
    xp = namespace(x, xp=xp)
    return xp.astype(x > 0, x.dtype)


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
    xp = namespace(x, xp=xp)
    e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)
