"""Numerical differentiation: derivatives, partial derivatives, gradients, descent.

Central differences ``(f(x + h) - f(x - h)) / 2h`` as in the chapter. Two ways to get a
gradient:

* the chapter's: ``f`` is called once per perturbed element, with ``x`` itself perturbed
  in place, so ``f`` may ignore its argument and read ``x`` through a closure
  (``numerical_gradient(lambda w: net.loss(x, t), net.W)``);
* vectorized (``batched=True``): ``f`` receives a stack of perturbed copies and returns
  one value per copy, so a GPU evaluates thousands of perturbations per call.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from array_api_compat import device as _device
from array_api_compat import is_jax_array

from ._array import as_float, is_floating, namespace
from .backends import dtype_name

__all__ = [
    "PrecisionWarning",
    "default_step",
    "gradient_descent",
    "numerical_diff",
    "numerical_gradient",
    "partial_derivative",
]

#: Memory for one chunk of perturbed copies in the vectorized gradient (bytes).
DEFAULT_MAX_BYTES = 64 * 2**20


class PrecisionWarning(UserWarning):
    """Numerical derivatives in a dtype too coarse to check gradients reliably."""


def default_step(name: str) -> float:
    """Default central-difference step ``h`` for a dtype.

    float64 uses the chapter's 1e-4 so its figures reproduce. Coarser dtypes use about
    ``eps ** (1/3)``, the step that balances truncation against rounding error for a
    central difference: float32 5e-3 (1e-4 there loses about three digits), float16 1e-1.
    """
    return {"float64": 1e-4, "float32": 5e-3, "float16": 1e-1, "bfloat16": 2e-1}.get(name, 1e-4)


def resolve_step(dtype: Any, h: float | None) -> float:
    """The step for ``dtype`` (:func:`default_step` unless ``h``), warning unless float64."""
    return _step_for(dtype, h)


def _step_for(x: Any, h: float | None) -> float:
    name = dtype_name(x)
    if name != "float64":
        warnings.warn(
            f"numerical derivative in {name}: expect only a few correct digits; "
            "use float64 to check gradients",
            PrecisionWarning,
            stacklevel=3,
        )
    return default_step(name) if h is None else float(h)


def numerical_diff(
    f: Callable[[Any], Any],
    x: Any,
    h: float | None = None,
    *,
    method: str = "central",
) -> Any:
    """Derivative of a scalar function, at a point or elementwise over an array.

    Parameters
    ----------
    f : callable
        ``f(x)`` for a number, or elementwise over an array (as ``0.01*x**2 + 0.1*x``).
    x : float or array, any shape
        Where to differentiate. Integer arrays are evaluated in floating point.
    h : float, optional
        Step; default 1e-4 for Python floats and float64, :func:`default_step` otherwise.
    method : {"central", "forward"}
        ``(f(x+h) - f(x-h)) / 2h`` (error O(h²)) or the chapter's first definition
        ``(f(x+h) - f(x)) / h`` (error O(h)).

    Returns
    -------
    float or array of ``x``'s shape
        ``numerical_diff(lambda x: 0.01*x**2 + 0.1*x, 5)`` is ``0.1999999999990898``.
    """
    if method not in ("central", "forward"):
        raise ValueError(f"method must be 'central' or 'forward', got {method!r}")
    if isinstance(x, int | float | np.number) and not isinstance(x, bool):
        step = 1e-4 if h is None else float(h)
    else:
        xp = namespace(x)
        x = as_float(x, xp)
        step = _step_for(x, h)
    if method == "central":
        return (f(x + step) - f(x - step)) / (2 * step)
    return (f(x + step) - f(x)) / step


def partial_derivative(f: Callable[[Any], Any], x: Any, i: int, h: float | None = None) -> Any:
    """Partial derivative ∂f/∂x_i at the point ``x``, the other coordinates held fixed.

    Parameters
    ----------
    f : callable
        Scalar function of a 1-D array.
    x : array, shape (n,)
    i : int
        Coordinate index, ``0 <= i < n``.

    Returns
    -------
    array, shape ()
        For ``f = x0**2 + x1**2`` at (3, 4): 6.00000000000378 (i=0), 7.999999999999119 (i=1).
    """
    xp = namespace(x)
    x = as_float(x, xp)
    n = x.shape[0] if x.ndim == 1 else 0
    if x.ndim != 1 or not -n <= i < n:
        raise ValueError(f"partial_derivative: need a 1-D x and 0 <= i < {n}, got i={i}")
    step = _step_for(x, h)
    e = xp.astype(xp.arange(n, device=_device(x)) == (i % n), x.dtype)
    return (f(x + step * e) - f(x - step * e)) / (2 * step)


def numerical_gradient(
    f: Callable[[Any], Any],
    x: Any,
    h: float | None = None,
    *,
    batched: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Any:
    """Gradient of a scalar function by central differences, for ``x`` of any shape.

    Parameters
    ----------
    f : callable
        ``batched=False`` (the chapter's way): ``f(x)`` returns a scalar. ``x`` is
        perturbed in place one element at a time and restored bit for bit afterwards
        (also when ``f`` raises), so ``f`` may ignore its argument and read ``x``
        through a closure. ``batched=True``: ``f(X)`` takes a stack ``X`` of shape
        ``(k, *x.shape)`` and returns ``k`` values.
    x : array, any shape
        Integer arrays are differentiated on a floating copy (never truncated as the
        chapter's ``np.array([3, 4])`` would be); then ``f`` must use its argument.
    h : float, optional
        Step; :func:`default_step` of ``x``'s dtype by default (1e-4 for float64).
    batched : bool
        Use the vectorized path.
    max_bytes : int
        Memory for one chunk of perturbed copies on the vectorized path: ``2 * k`` copies
        of ``x`` per call to ``f`` with ``k`` as large as fits (at least 1).

    Returns
    -------
    array, ``x``'s shape and floating dtype, on ``x``'s device
        For ``f = x0**2 + x1**2`` at (3, 4): (6, 8).

    Raises
    ------
    TypeError
        The chapter's in-place way on an immutable array (JAX); use ``batched=True``.
    """
    xp = namespace(x)
    if not is_floating(x, xp):
        x = as_float(x, xp)  # a copy: the caller's integer array is never touched
    if not batched and is_jax_array(x):
        raise TypeError(
            "numerical_gradient: JAX arrays are immutable, so x cannot be perturbed in "
            "place; pass batched=True with an f that takes a stack of points"
        )
    step = _step_for(x, h)
    if batched:
        return _gradient_batched(f, x, step, max_bytes, xp)
    return _gradient_in_place(f, x, step, xp)


def _gradient_in_place(f: Callable[[Any], Any], x: Any, h: float, xp: Any) -> Any:
    diffs = []
    for idx in np.ndindex(*x.shape):
        original = xp.asarray(x[idx], copy=True)  # a copy: x[idx] may be a view
        try:
            x[idx] = original + h
            fxh1 = f(x)
            x[idx] = original - h
            fxh2 = f(x)
        finally:
            x[idx] = original
        diffs.append(_scalar(fxh1, x, xp) - _scalar(fxh2, x, xp))
    if not diffs:
        return xp.zeros_like(x)
    return xp.reshape(xp.stack(diffs), x.shape) / (2 * h)


def _scalar(v: Any, like: Any, xp: Any) -> Any:
    """``f``'s value as a 0-d array of ``like``'s dtype on its device (no host sync)."""
    if isinstance(v, int | float):
        return xp.asarray(v, dtype=like.dtype, device=_device(like))
    return xp.reshape(xp.astype(v, like.dtype), ())


def _gradient_batched(f: Callable[[Any], Any], x: Any, h: float, max_bytes: int, xp: Any) -> Any:
    n = math.prod(x.shape)
    if n == 0:
        return xp.zeros_like(x)
    dev = _device(x)
    itemsize = 8 if dtype_name(x) == "float64" else 4
    # One eye-row per perturbed element, for the + and the - copies: 2 * k * n values.
    k = max(1, min(n, int(max_bytes) // max(1, 2 * n * itemsize)))
    flat = xp.reshape(x, (1, n))
    columns = xp.arange(n, device=dev)
    parts = []
    for start in range(0, n, k):
        stop = min(n, start + k)
        rows = xp.arange(start, stop, device=dev)
        eye = xp.astype(rows[:, None] == columns[None, :], x.dtype)
        stack = xp.concat([flat + h * eye, flat - h * eye], axis=0)
        values = f(xp.reshape(stack, (2 * (stop - start), *x.shape)))
        values = xp.reshape(xp.astype(xp.asarray(values), x.dtype), (2 * (stop - start),))
        parts.append(values[: stop - start] - values[stop - start :])
    return xp.reshape(xp.concat(parts), x.shape) / (2 * h)


def gradient_descent(
    f: Callable[[Any], Any],
    init_x: Any,
    lr: float = 0.01,
    step_num: int = 100,
    *,
    batched: bool = False,
) -> tuple[Any, Any]:
    """Minimise ``f`` by ``step_num`` steps of ``x -= lr * numerical_gradient(f, x)``.

    Parameters
    ----------
    f : callable
        Scalar function of an array shaped like ``init_x`` (or, with ``batched=True``,
        of a stack of such arrays, as in :func:`numerical_gradient`).
    init_x : array, any shape
        Start point; left untouched.
    lr : float
        Learning rate. Too large diverges (the values grow, nothing crashes); too small
        barely moves.
    step_num : int

    Returns
    -------
    x : array, ``init_x``'s shape, floating
        The last point.
    history : array, shape (step_num, *init_x.shape)
        The point before each step, as the chapter records it.

    Examples
    --------
    From (-3, 4) with lr 0.1 and 20 steps on ``x0**2 + x1**2``: about
    (-0.03458765, 0.04611686).
    """
    if step_num < 0:
        raise ValueError(f"step_num must be >= 0, got {step_num}")
    if not hasattr(init_x, "shape"):
        raise TypeError(
            f"init_x must be an array (e.g. np.array([-3.0, 4.0])), got {type(init_x).__name__}"
        )
    xp = namespace(init_x)
    x = xp.asarray(as_float(init_x, xp), copy=True)
    if not batched and is_jax_array(x):
        batched = True
        f = _vectorize(f, xp)
    history = []
    for _ in range(step_num):
        history.append(x)
        x = x - lr * numerical_gradient(f, xp.asarray(x, copy=True), batched=batched)
    if not history:
        return x, xp.empty((0, *x.shape), dtype=x.dtype, device=_device(x))
    return x, xp.stack(history)


def _vectorize(f: Callable[[Any], Any], xp: Any) -> Callable[[Any], Any]:
    """Turn a one-point ``f`` into one that maps over a stack (immutable backends)."""

    def batched(stack: Any) -> Any:
        return xp.stack(
            [xp.reshape(xp.asarray(f(stack[i, ...])), ()) for i in range(stack.shape[0])]
        )

    return batched


def central_difference(
    f: Callable[[Any], Any],
    directions: Any,
    h: float,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    bytes_per_direction: int | None = None,
) -> Any:
    """``(f(h*D) - f(-h*D)) / (2h)`` for the stack of directions ``D`` (k, ...), chunked."""
    xp = namespace(directions)
    k = int(directions.shape[0])
    if bytes_per_direction is None:
        bytes_per_direction = (
            2 * math.prod(directions.shape[1:]) * xp.finfo(directions.dtype).bits // 8
        )
    m = max(1, min(k, int(max_bytes) // max(1, int(bytes_per_direction))))
    parts = []
    for s in range(0, k, m):
        d = directions[s : min(k, s + m), ...]
        parts.append((f(h * d) - f(-h * d)) / (2 * h))
    return xp.concat(parts, axis=0)
