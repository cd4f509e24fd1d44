"""The book's ``common.multi_layer_net``: xpnet's :class:`~xpnet.MultiLayerNet`.

Parameters live on the chosen backend's device. The initial weights are drawn, as the
book's, from NumPy's global generator (``np.random.randn`` per layer, W1 first), so
``np.random.seed`` before the script gives the book's own run's weights. Methods given
host NumPy answer with host NumPy (see :class:`HostAnswers`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import nets
from .._host import backend, is_host, to_host

__all__ = ["HostAnswers", "MultiLayerNet", "book_init"]


def book_init(net: Any, weight_init_std: Any) -> None:
    """Replace ``net``'s weights with the book's draws from NumPy's global generator."""
    b, i = net.backend, 1
    while f"W{i}" in net.params:
        n_in, n_out = (int(v) for v in net.params[f"W{i}"].shape)
        w = nets.init_std(weight_init_std, n_in) * np.random.randn(n_in, n_out)  # noqa: NPY002
        net.params[f"W{i}"] = b.asarray(w, dtype=net.dtype)
        net.params[f"b{i}"] = b.asarray(np.zeros(n_out), dtype=net.dtype)
        i += 1


class HostAnswers:
    """``predict``, ``loss``, ``gradient`` and ``numerical_gradient`` given host NumPy
    answer with host NumPy (the loss a NumPy scalar, as the book's), so the scripts'
    ``np.argmax``, ``np.abs(grad_backprop[key] - grad_numerical[key])`` and ``print`` work
    on every backend, GPUs included; given device arrays they answer with device arrays
    (the Trainer moves the data to the device once, so its steps stay there)."""

    def gradient(self, x: Any, t: Any) -> dict[str, Any]:
        grads = super().gradient(x, t)
        return {k: to_host(v) for k, v in grads.items()} if is_host(x) else grads

    def numerical_gradient(self, x: Any, t: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        grads = super().numerical_gradient(x, t, *args, **kwargs)
        return {k: to_host(v) for k, v in grads.items()} if is_host(x) else grads

    def predict(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        out = super().predict(x, *args, **kwargs)
        return to_host(out) if is_host(x) else out

    def loss(self, x: Any, t: Any, *args: Any, **kwargs: Any) -> Any:
        out = super().loss(x, t, *args, **kwargs)
        return to_host(out) if is_host(x) else out


class MultiLayerNet(HostAnswers, nets.MultiLayerNet):
    """The book's signature: ``MultiLayerNet(input_size, hidden_size_list, output_size,
    activation='relu', weight_init_std='relu', weight_decay_lambda=0)``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs, backend=backend())
        book_init(self, self.weight_init_std)
