"""Which rows each training step sees, and gathering them a block of steps at a time.

Batch indices come from a seeded host RNG (the same on every backend), one evaluation
interval's worth per draw; the rows are gathered on the device, many steps per gather.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from ._array import itemsize

__all__ = ["BATCH_BLOCK_BYTES", "batch_blocks", "batch_chunks", "steps_per_block"]

#: Bytes of input batches gathered at once: one gather (and cast) serves a block of steps,
#: which on a GPU is one kernel launch where one per step would be 9 (the chapter's recipe,
#: uint8 pixels cast to float32: 26 steps per block).
BATCH_BLOCK_BYTES = 10 * 2**20


def batch_chunks(
    seed: int | None, n_train: int, batch_size: int, interval: int, iters: int, start: int = 0
) -> Iterator[tuple[int, np.ndarray]]:
    """The batch indices of every step, one host draw per evaluation interval.

    Yields ``(first_step, indices)`` with ``indices`` of shape (steps, batch_size). The
    draws depend only on the arguments (not on ``start``): steps before ``start`` are
    drawn and dropped, so a resumed run sees the batches of an uninterrupted one.
    """
    rng = np.random.default_rng(seed)
    step = 0
    while step < iters:
        chunk = min(interval - step % interval, iters - step)
        idx = rng.integers(0, n_train, size=(chunk, batch_size))
        if step + chunk > start:
            skip = max(0, start - step)
            yield step + skip, idx[skip:, ...]
        step += chunk


def batch_blocks(
    x: Any, t: Any, rows: Any, dtype: Any, *, max_bytes: int = BATCH_BLOCK_BYTES
) -> Iterator[tuple[Any, Any]]:
    """Each step's batch, gathered a block of steps at a time.

    Parameters
    ----------
    x : array (N, D) or (N, C, H, W)
        The inputs on the device, any dtype (``uint8`` pixels stay bytes until here).
    t : array (N, C)
        One-hot targets on the device.
    rows : integer array (S, B) or (S, K, B), on the device
        The rows of each of S steps: one batch, or one per model.
    dtype
        The floating dtype of the batches.
    max_bytes : int
        Bytes of batches gathered at once, the copy before the cast included (at least
        one step's).

    Yields
    ------
    (xb, tb) : arrays (B, D) and (B, C), or (K, B, D) and (K, B, C), per step
        Views of the block's one gathered copy.
    """
    xp = array_namespace(x)
    steps, shape = int(rows.shape[0]), tuple(int(v) for v in rows.shape[1:])
    block = min(steps, steps_per_block(x, t, math.prod(shape), dtype, max_bytes))
    for start in range(0, steps, block):
        n = min(block, steps - start)
        r = xp.reshape(rows[start : start + n, ...], (-1,))
        xb = xp.take(x, r, axis=0)
        xb = xp.astype(xb, dtype) if xb.dtype != dtype else xb
        xb = xp.reshape(xb, (n, *shape, *(int(v) for v in x.shape[1:])))
        tb = xp.reshape(xp.take(t, r, axis=0), (n, *shape, int(t.shape[1])))
        # one split of the block, not n slices: an eager JAX slice costs ~0.5 ms
        yield from zip(xp.unstack(xb), xp.unstack(tb), strict=True)


def steps_per_block(
    x: Any, t: Any, rows: int, dtype: Any, max_bytes: int = BATCH_BLOCK_BYTES
) -> int:
    """How many steps of ``rows`` rows :func:`batch_blocks` gathers at once (at least 1):
    as many as fit ``max_bytes`` with the batches in ``dtype``, their targets, and the
    gathered copy before the cast when ``x`` is of another dtype."""
    xp = array_namespace(x)
    row = math.prod(int(v) for v in x.shape[1:]) * (
        itemsize(dtype, xp) + (itemsize(x.dtype, xp) if x.dtype != dtype else 0)
    )
    per_step = rows * (row + int(t.shape[1]) * itemsize(t.dtype, xp))
    return max(1, int(max_bytes) // per_step)
