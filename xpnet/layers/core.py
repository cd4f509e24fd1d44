"""The book's layers for fully connected nets: each forward beside its backward.

``forward`` keeps what ``backward`` needs on the layer, as the book's layers do, under the
book's attribute names (``dW``, ``db``, ``mask``, ``out``, ``y``, ``t``, ``loss``).
Arrays of any array-API library work; see :func:`xpnet.layers.operands` for where a
layer computes. The activations and the cross-entropy are the ones of
:mod:`xpnet.mlp` and :mod:`xpnet.losses`.
"""

from __future__ import annotations

from typing import Any

from ..losses import float_targets
from ..losses import softmax_cross_entropy_stats as _ce
from ..mlp import ACTIVATIONS
from ._common import Layer, operands

__all__ = ["Affine", "Relu", "Sigmoid", "SoftmaxWithLoss"]

_relu = ACTIVATIONS["relu"][0]
_sigmoid, _sigmoid_backprop = ACTIVATIONS["sigmoid"]


class _Activation(Layer):
    """An elementwise layer: ``out = _function(x, xp)``, kept for the backward."""

    out: Any = None
    _function: Any = None

    def forward(self, x: Any) -> Any:
        xp, x = operands(x)
        self._xp = xp
        self.out = self._function(x, xp)
        return self.out


class Relu(_Activation):
    """``max(x, 0)``; backward passes ``dout`` where the output is positive.

    Attributes
    ----------
    out : array
        The last forward's output, which backward reads.
    mask : array of bool
        Where the output is 0 (the book's ``x <= 0``), derived from :attr:`out`.
    """

    @property
    def mask(self) -> Any:
        return None if self.out is None else ~(self.out > 0)

    _function = staticmethod(_relu)

    def backward(self, dout: Any) -> Any:
        """``dout`` (the output's shape) where the output is positive, else 0: a new array
        (the book's writes into ``dout``)."""
        xp = self._xp
        # times the mask as floats, not xpnet.mlp's where(out > 0, dout, 0): one operation
        # more (what a launch-bound MLP step counts), but on a conv layer's large arrays
        # NumPy's where is 10x slower than the product
        return dout * xp.astype(self.out > 0, dout.dtype)


class Sigmoid(_Activation):
    """``1 / (1 + exp(-x))``; backward is ``dout * (1 - out) * out``.

    Attributes
    ----------
    out : array
    """

    _function = staticmethod(_sigmoid)

    def backward(self, dout: Any) -> Any:
        return _sigmoid_backprop(self.out, dout, self._xp)


class Affine(Layer):
    """``x @ W + b``, with ``x`` of any shape (N, ...) flattened to (N, D).

    Parameters
    ----------
    W : array (D, H)
    b : array (H,)

    Attributes
    ----------
    dW, db : arrays
        Gradients of the last backward, ``W``'s and ``b``'s shapes.
    x : array (N, D)
        The last forward's flattened input.
    original_x_shape : tuple
    """

    x: Any = None
    original_x_shape: tuple[int, ...] | None = None
    dW: Any = None
    db: Any = None

    def __init__(self, W: Any, b: Any) -> None:
        self.W = W
        self.b = b

    def forward(self, x: Any) -> Any:
        xp, x = operands(x, self.W)
        self._xp = xp
        self.original_x_shape = tuple(x.shape)
        if x.ndim != 2:
            x = xp.reshape(x, (int(x.shape[0]), -1))
        self.x = x
        out = x @ self.W
        if out.dtype == self.b.dtype:
            out += self.b  # our own temporary: in place, one allocation less
            return out
        return out + self.b

    def backward(self, dout: Any, *, need_dx: bool = True) -> Any:
        """Gradients into :attr:`dW`, :attr:`db`; returns ``dx`` in the input's shape.

        ``need_dx=False`` (a first layer, whose input is data) skips ``dx`` and returns None.
        """
        xp = self._xp
        self.dW = self.x.T @ dout
        self.db = xp.sum(dout, axis=0)
        if not need_dx:
            return None
        dx = dout @ self.W.T
        return (
            dx if dx.ndim == len(self.original_x_shape) else xp.reshape(dx, self.original_x_shape)
        )


class SoftmaxWithLoss(Layer):
    """Softmax and cross-entropy together: ``forward(x, t)`` returns the mean loss.

    The loss is the stable log-sum-exp form (:func:`xpnet.softmax_cross_entropy`), whose
    exact gradient is backward's ``(y - t) / N``; the book adds 1e-7 inside the log, which
    moves the loss by about 1e-7 per sample.

    Attributes
    ----------
    y : array (N, C)
        Probabilities of the last forward.
    t : array
        Its targets as given (one-hot (N, C) or labels (N,)), on ``x``'s device.
    loss : array, shape ()
        On the device; ``float(layer.loss)`` reads it back.
    """

    loss: Any = None
    y: Any = None
    t: Any = None
    _t_hot: Any = None

    def forward(self, x: Any, t: Any) -> Any:
        xp, x = operands(x)
        _, t = operands(t, x)
        self._xp = xp
        if x.ndim != 2:
            raise ValueError(f"SoftmaxWithLoss: x must have shape (N, C), got {tuple(x.shape)}")
        self.t = t
        self._t_hot = float_targets("SoftmaxWithLoss", x, t, xp)
        self.loss, self.y = _ce(x, self._t_hot, xp=xp)
        return self.loss

    def backward(self, dout: Any = 1) -> Any:
        """``dout * (y - t) / N``, shape (N, C)."""
        n = int(self.y.shape[0])
        dx = self.y - self._t_hot
        if isinstance(dout, int | float):
            dx *= dout / n  # our own temporary
            return dx
        return dx * (dout / n)
