"""The book's convolutional nets: chapter 7's ``SimpleConvNet`` and chapter 8's
``DeepConvNet``, on any backend.

Both are :class:`xpnet.layered_nets.LayerNet` s: ``predict``, ``loss``, ``accuracy``
(batched), ``gradient``, ``numerical_gradient``, ``save_params``/``load_params`` (``.npz``)
and ``astype("float16")``. Weights are drawn on the host in the book's order from
``numpy.random.default_rng(seed)``; layer output sizes are computed from ``input_dim``
(the book hard-codes those of 28x28 images).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from ._memory import standard_normal
from .backends import Backend, as_backend
from .layered_nets import LayerNet, dropout_rng
from .layers import Affine, Convolution, Dropout, Pooling, Relu, SoftmaxWithLoss
from .layers._im2col import out_size
from .nets import init_std, init_std_setting

__all__ = ["DeepConvNet", "SimpleConvNet"]

_SIMPLE_CONV = {"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1}


def _conv_param(p: dict[str, Any], name: str) -> tuple[int, int, int, int]:
    missing = [k for k in ("filter_num", "filter_size", "pad", "stride") if k not in p]
    if missing:
        raise ValueError(f"{name} lacks {', '.join(missing)} (filter_num, filter_size, pad, "
                         "stride)")  # fmt: skip
    values = tuple(p[k] for k in ("filter_num", "filter_size", "pad", "stride"))
    if any(isinstance(v, bool) or int(v) != v for v in values) or min(values[:2]) < 1:
        raise ValueError(f"{name} must hold integers (filter_num, filter_size >= 1), got {p}")
    return tuple(int(v) for v in values)  # type: ignore[return-value]


class SimpleConvNet(LayerNet):
    """conv - relu - pool - affine - relu - affine - softmax (the book's chapter 7).

    Parameters
    ----------
    input_dim : (C, H, W)
    conv_param : dict
        ``filter_num``, ``filter_size``, ``pad``, ``stride`` (30, 5, 0, 1).
    hidden_size, output_size : int
    weight_init_std : float or {"relu", "he", "sigmoid", "xavier"}
        0.01 as the book's, or a name for sqrt(gain / fan-in) per layer.
    backend, dtype, seed
        As for :class:`xpnet.MultiLayerNet`.

    Attributes
    ----------
    params : dict
        ``W1`` (FN, C, FS, FS), ``b1`` (FN,), ``W2`` (FN*pooled, hidden), ``b2``,
        ``W3`` (hidden, output), ``b3``.
    layers : OrderedDict
        ``Conv1, Relu1, Pool1, Affine1, Relu2, Affine2``.
    """

    def __init__(
        self,
        input_dim: tuple[int, int, int] = (1, 28, 28),
        conv_param: dict[str, int] | None = None,
        hidden_size: int = 100,
        output_size: int = 10,
        weight_init_std: float | str = 0.01,
        *,
        backend: Backend | str | None = None,
        dtype: str | None = None,
        seed: int | None = None,
    ) -> None:
        conv_param = dict(_SIMPLE_CONV if conv_param is None else conv_param)
        fn, fs, pad, stride = _conv_param(conv_param, "conv_param")
        c, h, w = (int(v) for v in input_dim)
        ch = out_size(h, fs, stride, pad, "height")
        cw = out_size(w, fs, stride, pad, "width")
        pooled = fn * out_size(ch, 2, 2, 0, "height") * out_size(cw, 2, 2, 0, "width")
        self.config = {"input_dim": [c, h, w], "conv_param": conv_param,
                       "hidden_size": int(hidden_size), "output_size": int(output_size),
                       "weight_init_std": init_std_setting(weight_init_std)}  # fmt: skip
        self.backend = as_backend(backend, dtype)
        self.dtype = self.backend.float_dtype
        rng = np.random.default_rng(seed)
        shapes = {"W1": (fn, c, fs, fs), "W2": (pooled, hidden_size),
                  "W3": (hidden_size, output_size)}  # fmt: skip
        fan_in = {"W1": c * fs * fs, "W2": pooled, "W3": hidden_size}
        self.params = {}
        for i, (key, shape) in enumerate(shapes.items(), start=1):
            std = init_std(weight_init_std, fan_in[key])
            self.params[key] = self._host(std * standard_normal(rng, shape, key))
            self.params[f"b{i}"] = self._host(np.zeros(shape[0] if i == 1 else shape[1]))
        p = self.params
        self.layers = OrderedDict()
        conv = self.layers["Conv1"] = Convolution(p["W1"], p["b1"], stride, pad)
        self.layers["Relu1"] = Relu()
        self.layers["Pool1"] = Pooling(pool_h=2, pool_w=2, stride=2)
        a1 = self.layers["Affine1"] = Affine(p["W2"], p["b2"])
        self.layers["Relu2"] = Relu()
        a2 = self.layers["Affine2"] = Affine(p["W3"], p["b3"])
        self.last_layer = SoftmaxWithLoss()
        self._link(_links([conv, a1, a2]))


class DeepConvNet(LayerNet):
    """The book's chapter 8 net (over 99% on MNIST)::

        conv - relu - conv - relu - pool -
        conv - relu - conv - relu - pool -
        conv - relu - conv - relu - pool -
        affine - relu - dropout - affine - dropout - softmax

    Parameters
    ----------
    input_dim : (C, H, W)
    conv_param_1 .. conv_param_6 : dict
        The book's defaults: 16, 16, 32, 32, 64, 64 filters of 3x3, pad 1 (2 for the
        fourth), stride 1.
    hidden_size, output_size : int
    dropout_ratio : float
        Both dropout layers' (0.5).
    backend, dtype, seed
        As for :class:`xpnet.MultiLayerNet`; ``seed`` also seeds the dropout masks.

    Notes
    -----
    As the book's, ``loss(x, t)`` computes in training mode (dropout on) unless
    ``train_flg=False``; He initialization sqrt(2 / fan-in) per layer.
    """

    _LOSS_TRAINS = True
    #: The positions of the parameter layers in :attr:`layers`, as the book's.
    PARAM_LAYERS = (0, 2, 5, 7, 10, 12, 15, 18)

    def __init__(
        self,
        input_dim: tuple[int, int, int] = (1, 28, 28),
        conv_param_1: dict[str, int] | None = None,
        conv_param_2: dict[str, int] | None = None,
        conv_param_3: dict[str, int] | None = None,
        conv_param_4: dict[str, int] | None = None,
        conv_param_5: dict[str, int] | None = None,
        conv_param_6: dict[str, int] | None = None,
        hidden_size: int = 50,
        output_size: int = 10,
        *,
        dropout_ratio: float = 0.5,
        backend: Backend | str | None = None,
        dtype: str | None = None,
        seed: int | None = None,
    ) -> None:
        given = [conv_param_1, conv_param_2, conv_param_3, conv_param_4, conv_param_5,
                 conv_param_6]  # fmt: skip
        defaults = [(16, 1), (16, 1), (32, 1), (32, 2), (64, 1), (64, 1)]
        convs = [
            _conv_param(p if p is not None else {"filter_num": n, "filter_size": 3, "pad": pad,
                                                 "stride": 1}, f"conv_param_{i + 1}")
            for i, (p, (n, pad)) in enumerate(zip(given, defaults, strict=True))
        ]  # fmt: skip
        self.backend = as_backend(backend, dtype)
        self.dtype = self.backend.float_dtype
        rng = np.random.default_rng(seed)
        c, h, w = (int(v) for v in input_dim)
        names = ("filter_num", "filter_size", "pad", "stride")
        self.config = {"input_dim": [c, h, w], "hidden_size": int(hidden_size),
                       "output_size": int(output_size), "dropout_ratio": float(dropout_ratio),
                       **{f"conv_param_{i}": dict(zip(names, p, strict=True))
                          for i, p in enumerate(convs, start=1)}}  # fmt: skip
        self.params = {}
        self.layers = []
        param_layers = []
        for i, (fn, fs, pad, stride) in enumerate(convs, start=1):
            std = np.sqrt(2.0 / (c * fs * fs))
            self.params[f"W{i}"] = self._host(std * standard_normal(rng, (fn, c, fs, fs), f"W{i}"))
            self.params[f"b{i}"] = self._host(np.zeros(fn))
            conv = Convolution(self.params[f"W{i}"], self.params[f"b{i}"], stride, pad)
            self.layers += [conv, Relu()]
            param_layers.append(conv)
            c, h, w = fn, out_size(h, fs, stride, pad, "height"), out_size(w, fs, stride, pad)
            if i % 2 == 0:
                self.layers.append(Pooling(pool_h=2, pool_w=2, stride=2))
                h, w = out_size(h, 2, 2, 0, "height"), out_size(w, 2, 2, 0, "width")
        flat = c * h * w
        drops = dropout_rng(seed)
        for i, (n_in, n_out) in enumerate([(flat, hidden_size), (hidden_size, output_size)], 7):
            std = np.sqrt(2.0 / n_in)
            self.params[f"W{i}"] = self._host(std * standard_normal(rng, (n_in, n_out), f"W{i}"))
            self.params[f"b{i}"] = self._host(np.zeros(n_out))
            affine = Affine(self.params[f"W{i}"], self.params[f"b{i}"])
            param_layers.append(affine)
            self.layers += [affine, Relu()] if i == 7 else [affine]
            self.layers.append(Dropout(dropout_ratio, seed=drops))
        self.last_layer = SoftmaxWithLoss()
        self._link(_links(param_layers))


def _links(layers: list[Any]) -> list[tuple[str, Any, str, str]]:
    """``W{i}``/``b{i}`` of the i-th parameter layer."""
    out = []
    for i, layer in enumerate(layers, start=1):
        out += [(f"W{i}", layer, "W", "dW"), (f"b{i}", layer, "b", "db")]
    return out
