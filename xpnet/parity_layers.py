"""Parity checks of the layers and conv nets, for :data:`xpnet.parity.CHECKS`.

Each check takes a backend (in the dtype under test) and returns named host arrays; the
reference is the same call on NumPy in float64. ``LAYER_CHECKS`` maps a name to the
check and its :class:`xpnet.parity.Check` flags.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .backends import Backend, to_numpy
from .convnets import DeepConvNet, SimpleConvNet
from .layers import BatchNormalization, Convolution, Pooling
from .trainer import Trainer

__all__ = ["LAYER_CHECKS"]

_SEED = 20261202
_CONV = {"filter_num": 4, "filter_size": 3, "pad": 1, "stride": 1}


def _host(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(_SEED + seed).standard_normal(shape)


def _layers_check(b: Backend) -> dict[str, np.ndarray]:
    """Convolution (strided, padded), overlapping pooling and batch norm, both ways."""
    x = b.asarray(_host((2, 3, 9, 8)))
    conv = Convolution(b.asarray(_host((4, 3, 3, 3), 1)), b.asarray(_host((4,), 2)), 2, 1)
    pool = Pooling(3, 3, 2, 1)
    bn = BatchNormalization(b.asarray(1 + 0.1 * _host((4 * 5 * 4,), 3)),
                            b.asarray(_host((4 * 5 * 4,), 4)))  # fmt: skip
    y = bn.forward(conv.forward(x), train_flg=True)
    z = pool.forward(y)
    dy = pool.backward(b.asarray(_host(tuple(z.shape), 5)))
    dx = conv.backward(bn.backward(dy))
    out = {"z": z, "dx": dx, "dW": conv.dW, "db": conv.db, "dgamma": bn.dgamma}
    return {k: to_numpy(v) for k, v in out.items()}


def _images(n: int, side: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(_SEED + seed)
    return rng.random((n, 1, side, side)), rng.integers(0, 10, n)


def _simple(b: Backend) -> SimpleConvNet:
    return SimpleConvNet((1, 12, 12), _CONV, hidden_size=20, backend=b, seed=1,
                         weight_init_std=0.1)  # fmt: skip


def _gradient_check(make: Any, side: int) -> Any:
    def fn(b: Backend) -> dict[str, np.ndarray]:
        loss, grads = make(b).loss_and_gradient(*_images(8, side))
        return {"loss": to_numpy(loss), **{k: to_numpy(v) for k, v in grads.items()}}

    return fn


def _deep(b: Backend) -> DeepConvNet:
    return DeepConvNet((1, 16, 16), backend=b, seed=1, dropout_ratio=0.0)


def _numerical_check(b: Backend) -> dict[str, np.ndarray]:
    net = SimpleConvNet((1, 6, 6), {**_CONV, "filter_num": 2, "pad": 0}, hidden_size=4,
                        output_size=3, weight_init_std=0.3, backend=b, seed=1)  # fmt: skip
    x = np.random.default_rng(_SEED).standard_normal((3, 1, 6, 6))
    grads = net.numerical_gradient(x, np.array([0, 1, 2]))
    return {k: to_numpy(v) for k, v in grads.items()}


def _training_check(b: Backend) -> dict[str, np.ndarray]:
    x, t = _images(400, 12, 1)  # 200 test images: parity allows one argmax tie in 200
    t = (x[:, 0, :6, :].sum(axis=(1, 2)) > x[:, 0, 6:, :].sum(axis=(1, 2))).astype(np.int64)
    net = _simple(b)
    adam = {"lr": 0.001}
    tr = Trainer(net, x[:200], t[:200], x[200:], t[200:], epochs=10, mini_batch_size=20,
                 optimizer="adam", optimizer_param=adam, verbose=False, seed=3)  # fmt: skip
    tr.train()
    out = {"loss": np.asarray(tr.train_loss_list), "test_acc": np.asarray(tr.test_acc_list)}
    out.update({k: to_numpy(v) for k, v in net.params.items()})
    return out


#: name -> (check, Check flags)
LAYER_CHECKS: dict[str, tuple[Any, dict[str, bool]]] = {
    "layers[conv, pool, batch norm]": (_layers_check, {}),
    "SimpleConvNet.gradient": (_gradient_check(_simple, 12), {}),
    "DeepConvNet.gradient": (_gradient_check(_deep, 16), {}),
    "SimpleConvNet.numerical_gradient": (
        _numerical_check,
        {"float64_only": True, "numerical": True},
    ),  # fmt: skip
    "SimpleConvNet training[100 steps, adam]": (_training_check, {"training": True}),
}
