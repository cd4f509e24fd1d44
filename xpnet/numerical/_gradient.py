"""Derivatives, partial derivatives, gradients and gradient descent by central differences."""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Callable
from typing import Any

from array_api_compat import array_namespace, is_writeable_array
from array_api_compat import device as _device

from .._array import as_float, is_floating, namespace
from ._central import DEFAULT_MAX_BYTES, UnitVectors, central, central_difference
from ._step import resolve_step

__all__ = [
    "gradient_descent",
    "gradient_with_step",
    "numerical_diff",
    "numerical_gradient",
    "partial_derivative",
    "stacked",
]


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
    if isinstance(x, numbers.Real) and not isinstance(x, bool) and not hasattr(x, "dtype"):
        step = 1e-4 if h is None else float(h)
    else:
        xp = namespace(x)
        x = as_float(x, xp)
        step = resolve_step(x, h)
    if method == "central":
        return central(f(x + step), f(x - step), step)
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
    step = resolve_step(x, h)
    e = xp.astype(xp.arange(n, device=_device(x)) == (i % n), x.dtype)
    return central(f(x + step * e), f(x - step * e), step)


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
    if not batched and not is_writeable_array(x):
        raise TypeError(
            f"numerical_gradient: this {type(x).__name__} is read-only (JAX arrays always "
            "are), so x cannot be perturbed in place; pass batched=True with an f that "
            "takes a stack of points"
        )
    step = resolve_step(x, h)
    return gradient_with_step(f, x, step, batched=batched, max_bytes=max_bytes)


def gradient_with_step(
    f: Callable[[Any], Any],
    x: Any,
    h: float,
    *,
    batched: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Any:
    """:func:`numerical_gradient` with the step already resolved: no conversion, no warning.

    For callers that applied :func:`resolve_step` once themselves (gradcheck, descent).
    ``x`` must be real floating (and writeable unless ``batched``).
    """
    if batched:
        return _gradient_batched(f, x, h, max_bytes)
    return _gradient_in_place(f, x, h)


def _gradient_in_place(f: Callable[[Any], Any], x: Any, h: float) -> Any:
    """The chapter's loop: perturb ``x[idx]`` in place, call ``f``, restore bit for bit."""
    xp = array_namespace(x)
    original = xp.asarray(x, copy=True)  # one copy; its elements are never written
    # x[idx] + h and x[idx] - h for every idx at once, in x's dtype, so the loop only
    # moves values: it is the cost, keep it lean
    ups, downs = original + h, original - h
    plus, minus = [], []
    add_plus, add_minus = plus.append, minus.append
    # plain ints index a vector faster than 1-tuples (the chapter's loop indexes so too)
    indices = iter(range(x.shape[0]) if x.ndim == 1 else itertools.product(*map(range, x.shape)))
    # the first index alone, then the rest: f's first value is checked before the others
    # are computed, and the check stays out of the loop
    for part in (itertools.islice(indices, 1), indices):
        for idx in part:
            try:
                x[idx] = ups[idx]
                add_plus(f(x))
                x[idx] = downs[idx]
                add_minus(f(x))
            finally:
                x[idx] = original[idx]
        if plus:
            _check_scalar(plus[0])
    if not plus:
        return xp.zeros_like(x)
    values = _values(plus + minus, x, xp)
    n = len(plus)
    return xp.reshape(central(values[:n], values[n:], h), x.shape)


def _check_scalar(value: Any) -> None:
    shape = tuple(getattr(value, "shape", ()))
    if math.prod(shape) != 1:
        raise ValueError(
            f"numerical_gradient: f returned shape {shape}, expected a scalar; with "
            "batched=True, f takes a stack of points and returns one value per point"
        )


def _values(raw: list[Any], like: Any, xp: Any) -> Any:
    """``f``'s values as one 1-D array of ``like``'s dtype on its device.

    Host numbers (Python floats, NumPy scalars) are converted in one call; device
    scalars are stacked on the device (no host sync).
    """
    # one isinstance per distinct type: per value it cost as much as the loop's own work
    if all(issubclass(kind, numbers.Real) for kind in set(map(type, raw))):
        return xp.asarray(raw, dtype=like.dtype, device=_device(like))
    return xp.stack([_scalar(v, like, xp) for v in raw])


def _scalar(v: Any, like: Any, xp: Any) -> Any:
    """One value of ``f`` as a 0-d array of ``like``'s dtype on its device."""
    if isinstance(v, numbers.Real):
        return xp.asarray(v, dtype=like.dtype, device=_device(like))
    return xp.reshape(xp.astype(v, like.dtype), ())


def _gradient_batched(f: Callable[[Any], Any], x: Any, h: float, max_bytes: int) -> Any:
    xp = array_namespace(x)
    if math.prod(x.shape) == 0:
        return xp.zeros_like(x)

    def values(offsets: Any) -> Any:
        m = offsets.shape[0]
        v = xp.asarray(f(x[None, ...] + offsets))
        if math.prod(v.shape) != m:
            raise ValueError(
                f"numerical_gradient: with batched=True f must return one value per stacked "
                f"point, shape ({m},) for a stack of shape {(m, *x.shape)}; it returned "
                f"shape {tuple(v.shape)}"
            )
        return xp.reshape(xp.astype(v, x.dtype), (m,))

    g = central_difference(values, UnitVectors(x), h, max_bytes=max_bytes)
    return xp.reshape(g, x.shape)


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
    if not batched and not is_writeable_array(x):
        batched = True
        f = stacked(f, xp)
    step = resolve_step(x)
    history = []
    for _ in range(step_num):
        history.append(x)
        x = x - lr * gradient_with_step(f, xp.asarray(x, copy=True), step, batched=batched)
    if not history:
        return x, xp.empty((0, *x.shape), dtype=x.dtype, device=_device(x))
    return x, xp.stack(history)


def stacked(f: Callable[[Any], Any], xp: Any) -> Callable[[Any], Any]:
    """A one-point ``f`` as one that maps over a stack, point by point (immutable arrays)."""

    def batched(stack: Any) -> Any:
        return xp.stack(
            [xp.reshape(xp.asarray(f(stack[i, ...])), ()) for i in range(stack.shape[0])]
        )

    return batched
