"""Which configs train together as one stacked model, within a memory bound."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from ..evaluation import EVAL_CHUNK
from ..optimizers import OPTIMIZERS
from .configs import normalize

#: Memory bound of one stacked group (parameters, optimizer state, activations) where
#: the device does not say how much memory it has free.
DEFAULT_MAX_BYTES = 1 << 30

#: Share of the free memory one stack plans for: on a GPU half (allocator slack, the
#: evaluation's temporaries, other processes); on the host a quarter of the available RAM,
#: which other processes and the stacks waiting between halving rungs share.
DEVICE_SHARE, HOST_SHARE = 0.5, 0.25


def stack_budget(backend: Any) -> int:
    """Bytes one stacked group may take on ``backend``'s device, from its free memory now
    (:data:`DEVICE_SHARE` of a GPU's, :data:`HOST_SHARE` of the host's available RAM);
    :data:`DEFAULT_MAX_BYTES` where the library does not report it."""
    free, on_host = backend.free_memory_bytes()
    if free is None:
        return DEFAULT_MAX_BYTES
    return max(int(free * (HOST_SHARE if on_host else DEVICE_SHARE)), 1 << 20)


def stack_key(config: dict[str, Any]) -> tuple:
    """What normalized configs must share to train as one stack: layer sizes, activation,
    optimizer kind."""
    return (config["hidden_sizes"], config["activation"], config["optimizer"])


def model_bytes(
    c: dict[str, Any], d: int, classes: int, batch: int, itemsize: int, *, best: bool = False
) -> int:
    """Bytes one member of a stack needs: ``d`` inputs, ``classes`` outputs, batches of
    ``batch`` rows, ``itemsize`` bytes per element; ``best``: early stopping keeps a copy
    of the best evaluation's parameters and optimizer state too."""
    sizes = (d, *c["hidden_sizes"], classes)
    n_params = sum(a * b + b for a, b in itertools.pairwise(sizes))
    slots = len(OPTIMIZERS[c["optimizer"]].SLOTS)
    widest = max(sizes[1:])
    copies = 3 + slots + (1 + slots if best else 0)
    # params, grads, optimizer state, a saved copy; activations of a batch and an eval chunk
    return itemsize * (copies * n_params + 6 * (batch + EVAL_CHUNK) * widest)


def plan_groups(
    configs: Sequence[dict[str, Any]],
    *,
    input_size: int,
    output_size: int,
    batch_size: int = 100,
    itemsize: int = 4,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_models: int | None = None,
    best: bool = False,
) -> list[list[int]]:
    """Which configs train together: lists of indices into ``configs``, in order.

    Configs share a group when their layer sizes, activation and optimizer match; a group
    is split where it would exceed ``max_bytes`` or ``max_models`` (``best``: see
    :func:`model_bytes`).
    """
    norm = [normalize(c) for c in configs]
    groups: dict[tuple, list[int]] = {}
    for i, c in enumerate(norm):
        groups.setdefault(stack_key(c), []).append(i)
    out = []
    for members in groups.values():
        per = model_bytes(norm[members[0]], input_size, output_size, batch_size, itemsize,
                          best=best)  # fmt: skip
        k = max(1, int(max_bytes) // per)
        if max_models is not None:
            k = max(1, min(k, int(max_models)))
        out.extend(members[s : s + k] for s in range(0, len(members), k))
    return out
