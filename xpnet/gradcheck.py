"""Check an analytic gradient against central differences, on any backend.

Full mode compares every element with :func:`xpnet.numerical_gradient`. Fast mode, as
``torch.autograd.gradcheck(fast_mode=True)`` and JAX's ``check_grads`` do, compares
directional derivatives along a few seeded random directions: ``2k`` evaluations of ``f``
instead of ``2n``, which is what makes checking a large model practical.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as device_of

from ._array import float_dtype_for
from .backends import dtype_name, to_numpy
from .numerical import PrecisionWarning, default_step, numerical_gradient

__all__ = ["GradcheckError", "GradcheckReport", "gradcheck"]

#: Default (rtol, atol) per dtype. float64: central differences with h=1e-4 are accurate
#: to about h² = 1e-8 times the third derivative, so 1e-6 relative leaves room for
#: curvature while any real bug (a wrong sign, a missing term) is off by O(1).
DEFAULT_TOLERANCES = {"float64": (1e-6, 1e-8), "float32": (2e-2, 1e-3), "float16": (2e-1, 1e-1)}


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
        The analytic gradient: ``grad(x)``, or its value at ``x``.
    x : array, any shape
    h : float, optional
        Step; :func:`xpnet.default_step` of the dtype by default.
    rtol, atol : float, optional
        Default from :data:`DEFAULT_TOLERANCES`.
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
    name = dtype_name(x)
    if name != "float64":
        warnings.warn(
            f"gradcheck in {name}: numerical gradients have only a few correct digits; "
            "check in float64 where the device has it",
            PrecisionWarning,
            stacklevel=2,
        )
    d_rtol, d_atol = DEFAULT_TOLERANCES.get(name, DEFAULT_TOLERANCES["float32"])
    rtol = d_rtol if rtol is None else rtol
    atol = d_atol if atol is None else atol
    step = default_step(name) if h is None else float(h)
    analytic = grad(xp.asarray(x, copy=True)) if callable(grad) else grad
    if tuple(analytic.shape) != tuple(x.shape):
        raise ValueError(
            f"gradcheck: grad has shape {tuple(analytic.shape)} but x has shape {tuple(x.shape)}"
        )
    analytic = xp.astype(analytic, x.dtype)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrecisionWarning)  # warned once above
        if fast:
            a, n = _directional(f, x, analytic, step, n_directions, seed, batched, xp)
        else:
            n = to_numpy(numerical_gradient(f, xp.asarray(x, copy=True), step, batched=batched))
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
        dtype=name,
    )
    if raise_exception and not report.passed:
        raise GradcheckError(report)
    return report


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
    if batched:
        values = f(xp.concat([x[None, ...] + h * v, x[None, ...] - h * v], axis=0))
        values = xp.reshape(xp.astype(xp.asarray(values), x.dtype), (2 * k,))
        numeric = (values[:k] - values[k:]) / (2 * h)
    else:
        diffs = [
            xp.reshape(xp.asarray(f(x + h * v[i, ...])), ())
            - xp.reshape(xp.asarray(f(x - h * v[i, ...])), ())
            for i in range(k)
        ]
        numeric = xp.stack([xp.astype(d, x.dtype) for d in diffs]) / (2 * h)
    axes = tuple(range(1, v.ndim))
    exact = xp.sum(v * analytic[None, ...], axis=axes)
    return to_numpy(exact), to_numpy(numeric)
