"""Helpers to check results across backends: tolerances, ``assert_close``, ``to_numpy``.

Public, so users can test their own array-API code the way xpnet tests itself. Nothing in
xpnet's math imports this module.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as device_of

from .backends import dtype_name, to_numpy

__all__ = [
    "TOLERANCES",
    "TRAINING_FACTOR",
    "assert_close",
    "numerical_atol",
    "to_numpy",
    "tolerance",
]


def _tol(dtype: type[np.floating]) -> tuple[float, float]:
    eps = float(np.finfo(dtype).eps)
    # rtol as scipy's array-API tests use it, atol as scikit-learn's.
    return 4 * math.sqrt(eps), 100 * eps


#: Default ``(rtol, atol)`` for one computation in each dtype.
TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": _tol(np.float64),  # (6.0e-08, 2.2e-14)
    "float32": _tol(np.float32),  # (1.4e-03, 1.2e-05)
    "float16": _tol(np.float16),  # (1.3e-01, 9.8e-02)
}

#: Multi-step training widens the tolerance by this factor: each SGD step feeds its
#: rounding differences into the next one, so after a few hundred steps the gap between
#: two correct backends grows well past a single matmul's, while staying far below the
#: effect of a real bug (a wrong gradient changes the loss in the first digit).
TRAINING_FACTOR = 100.0


def numerical_atol(dtype: str, h: float = 1e-4) -> float:
    """Absolute tolerance of a central difference with step ``h``.

    Each evaluation of f carries about eps·|f| rounding error and the difference divides
    it by 2h; 100·eps/h leaves a ~100x margin for |f| of order 1 (float64, h=1e-4: 2.2e-10).
    """
    return 100 * float(np.finfo(dtype).eps) / h


def tolerance(dtype: Any, *, training: bool = False) -> tuple[float, float]:
    """``(rtol, atol)`` for a dtype (name, NumPy or backend dtype, or an array)."""
    name = dtype if isinstance(dtype, str) else dtype_name(dtype)
    rtol, atol = TOLERANCES.get(name, TOLERANCES["float64"])
    factor = TRAINING_FACTOR if training else 1.0
    return rtol * factor, atol * factor


def assert_close(
    actual: Any,
    desired: Any,
    *,
    rtol: float | None = None,
    atol: float | None = None,
    xp: Any = None,
    device: Any = None,
    dtype: Any = None,
    training: bool = False,
    err_msg: str = "",
) -> None:
    """Assert that ``actual`` matches ``desired`` in values *and* in kind.

    Parameters
    ----------
    actual : array of any backend
    desired : array of any backend, or a NumPy reference
        When ``desired`` is not a NumPy array, its namespace, device and dtype are what
        ``actual`` must have unless ``xp``, ``device`` or ``dtype`` say otherwise.
    rtol, atol : float, optional
        Default from :data:`TOLERANCES` for ``actual``'s dtype (times
        :data:`TRAINING_FACTOR` with ``training=True``).
    xp, device, dtype : optional
        The namespace, device and dtype ``actual`` must have.

    Raises
    ------
    AssertionError
        On a namespace, device, dtype, shape or value mismatch.
    """
    if not isinstance(desired, np.ndarray | np.generic | int | float):
        xp = array_namespace(desired) if xp is None else xp
        device = device_of(desired) if device is None else device
        dtype = desired.dtype if dtype is None else dtype
    prefix = f"{err_msg}: " if err_msg else ""
    if xp is not None:
        got = array_namespace(actual)
        assert got is xp, f"{prefix}namespace {got.__name__} != expected {xp.__name__}"
    if device is not None:
        got_dev = device_of(actual)
        assert got_dev == device, f"{prefix}device {got_dev!r} != expected {device!r}"
    if dtype is not None:
        assert actual.dtype == dtype, f"{prefix}dtype {actual.dtype} != expected {dtype}"
    a = to_numpy(actual)
    d = np.asarray(to_numpy(desired))
    assert a.shape == d.shape, f"{prefix}shape {a.shape} != expected {d.shape}"
    default_rtol, default_atol = tolerance(a.dtype, training=training)
    np.testing.assert_allclose(
        a,
        d,
        rtol=default_rtol if rtol is None else rtol,
        atol=default_atol if atol is None else atol,
        err_msg=err_msg,
    )
