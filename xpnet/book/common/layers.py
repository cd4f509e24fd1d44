"""The book's ``common.layers``: xpnet's layers, computing on the chosen backend.

The book's nets make their parameters with ``np.random.randn`` and pass NumPy batches;
xpnet's layers compute where their parameters are, so these classes move host
parameters and inputs to the backend for each call (on the numpy backend that moves
nothing) and answer in the kind of array their forward was given: host NumPy for the
book's nets, whose scripts then call ``np.argmax`` on the scores and update
``params[key] -= lr * grad[key]``; device arrays for device input. Parameters set on the
layer (``layer.W = ...``, changed in place by an optimizer or ``numerical_gradient``)
are read afresh at every forward. Dropout draws its masks from NumPy's global generator,
as the book's (``np.random.seed`` makes a run repeatable).
"""

from __future__ import annotations

from typing import Any

import numpy as np  # the book's `from common.layers import *` brings `np` too

from ... import layers as _xl
from .._host import backend, is_host, to_device, to_host
from . import functions as _functions

# the book's common/layers.py starts with `from common.functions import *`, and so does this
from .functions import *  # noqa: F403
from .util import col2im, im2col

__all__ = ["Affine", "BatchNormalization", "Convolution", "Dropout", "Pooling", "Relu",
           "Sigmoid", "SoftmaxWithLoss", "col2im", "im2col"]  # fmt: skip
__all__ += _functions.__all__


class _OnBackend:
    """Runs a layer's forward and backward on the backend, answering in the input's kind.

    ``_PARAMS``: attributes holding arrays the script gives (moved for each forward and
    kept as given); ``_GRADS``: attributes backward sets, handed back as host arrays after
    a host forward.
    """

    _PARAMS: tuple[str, ...] = ()
    _GRADS: tuple[str, ...] = ()
    _host_call = False
    _moved: dict[str, tuple[Any, Any]] = {}

    def _params_on(self, fresh: bool) -> dict[str, tuple[Any, Any]]:
        """Swap host parameters for device copies; ``fresh=False`` reuses forward's."""
        moved = {}
        b = backend()
        for name in self._PARAMS:
            given = getattr(self, name)
            if not is_host(given):
                continue
            old = self._moved.get(name)
            dev = old[1] if (not fresh and old is not None and old[0] is given) else None
            moved[name] = (given, to_device(given, b) if dev is None else dev)
            setattr(self, name, moved[name][1])
        return moved

    def _restore(self, moved: dict[str, tuple[Any, Any]]) -> None:
        for name, (given, dev) in moved.items():
            now = getattr(self, name)  # a forward may replace one (running statistics)
            setattr(self, name, given if now is dev else to_host(now))
        self._moved = moved

    def _run(self, method: Any, fresh: bool, x: Any, *args: Any, **kwargs: Any) -> Any:
        moved = self._params_on(fresh)
        try:
            out = method(to_device(x) if is_host(x) else x, *args, **kwargs)
        finally:
            self._restore(moved)
        if not self._host_call:
            return out
        for name in self._GRADS if not fresh else ():
            setattr(self, name, to_host(getattr(self, name)))
        return to_host(out)

    def forward(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        self._host_call = is_host(x)
        return self._run(super().forward, True, x, *args, **kwargs)

    def backward(self, dout: Any = 1, *args: Any, **kwargs: Any) -> Any:
        return self._run(super().backward, False, dout, *args, **kwargs)


class Relu(_OnBackend, _xl.Relu):
    pass


class Sigmoid(_OnBackend, _xl.Sigmoid):
    pass


class Affine(_OnBackend, _xl.Affine):
    _PARAMS = ("W", "b")
    _GRADS = ("dW", "db")


class SoftmaxWithLoss(_OnBackend, _xl.SoftmaxWithLoss):
    def forward(self, x: Any, t: Any) -> Any:
        # The book's rule: targets with as many entries as x are one-hot, else labels
        # (ch07/gradient_check.py passes labels of shape (1, 1)).
        if t.ndim == x.ndim and t.shape[-1] == 1 != x.shape[-1]:
            t = t[..., 0]
        if is_host(x) and is_host(t):
            t = to_device(t)
        return super().forward(x, t)


class BatchNormalization(_OnBackend, _xl.BatchNormalization):
    _PARAMS = ("gamma", "beta", "running_mean", "running_var")
    _GRADS = ("dgamma", "dbeta")


class Dropout(_OnBackend, _xl.Dropout):
    def __init__(self, dropout_ratio: float = 0.5) -> None:
        super().__init__(dropout_ratio)
        self.rng = GlobalRandom()


class Convolution(_OnBackend, _xl.Convolution):
    _PARAMS = ("W", "b")
    _GRADS = ("dW", "db")

    def _params_on(self, fresh: bool) -> dict[str, tuple[Any, Any]]:
        if isinstance(self.b, int | float):  # apply_filter.py's Convolution(w, 0)
            self.b = np.full(int(self.W.shape[0]), float(self.b))
        return super()._params_on(fresh)


class Pooling(_OnBackend, _xl.Pooling):
    pass


class GlobalRandom:
    """NumPy's global generator behind a Generator's ``random``: the book's masks."""

    @staticmethod
    def random(shape: tuple[int, ...]) -> np.ndarray:
        return np.random.random_sample(shape)  # noqa: NPY002 (the book's generator)
