"""A data set moved to one backend's device once, for every stack that trains on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._array import labels_of, one_hot
from ..backends import Backend, as_backend, to_numpy


@dataclass
class DeviceData:
    """A data set on one backend's device, ready for :func:`xpnet.sweeps.run_group`:
    the training rows (inputs, labels, one-hot targets), the test set and the held-out
    validation rows as (inputs, labels) or None."""

    backend: Backend
    x: Any
    labels: Any
    t_hot: Any
    test: tuple[Any, Any] | None
    classes: int
    val: tuple[Any, Any] | None = None


def output_size_of(t: Any, output_size: int | None = None) -> int:
    """The nets' output size: given, else the one-hot width or the largest label + 1."""
    if output_size is not None:
        return int(output_size)
    if t.ndim == 2:
        return int(t.shape[1])
    host = to_numpy(t)
    return int(host.max()) + 1 if host.size else 1


def device_data(
    x_train: Any,
    t_train: Any,
    x_test: Any = None,
    t_test: Any = None,
    *,
    output_size: int | None = None,
    backend: Backend | str | None = None,
    dtype: str | None = None,
    x_val: Any = None,
    t_val: Any = None,
) -> DeviceData:
    """Move a data set to a backend's device once, for several ``run_group`` calls
    (``x_val``, ``t_val``: validation rows already split off the training set, see
    :func:`xpnet.validation.split_validation`)."""
    b = as_backend(backend, dtype)
    classes = output_size_of(t_train, output_size)
    x_dev, t_dev = b.asarray(x_train), b.asarray(t_train)
    xp = b.xp
    labels = labels_of(t_dev, xp)
    if t_dev.ndim == 2:
        t_hot = xp.astype(t_dev, b.float_dtype)
    else:
        t_hot = one_hot(t_dev, classes, b.float_dtype, xp)
    test = None if x_test is None else (b.asarray(x_test), labels_of(b.asarray(t_test), xp))
    val = None if x_val is None else (b.asarray(x_val), labels_of(b.asarray(t_val), xp))
    return DeviceData(b, x_dev, labels, t_hot, test, classes, val)
