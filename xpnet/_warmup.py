"""One untimed training step and evaluation chunk before the loop, on backends that compile.

CuPy compiles each new kernel on first use (0.2-0.3 s each, about 60 for a training run),
torch on CUDA loads kernel modules and picks cuBLAS algorithms, XLA compiles every
operation for each shape, and a compiled step (:mod:`xpnet.step`) compiles on its first
call: timed as training, that is seconds at step 0. The warm-up runs
the same kernels once on the loop's shapes and then puts everything back as it was, so
the run's numbers are those of a run without it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .backends import Backend, to_numpy
from .evaluation import EVAL_CHUNK

__all__ = ["warm_up"]


def warm_up(
    b: Backend,
    net: Any,
    optimizer: Any,
    one_step: Callable[[Any, Any], Any],
    batches: Callable[[Any], Any],
    x: Any,
    t: Any,
    batch_size: int,
    scale: float | None,
) -> float:
    """Run one step and one evaluation chunk, restore the net and optimizer; seconds taken.

    Parameters
    ----------
    b : Backend
    net, optimizer
        Trained in the loop; their parameters and state are copied first and put back.
    one_step : callable ``(xb, tb) -> loss``
        The loop's step.
    batches : callable ``(rows) -> iterator of (xb, tb)``
        The loop's batch gather, given (1, batch_size) device rows.
    x, t : arrays
        The training inputs and labels on the device.
    batch_size : int
        Rows of the step: its batch is the first rows of the set, drawn from no RNG, so the
        loop's batch draws are unchanged.
    scale : float or None
        The input scale, as in the loop.

    Returns
    -------
    float
        Wall seconds of the warm-up, the device synchronized.
    """
    start = time.perf_counter()
    xp = b.xp
    params = {k: xp.asarray(v, copy=True) for k, v in net.params.items()}
    saved = None if optimizer is None else _optimizer_state(optimizer, xp)
    # a layer net's running statistics and dropout generators move with every step too
    layer_state = net.training_state() if hasattr(net, "training_state") else None
    n = int(x.shape[0])
    rows = b.asarray(np.arange(batch_size, dtype=np.int64).reshape(1, -1) % n)
    xb, tb = next(iter(batches(rows)))
    loss = one_step(xb, tb)
    chunk = min(n, EVAL_CHUNK)
    correct = net.correct_total(x[:chunk, ...], t[:chunk, ...], scale=scale)
    to_numpy(xp.stack([xp.astype(loss, xp.float32), xp.astype(correct, xp.float32)]))
    for k, v in params.items():  # the copies themselves: nothing else holds them
        net.params[k] = v
    if saved is not None:
        optimizer.iter, optimizer.state = saved
    if layer_state is not None:
        net.set_training_state(layer_state)
    b.synchronize()
    return time.perf_counter() - start


def _optimizer_state(optimizer: Any, xp: Any) -> tuple[int, dict[str, dict[str, Any]]]:
    state = {s: {k: xp.asarray(v, copy=True) for k, v in d.items()}
             for s, d in optimizer.state.items()}  # fmt: skip
    return optimizer.iter, state
