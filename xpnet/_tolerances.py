"""The one tolerance table: how close two correct results are in each floating dtype.

Used by :func:`xpnet.gradcheck` (library) and re-exported by :mod:`xpnet.testing`
(tests), so a library check and a test never disagree about what "close" means.
"""

from __future__ import annotations

import math
from typing import Any

from array_api_compat import array_namespace

from ._array import is_array
from .backends import dtype_name

__all__ = [
    "EPS",
    "NUMERICAL_FACTOR",
    "TOLERANCES",
    "TRAINING_FACTOR",
    "gradient_tolerance",
    "machine_eps",
    "numerical_atol",
    "tolerance",
]

#: Machine epsilon of the floating dtypes xpnet knows by name: the one table, also
#: behind :func:`xpnet.default_step`.
EPS = {"float64": 2.0**-52, "float32": 2.0**-23, "float16": 2.0**-10, "bfloat16": 2.0**-7}


def _tol(eps: float) -> tuple[float, float]:
    # rtol as scipy's array-API tests use it, atol as scikit-learn's.
    return 4 * math.sqrt(eps), 100 * eps


#: Default ``(rtol, atol)`` for one computation in each dtype.
TOLERANCES: dict[str, tuple[float, float]] = {
    name: _tol(EPS[name]) for name in ("float64", "float32", "float16")
}  # float64 (6.0e-08, 2.2e-14), float32 (1.4e-03, 1.2e-05), float16 (1.3e-01, 9.8e-02)

#: Multi-step training widens the tolerance by this factor: each SGD step feeds its
#: rounding differences into the next one, so after a few hundred steps the gap between
#: two correct backends grows well past a single matmul's, while staying far below the
#: effect of a real bug (a wrong gradient changes the loss in the first digit).
TRAINING_FACTOR = 100.0

#: A central difference against an analytic derivative widens ``rtol`` by this factor:
#: its truncation error (about h² times the third derivative; 1e-8 relative in float64
#: with h = 1e-4) sits above one computation's rounding. The result is capped at
#: :data:`_MAX_NUMERICAL_RTOL` so a wrong sign or a factor of 2 always fails.
NUMERICAL_FACTOR = 16.0
_MAX_NUMERICAL_RTOL = 0.25


def machine_eps(dtype: Any, xp: Any = None) -> float:
    """Machine epsilon of a dtype name (:data:`EPS`), an array's dtype, or a dtype of ``xp``.

    Raises
    ------
    ValueError
        A name that is not in :data:`EPS`.
    TypeError
        A dtype object without ``xp`` (the namespace whose ``finfo`` knows it).
    """
    if is_array(dtype):  # an array: ask its namespace
        return float(array_namespace(dtype).finfo(dtype.dtype).eps)
    if isinstance(dtype, str):
        if dtype not in EPS:
            raise ValueError(f"unknown dtype {dtype!r}; one of {sorted(EPS)}")
        return EPS[dtype]
    if xp is None:
        raise TypeError("pass xp= with a dtype object (or pass a name or an array)")
    return float(xp.finfo(dtype).eps)


def _eps(dtype: Any) -> float:
    """As :func:`machine_eps`, for any library's dtype without its namespace; float64's
    for names outside the table (the finest there: exact dtypes need no wider margin)."""
    try:
        return machine_eps(dtype if is_array(dtype) else dtype_name(dtype))
    except ValueError:
        return EPS["float64"]


def numerical_atol(dtype: Any, h: float = 1e-4) -> float:
    """Absolute tolerance of a central difference with step ``h``.

    Each evaluation of f carries about eps·|f| rounding error and the difference divides
    it by 2h; 100·eps/h leaves a ~100x margin for |f| of order 1 (float64, h=1e-4: 2.2e-10).
    """
    return 100 * _eps(dtype) / h


def tolerance(dtype: Any, *, training: bool = False) -> tuple[float, float]:
    """``(rtol, atol)`` for a dtype (name, NumPy or backend dtype, or an array)."""
    rtol, atol = _tol(_eps(dtype))
    factor = TRAINING_FACTOR if training else 1.0
    return rtol * factor, atol * factor


def gradient_tolerance(dtype: Any, h: float) -> tuple[float, float]:
    """``(rtol, atol)`` for a central difference with step ``h`` against an exact gradient.

    float64 with the chapter's h = 1e-4: (9.5e-07, 2.2e-10); float32 with h = 5e-3:
    (2.2e-02, 2.4e-03).
    """
    rtol, _ = tolerance(dtype)
    return min(NUMERICAL_FACTOR * rtol, _MAX_NUMERICAL_RTOL), numerical_atol(dtype, h)
