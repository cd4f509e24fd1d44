"""Check an analytic gradient against central differences, on any backend.

Full mode compares every element with :func:`xpnet.numerical_gradient`. Fast mode, as
``torch.autograd.gradcheck(fast_mode=True)`` and JAX's ``check_grads`` do, compares
directional derivatives along a few seeded random directions: ``2k`` evaluations of ``f``
instead of ``2n``, which is what makes checking a large model practical.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from array_api_compat import array_namespace, is_writeable_array, to_device
from array_api_compat import device as device_of

from ._array import float_dtype_for
from ._tolerances import gradient_tolerance
from .backends import dtype_name, to_numpy
from .numerical import central_difference, gradient_with_step, resolve_step, stacked

__all__ = ["GradcheckError", "GradcheckReport", "gradcheck"]


@dataclass(frozen=True)
class GradcheckReport:
    """What :func:`gradcheck` found.

    Attributes
    ----------
    mode : {"full", "fast"}
    checked : int
        Elements (full) or random directions (fast) compared.
    max_abs_error, max_rel_error : float
        Largest ``|analytic - numerical|`` and that divided by ``max(|numerical|, atol)``.
    worst : tuple of int
        Index of the worst element (full) or ``(direction,)`` (fast).
    analytic, numerical : float
        The two values at ``worst``.
    rtol, atol : float
    passed : bool
    """

    mode: str
    checked: int
    max_abs_error: float
    max_rel_error: float
    worst: tuple[int, ...]
    analytic: float
    numerical: float
    rtol: float
    atol: float
    passed: bool
    dtype: str

    def __str__(self) -> str:
        where = f"element {self.worst}" if self.mode == "full" else f"direction {self.worst[0]}"
        return (
            f"gradcheck {'passed' if self.passed else 'FAILED'} ({self.mode}, {self.checked} "
            f"{'elements' if self.mode == 'full' else 'directions'}, {self.dtype}): max abs "
            f"error {self.max_abs_error:.3e}, max rel error {self.max_rel_error:.3e}; worst at "
            f"{where}: analytic {self.analytic:.10g} vs numerical {self.numerical:.10g} "
            f"(rtol={self.rtol:g}, atol={self.atol:g})"
        )


class GradcheckError(AssertionError):
    """The analytic gradient disagrees with the numerical one; ``.report`` has the details."""

    def __init__(self, report: GradcheckReport) -> None:
        super().__init__(str(report))
        self.report = report


def gradcheck(
    f: Callable[[Any], Any],
    grad: Callable[[Any], Any] | Any,
    x: Any,
    *,
    h: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    fast: bool = False,
    n_directions: int = 4,
    seed: int = 0,
    batched: bool = False,
    dtype: str | None = None,
    raise_exception: bool = True,
) -> GradcheckReport:
    """Compare ``grad`` with central differences of ``f`` at ``x``.

    Parameters
    ----------
    f : callable
        Scalar function of an array shaped like ``x`` (with ``batched=True``: of a stack of
        such arrays, returning one value each). It must use its argument: ``x`` is copied.
    grad : callable or array
        The analytic gradient: ``grad(x)``, or its value at ``x``, as an array of any
        library (a host NumPy one is moved to ``x``'s device).
    x : array, any shape
    h : float, optional
        Step; :func:`xpnet.default_step` of the dtype by default.
    rtol, atol : float, optional
        Default from :func:`xpnet._tolerances.gradient_tolerance` for the dtype and step
        (float64 with h = 1e-4: rtol 9.5e-7, atol 2.2e-10).
    fast : bool
        Check ``n_directions`` directional derivatives along seeded random unit vectors
        instead of every element.
    n_directions, seed : int
        Fast mode's directions; drawn on the host with ``numpy.random.default_rng(seed)``.
    batched : bool
        Full mode: evaluate the perturbations through the vectorized path.
    dtype : str, optional
        Dtype to check in; float64 by default where the device has it. Anything coarser
        gives a :class:`xpnet.PrecisionWarning`.
    raise_exception : bool
        Raise :class:`GradcheckError` on failure (default) instead of returning the report.

    Returns
    -------
    GradcheckReport
    """
    xp = array_namespace(x)
    target = getattr(xp, dtype) if dtype is not None else float_dtype_for(x, xp)
    if not xp.isdtype(x.dtype, "real floating") or x.dtype != target:
        x = xp.astype(x, target)
    x = xp.asarray(x, copy=True)
    step = resolve_step(x, h)
    d_rtol, d_atol = gradient_tolerance(x, step)
    rtol = d_rtol if rtol is None else rtol
    atol = d_atol if atol is None else atol
    analytic = grad(xp.asarray(x, copy=True)) if callable(grad) else grad
    analytic = _on_device_of(analytic, x, xp)
    if tuple(analytic.shape) != tuple(x.shape):
        raise ValueError(
            f"gradcheck: grad has shape {tuple(analytic.shape)} but x has shape {tuple(x.shape)}"
        )
    if not batched and not is_writeable_array(x):  # JAX: evaluate the points as a stack
        f, batched = stacked(f, xp), True
    if fast:
        a, n = _directional(f, x, analytic, step, n_directions, seed, batched, xp)
    else:
        n = to_numpy(gradient_with_step(f, xp.asarray(x, copy=True), step, batched=batched))
        a = to_numpy(analytic)
    a, n = a.astype(np.float64), n.astype(np.float64)
    err = np.abs(a - n)
    rel = err / np.maximum(np.abs(n), atol)
    worst = np.unravel_index(int(np.argmax(rel)), rel.shape) if rel.size else ()
    report = GradcheckReport(
        mode="fast" if fast else "full",
        checked=int(rel.size),
        max_abs_error=float(err.max(initial=0.0)),
        max_rel_error=float(rel.max(initial=0.0)),
        worst=tuple(int(i) for i in worst),
        analytic=float(a[worst]) if rel.size else 0.0,
        numerical=float(n[worst]) if rel.size else 0.0,
        rtol=rtol,
        atol=atol,
        passed=bool(np.all(err <= atol + rtol * np.abs(n))),
        dtype=dtype_name(x),
    )
    if raise_exception and not report.passed:
        raise GradcheckError(report)
    return report


def _on_device_of(a: Any, x: Any, xp: Any) -> Any:
    """``a`` (an array of any library, or a nested list) as ``x``'s kind of array."""
    try:
        same = array_namespace(a) is xp
    except TypeError:  # a list or a scalar
        same = False
    if same:
        if device_of(a) != device_of(x):
            a = to_device(a, device_of(x))
    else:  # another library's array (often a host NumPy one): through the host, once
        a = xp.asarray(np.asarray(to_numpy(a)), device=device_of(x))
    return xp.astype(a, x.dtype) if a.dtype != x.dtype else a


def _directional(
    f: Callable[[Any], Any],
    x: Any,
    analytic: Any,
    h: float,
    k: int,
    seed: int,
    batched: bool,
    xp: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Analytic and numerical derivatives of f along k random unit directions."""
    if k < 1:
        raise ValueError(f"n_directions must be >= 1, got {k}")
    host = np.random.default_rng(seed).standard_normal((k, math.prod(x.shape)))
    host /= np.linalg.norm(host, axis=1, keepdims=True)
    v = xp.reshape(
        xp.asarray(host, dtype=x.dtype, device=device_of(x)), (k, *x.shape)
    )  # the same directions on every backend
    point = stacked(f, xp) if not batched else f

    def values(offsets: Any) -> Any:
        out = xp.asarray(point(x[None, ...] + offsets))
        return xp.reshape(xp.astype(out, x.dtype), (offsets.shape[0],))

    numeric = central_difference(values, v, h)
    exact = xp.sum(v * analytic[None, ...], axis=tuple(range(1, v.ndim)))
    return to_numpy(exact), to_numpy(numeric)
