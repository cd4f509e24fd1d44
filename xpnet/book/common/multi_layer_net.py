"""The book's ``common.multi_layer_net``: xpnet's :class:`~xpnet.MultiLayerNet`.

Parameters live on the chosen backend's device. The initial weights are drawn, as the
book's, from NumPy's global generator (``np.random.randn`` per layer, W1 first), so
``np.random.seed`` before the script gives the book's own run's weights. Methods given
host NumPy answer with host NumPy (``loss`` a NumPy scalar, ``predict`` an array); the
gradients stay on the device for the optimizer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import nets
from .._host import backend, is_host, to_host

__all__ = ["HostAnswers", "MultiLayerNet", "book_init"]


def book_init(net: Any, weight_init_std: Any) -> None:
    """Replace ``net``'s weights with the book's draws from NumPy's global generator."""
    sizes = net.sizes
    b = net.backend
    for i in range(1, len(sizes)):
        std = nets.init_std(weight_init_std, sizes[i - 1])
        w = std * np.random.randn(sizes[i - 1], sizes[i])
        net.params[f"W{i}"] = b.asarray(w, dtype=net.dtype)
        net.params[f"b{i}"] = b.asarray(np.zeros(sizes[i]), dtype=net.dtype)


class HostAnswers:
    """``predict`` and ``loss`` given host NumPy answer with host NumPy (the loss a NumPy
    scalar, as the book's), so the scripts' ``np.argmax`` and ``print`` work on any
    backend; given device arrays they answer with device arrays."""

    def predict(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        out = super().predict(x, *args, **kwargs)
        return to_host(out) if is_host(x) else out

    def loss(self, x: Any, t: Any, *args: Any, **kwargs: Any) -> Any:
        out = super().loss(x, t, *args, **kwargs)
        return to_host(out) if is_host(x) else out


class MultiLayerNet(HostAnswers, nets.MultiLayerNet):
    """The book's signature: ``MultiLayerNet(input_size, hidden_size_list, output_size,
    activation='relu', weight_init_std='relu', weight_decay_lambda=0)``."""

    def __init__(
        self,
        input_size: int,
        hidden_size_list: Any,
        output_size: int,
        activation: str = "relu",
        weight_init_std: Any = "relu",
        weight_decay_lambda: float = 0,
    ) -> None:
        super().__init__(
            input_size, hidden_size_list, output_size, activation, weight_init_std,
            weight_decay_lambda, backend=backend(),
        )  # fmt: skip
        book_init(self, weight_init_std)
