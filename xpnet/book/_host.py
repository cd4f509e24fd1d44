"""Where the book's scripts and xpnet meet: the scripts hold NumPy, xpnet computes on its backend.

The book's scripts make their own arrays with NumPy (``np.random.randn`` weights,
``x_train[batch_mask]`` batches) and do NumPy things with what they get back
(``np.argmax(y, axis=1)``, ``np.sum(y == t)``, ``params[key] -= lr * grad[key]``).
Arrays the scripts hand to xpnet move to the backend's device; what xpnet hands back to
code that gave it host arrays is host NumPy again. On the numpy backend both moves return
the array itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backends import Backend, get_backend, to_numpy

__all__ = ["backend", "is_host", "to_device", "to_host", "use"]

_HOST = (np.ndarray, np.generic)
_current: list[Backend] = []


def backend() -> Backend:
    """The backend the book's modules compute on: the runner's, else the environment's."""
    return _current[-1] if _current else get_backend()


class use:
    """``with use(b):`` the book's modules compute on ``b`` (the runner's choice)."""

    def __init__(self, b: Backend) -> None:
        self.b = b

    def __enter__(self) -> Backend:
        _current.append(self.b)
        return self.b

    def __exit__(self, *exc: object) -> None:
        _current.pop()


def is_host(x: Any) -> bool:
    """A NumPy array or scalar: what the book's own code passes around."""
    return isinstance(x, _HOST)


def to_device(x: Any, b: Backend | None = None) -> Any:
    """A host array as an array of the backend (floating data in its dtype).

    Python numbers stay numbers: the array API mixes them into arithmetic as they are
    (``Convolution(w, 0)`` in the book's ``apply_filter.py``).
    """
    if isinstance(x, _HOST):
        b = b or backend()
        if type(x) is np.ndarray and _host_native(b):  # per layer call: skip asarray's checks
            keep = x.dtype == b.float_dtype or x.dtype.kind != "f"
            return x if keep else x.astype(b.float_dtype)
        return b.asarray(x)
    return x


_native: dict[int, tuple[Backend, bool]] = {}


def _host_native(b: Backend) -> bool:
    """Whether ``b``'s arrays are host NumPy arrays (then moving one costs nothing)."""
    known = _native.get(id(b))
    if known is None or known[0] is not b:
        known = _native[id(b)] = (b, type(b.asarray(np.zeros(1))) is np.ndarray)
    return known[1]


def to_host(x: Any) -> Any:
    """A backend array as NumPy; a 0-d result as a NumPy scalar, as the book's code gets."""
    if x is None or isinstance(x, int | float):
        return x
    out = to_numpy(x)
    return out[()] if out.ndim == 0 else out
