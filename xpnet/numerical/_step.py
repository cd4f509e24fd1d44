"""The step policy of every public numerical derivative: pick ``h``, warn about coarse dtypes."""

from __future__ import annotations

import warnings
from typing import Any

from .._array import is_array
from .._tolerances import EPS, machine_eps

__all__ = ["PrecisionWarning", "default_step", "resolve_step"]


class PrecisionWarning(UserWarning):
    """Numerical derivatives in a dtype too coarse to check gradients reliably."""


def default_step(dtype: Any, /, *, xp: Any = None) -> float:
    """Default central-difference step ``h`` for a dtype.

    float64 uses the chapter's 1e-4 so its figures reproduce. Coarser dtypes use
    ``eps ** (1/3)`` to one digit, the step that balances truncation against rounding
    error for a central difference: float32 5e-3 (1e-4 there loses about three digits),
    float16 1e-1, bfloat16 2e-1.

    Parameters
    ----------
    dtype : str, dtype or array
        A name (``"float32"``), an array (its dtype), or a dtype of ``xp``.
    xp : namespace, optional
        Needed only for a dtype object (the namespace whose ``finfo`` knows it).
    """
    eps = _eps(dtype, xp)
    if eps <= EPS["float64"]:  # float64 (and anything finer): the chapter's step
        return 1e-4
    return float(f"{eps ** (1 / 3):.0e}")


def _eps(dtype: Any, xp: Any) -> float:
    try:
        return machine_eps(dtype, xp)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"default_step: {exc}") from None


def resolve_step(
    x: Any, h: float | None = None, /, *, xp: Any = None, stacklevel: int = 2
) -> float:
    """The step policy of every public numerical derivative: warn, then pick ``h``.

    Warns :class:`PrecisionWarning` when the dtype is coarser than float64, then returns
    ``h`` or :func:`default_step` of the dtype. Call it once, in the public entry point;
    inner helpers take the resolved step and never warn again.

    Parameters
    ----------
    x : array, or a dtype with ``xp=``
        What decides the dtype.
    h : float, optional
        The caller's step; returned as a float when given.
    xp : namespace, optional
        With a dtype object for ``x``.
    stacklevel : int
        As :func:`warnings.warn`'s, counted from the caller of ``resolve_step``: the
        default 2 points at the code that called the public function.

    Returns
    -------
    float
    """
    eps = _eps(x, xp)
    if eps > EPS["float64"]:
        dtype = x.dtype if is_array(x) else x
        warnings.warn(
            f"numerical derivative in {_name(dtype)}: expect only a few correct digits; "
            "use float64 to check gradients",
            PrecisionWarning,
            stacklevel=stacklevel + 1,
        )
    return default_step(x, xp=xp) if h is None else float(h)


def _name(dtype: Any) -> str:
    # Display only: "torch.float32" and "float32" both read as float32.
    return str(dtype).rsplit(".", 1)[-1]
