"""Batch normalization and dropout, with the book's train/test modes.

Dropout's masks are drawn on the host from a seeded NumPy generator and moved to the
input's device, so every backend drops the same units.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from array_api_compat import device as device_of

from ._common import Layer, like, operands

__all__ = ["BN_EPS", "BatchNormalization", "Dropout"]

#: Added to the variance before the square root, the book's ``10e-7``.
BN_EPS = 10e-7


class BatchNormalization(Layer):
    """Normalize each feature over the batch, then scale by ``gamma`` and shift by ``beta``.

    Parameters
    ----------
    gamma, beta : array (D,)
        ``D`` is the number of features of a flattened sample: an (N, C, H, W) input is
        normalized as (N, C*H*W), as the book's.
    momentum : float
        Running statistics become ``momentum * running + (1 - momentum) * batch``.
    running_mean, running_var : array (D,), optional
        Zeros, on the input's device, when omitted (created at the first forward).

    Attributes
    ----------
    dgamma, dbeta : arrays (D,)
        Gradients of the last backward.
    running_mean, running_var : arrays (D,)
        Used by ``forward(x, train_flg=False)``; updated by every training forward.
    xc, xn, std, batch_size
        What backward needs from the last training forward.
    """

    input_shape: tuple[int, ...] | None = None
    batch_size: int | None = None
    xc: Any = None
    xn: Any = None
    std: Any = None
    dgamma: Any = None
    dbeta: Any = None

    def __init__(
        self,
        gamma: Any,
        beta: Any,
        momentum: float = 0.9,
        running_mean: Any = None,
        running_var: Any = None,
    ) -> None:
        self.gamma = gamma
        self.beta = beta
        self.momentum = momentum
        self.running_mean = running_mean
        self.running_var = running_var

    def forward(self, x: Any, train_flg: bool = True) -> Any:
        """``gamma * normalized(x) + beta``, ``x``'s shape.

        Training normalizes with the batch's mean and variance and updates the running
        statistics; ``train_flg=False`` uses the running statistics.
        """
        xp, x = operands(x, self.gamma)
        self._xp = xp
        self.input_shape = tuple(x.shape)
        if x.ndim != 2:
            x = xp.reshape(x, (int(x.shape[0]), -1))
        d = int(x.shape[1])
        if self.running_mean is None:
            self.running_mean = xp.zeros(d, dtype=x.dtype, device=device_of(x))
            self.running_var = xp.zeros(d, dtype=x.dtype, device=device_of(x))
        running_mean = like(self.running_mean, x, xp)
        running_var = like(self.running_var, x, xp)
        if train_flg:
            mu = xp.mean(x, axis=0)
            xc = x - mu
            var = xp.mean(xc * xc, axis=0)
            std = xp.sqrt(var + BN_EPS)
            xn = xc / std
            self.batch_size = int(x.shape[0])
            self.xc, self.xn, self.std = xc, xn, std
            m = self.momentum
            self.running_mean = m * running_mean + (1 - m) * mu
            self.running_var = m * running_var + (1 - m) * var
        else:
            xn = (x - running_mean) / xp.sqrt(running_var + BN_EPS)
        out = self.gamma * xn + self.beta
        return out if out.ndim == len(self.input_shape) else xp.reshape(out, self.input_shape)

    def backward(self, dout: Any) -> Any:
        """Gradients into :attr:`dgamma`, :attr:`dbeta`; returns ``dx`` (the input's shape).

        Needs a training forward before it (the batch statistics).
        """
        xp = self._xp
        if self.xc is None:
            raise RuntimeError("BatchNormalization.backward needs a forward with train_flg=True")
        if dout.ndim != 2:
            dout = xp.reshape(dout, (int(dout.shape[0]), -1))
        n = self.batch_size
        self.dbeta = xp.sum(dout, axis=0)
        self.dgamma = xp.sum(self.xn * dout, axis=0)
        dxn = self.gamma * dout
        dxc = dxn / self.std
        dstd = -xp.sum((dxn * self.xc) / (self.std * self.std), axis=0)
        dvar = 0.5 * dstd / self.std
        dxc = dxc + (2.0 / n) * self.xc * dvar
        dmu = xp.sum(dxc, axis=0)
        dx = dxc - dmu / n
        return dx if dx.ndim == len(self.input_shape) else xp.reshape(dx, self.input_shape)


class Dropout(Layer):
    """Zero each unit with probability ``dropout_ratio`` while training.

    Parameters
    ----------
    dropout_ratio : float
        In [0, 1).
    seed : int, numpy.random.Generator or None
        The host generator of the masks (a Generator is used as it is, so layers of one
        net can share one). None: fresh entropy, a different mask sequence every run.

    Attributes
    ----------
    mask : array of bool
        The last training forward's kept units, on the input's device.

    Notes
    -----
    As the book's: training keeps units unscaled, testing multiplies by
    ``1 - dropout_ratio``.
    """

    mask: Any = None
    _keep: Any = None

    def __init__(self, dropout_ratio: float = 0.5, seed: Any = None) -> None:
        ratio = float(dropout_ratio)
        if not 0 <= ratio < 1:
            raise ValueError(f"dropout_ratio must be in [0, 1), got {dropout_ratio!r}")
        self.dropout_ratio = ratio
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    def forward(self, x: Any, train_flg: bool = True) -> Any:
        xp, x = operands(x)
        self._xp = xp
        if train_flg:
            keep = self.rng.random(tuple(int(v) for v in x.shape)) > self.dropout_ratio
            self.mask = xp.asarray(keep, device=device_of(x))
            self._keep = xp.astype(self.mask, x.dtype)  # a product: NumPy's where is 10x slower
            return x * self._keep
        return x * (1.0 - self.dropout_ratio)

    def backward(self, dout: Any) -> Any:
        return dout * self._keep
