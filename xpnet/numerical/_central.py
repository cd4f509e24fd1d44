"""The one central difference of xpnet, chunked to a memory bound, and its unit directions."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from array_api_compat import array_namespace
from array_api_compat import device as _device

from .._array import itemsize

__all__ = ["DEFAULT_MAX_BYTES", "UnitVectors", "central", "central_difference", "chunks"]

#: Memory for one chunk of perturbed copies in the vectorized gradient (bytes).
DEFAULT_MAX_BYTES = 64 * 2**20


def central_difference(
    f: Callable[[Any], Any],
    directions: Any,
    h: float,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    bytes_per_direction: int | None = None,
) -> Any:
    """``(f(h*D) - f(-h*D)) / (2h)`` for a stack of directions ``D``, chunk by chunk.

    The one central-difference formula of xpnet: gradients, directional derivatives,
    the figures' gradient field and the nets' structured gradient all go through it.

    Parameters
    ----------
    f : callable
        Maps a stack ``(m, ...)`` of offsets (directions already multiplied by ``+h`` or
        ``-h``) to values ``(m, ...)`` with any trailing shape. One call per chunk sees
        the ``+h`` offsets of the chunk's directions followed by the ``-h`` ones.
    directions : array, shape (k, ...)
        Or anything with ``.shape`` and slicing ``directions[start:stop, ...]`` along axis 0
        that returns such an array (e.g. :class:`UnitVectors`, a lazy identity),
        so the stack is never held in full.
    h : float
        The step, already resolved (see :func:`resolve_step`).
    max_bytes : int
        Memory one call of ``f`` may use; at least one direction per call.
    bytes_per_direction : int, optional
        Memory one direction costs inside ``f``, both signs together; default the
        direction's own size in bytes times 2.

    Returns
    -------
    array, shape (k, ...)
        Whatever trailing shape ``f`` returns, on the directions' device.
    """
    k = int(directions.shape[0])
    if bytes_per_direction is None:
        first = directions[0:1, ...]
        xp = array_namespace(first)
        bytes_per_direction = 2 * itemsize(first.dtype, xp) * math.prod(first.shape[1:])
    parts = []
    for start, stop in chunks(k, bytes_per_direction, max_bytes):
        d = directions[start:stop, ...]
        xp = array_namespace(d)
        values = f(xp.concat([h * d, -h * d], axis=0))
        parts.append(central(values[: stop - start, ...], values[stop - start :, ...], h))
    if not parts:
        raise ValueError("central_difference: need at least one direction")
    return parts[0] if len(parts) == 1 else xp.concat(parts, axis=0)


def central(plus: Any, minus: Any, h: float) -> Any:
    """The chapter's formula ``(f(x + h) - f(x - h)) / (2h)`` on values already computed."""
    return (plus - minus) / (2 * h)


def chunks(n: int, per_item: int, max_bytes: int) -> list[tuple[int, int]]:
    """``(start, stop)`` ranges over ``n`` items, as many per range as fit ``max_bytes``."""
    size = max(1, min(n, int(max_bytes) // max(1, int(per_item))))
    return [(s, min(n, s + size)) for s in range(0, n, size)]


class UnitVectors:
    """The unit vectors ``e_0 .. e_{n-1}`` of ``like``'s shape, built on demand.

    Behaves as the array ``eye(n).reshape(n, *like.shape)`` for
    :func:`central_difference` (``.shape``, ``.dtype``, slicing along axis 0), but only
    the rows asked for are ever allocated, on ``like``'s device.
    """

    def __init__(self, like: Any) -> None:
        self._xp = array_namespace(like)
        self._like = like
        self.n = math.prod(like.shape)
        self.shape = (self.n, *like.shape)
        self.dtype = like.dtype

    def __getitem__(self, key: slice | tuple[slice, Any]) -> Any:
        rows = key[0] if isinstance(key, tuple) else key  # rows[a:b] or rows[a:b, ...]
        start, stop, _ = rows.indices(self.n)
        xp, dev = self._xp, _device(self._like)
        eye = xp.arange(start, stop, device=dev)[:, None] == xp.arange(self.n, device=dev)
        return xp.reshape(xp.astype(eye, self.dtype), (stop - start, *self._like.shape))
