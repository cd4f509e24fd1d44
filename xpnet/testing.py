"""Helpers to check results across backends: tolerances, ``assert_close``, ``to_numpy``.

Public, so users can test their own array-API code the way xpnet tests itself. Nothing in
xpnet's math imports this module.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as device_of

from ._tolerances import TOLERANCES, TRAINING_FACTOR, numerical_atol, tolerance
from .backends import to_numpy

__all__ = [
    "TOLERANCES",
    "TRAINING_FACTOR",
    "assert_close",
    "numerical_atol",
    "to_numpy",
    "tolerance",
]


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
