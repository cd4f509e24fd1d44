"""A stack's arrays: built from K nets' parameters, cut to some models, parked on the host
while other stacks use the device, and one member's parameters and optimizer state handed
out as :func:`xpnet.train` would leave them for that config."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backends import Backend, to_numpy
from ..optimizers import OPTIMIZERS, get_optimizer


def member_params(host: dict[str, np.ndarray], row: int) -> dict[str, np.ndarray]:
    """One member's parameters from host copies of stacked ones: ``Wi`` (K, D, H) ->
    (D, H), ``bi`` (K, 1, H) -> (H,), each a contiguous array of its own."""
    return {n: np.ascontiguousarray(a[row] if n[0] == "W" else a[row, 0]) for n, a in host.items()}


def member_optimizer_state(
    config: dict[str, Any], slots: dict[str, dict[str, np.ndarray]], row: int, steps: int
) -> dict[str, np.ndarray]:
    """What ``optimizer.state_dict()`` of the config's own run holds after ``steps``
    updates, from host copies of the stack's optimizer slots (see
    :meth:`xpnet.optimizers.Optimizer.state_dict`)."""
    name = config["optimizer"]
    opt = get_optimizer(name, **{h: config[h] for h in OPTIMIZERS[name].HYPER})
    opt.iter = int(steps)
    for slot, arrays in slots.items():
        opt.state[slot] = member_params(arrays, row)
    return opt.state_dict()


def host_copy(arrays: dict[str, Any]) -> dict[str, np.ndarray]:
    """Host NumPy copies of a dict of stacked arrays (NumPy arrays pass as they are)."""
    return {n: to_numpy(a) for n, a in arrays.items()}


def to_device(host: dict[str, np.ndarray], backend: Backend, dtype: Any) -> dict[str, Any]:
    """Parked arrays back on ``backend``'s device in the layout :func:`stack_params` gives
    them: ``Wi`` model axis second in memory (a view of a (D, K, H) array) where
    :func:`model_axis_second` says so, so the matmuls meet the same memory as before the
    stack was parked."""
    xp = backend.xp
    out = {}
    for n, a in host.items():
        if n[0] == "W" and a.ndim == 3 and model_axis_second(n, backend):
            inner = np.ascontiguousarray(np.transpose(a, (1, 0, 2)))
            out[n] = xp.permute_dims(backend.asarray(inner, dtype=dtype), (1, 0, 2))
        else:
            out[n] = backend.asarray(a, dtype=dtype)
    return out


def stack_params(hosts: list[dict[str, Any]], like: Backend, dtype: Any) -> dict[str, Any]:
    """K nets' host parameters as one stacked set on ``like``'s backend (a Backend).

    ``Wi`` becomes (K, D_in, D_out) stored model axis second (a transposed view of a
    (D_in, K, D_out) array), so a batch shared by all K meets it in one matrix product;
    on a backend with ``contiguous_stacked_weights`` (CuPy) the weights of layers 2..
    are C-contiguous instead. ``bi`` becomes (K, 1, D_out).
    """
    stacked = {}
    for name in hosts[0]:
        if name[0] == "W":
            stacked[name] = np.stack([h[name] for h in hosts])
        else:
            stacked[name] = np.stack([h[name] for h in hosts])[:, None, :]
    return to_device(stacked, like, dtype)


def per_model(values: list[float], like: Any, b: Backend) -> Any:
    """One hyperparameter for K models: a number when they agree, else (K, 1, 1)."""
    if all(v == values[0] for v in values):
        return float(values[0])
    return b.asarray(np.asarray(values, dtype=np.float64).reshape(-1, 1, 1), dtype=like.dtype)


def model_axis_second(name: str, b: Backend) -> bool:
    """Whether stacked weight ``name`` is stored model axis second (see :func:`stack_params`)."""
    return name == "W1" or not b.contiguous_stacked_weights


def take_models(name: str, a: Any, index: Any, b: Backend) -> Any:
    """The models ``index`` of a stacked array: ``Wi`` (K, D, H) kept in the layout of
    :func:`stack_params` (model axis second: the shared-batch matmul reads it without a
    copy); anything else (K, ...) along its first axis."""
    xp = b.xp
    if name[0] == "W" and model_axis_second(name, b):
        return xp.permute_dims(xp.take(xp.permute_dims(a, (1, 0, 2)), index, axis=1), (1, 0, 2))
    return xp.take(a, index, axis=0)


def per_model_take(v: Any, index: Any, xp: Any) -> Any:
    """A hyperparameter of the survivors: a number stays; a (K, 1, 1) array is cut."""
    return v if isinstance(v, int | float) else xp.take(v, index, axis=0)
