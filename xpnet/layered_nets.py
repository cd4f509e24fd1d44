"""Nets built from the book's layers (:mod:`xpnet.layers`): the shared machinery and the
next chapter's ``MultiLayerNetExtend`` (weight decay, dropout, batch normalization).

Parameters live on the backend's device; initial weights are drawn on the host from
``numpy.random.default_rng(seed)``, dropout masks from a second host generator derived
from the same seed, so every backend starts from the same weights and drops the same
units. Methods accept host NumPy arrays and move them to the device.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
from array_api_compat import is_writeable_array

from ._array import chunk_sums, count_right, labels_of
from ._files import atomic_write
from .backends import Backend
from .layers import (
    Affine,
    BatchNormalization,
    Convolution,
    Dropout,
    Relu,
    Sigmoid,
    SoftmaxWithLoss,
)
from .mlp import decay_term
from .nets import Classifier, MultiLayerNet, init_std_setting
from .numerical import gradient_with_step, resolve_step, stacked

__all__ = ["LayerNet", "MultiLayerNetExtend", "dropout_rng"]

#: Rows per forward pass in :meth:`LayerNet.accuracy`, as the book's conv nets.
EVAL_BATCH = 100

_TRAIN_MODE_LAYERS = (Dropout, BatchNormalization)


def dropout_rng(seed: int | None) -> np.random.Generator:
    """The host generator of a net's dropout masks: another stream than its weights'."""
    return np.random.default_rng(None if seed is None else [int(seed), 1])


class LayerNet(Classifier):
    """A stack of layers ending in ``SoftmaxWithLoss``: what the book's layered nets share.

    Subclasses build ``params`` (arrays on ``backend``), ``layers`` (an ordered dict or a
    list, as in the book), ``last_layer`` and call :meth:`_link` with which layer attribute
    holds which parameter. Layers read their parameters from ``params`` at every pass,
    so optimizers that replace arrays (JAX) and :meth:`load_params` need no re-wiring.
    """

    backend: Backend
    dtype: Any
    params: dict[str, Any]
    layers: Any
    last_layer: SoftmaxWithLoss
    weight_decay_lambda: float = 0.0
    #: ``loss(x, t)``'s default mode (the book's DeepConvNet computes its loss training).
    _LOSS_TRAINS = False
    _EVAL_ROWS = EVAL_BATCH

    def _link(self, links: list[tuple[str, Any, str, str]]) -> None:
        """``(param key, layer, attribute, gradient attribute)`` for every parameter."""
        self._links = links

    def _layer_list(self) -> list[Any]:
        return list(self.layers.values()) if isinstance(self.layers, dict) else list(self.layers)

    def _bind(self) -> None:
        for key, layer, attr, _ in self._links:
            setattr(layer, attr, self.params[key])

    #: The constructor's arguments (JSON values): what a checkpoint rebuilds the net from.
    config: dict[str, Any]

    @property
    def output_size(self) -> int:
        return int(self.last_param("b").shape[-1])

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one input row: ``(C, H, W)`` for conv nets, ``(D,)`` otherwise."""
        shape = self.config.get("input_dim", (self.config.get("input_size"),))
        return tuple(int(v) for v in shape)

    def last_param(self, kind: str) -> Any:
        return [self.params[k] for k, *_ in self._links if k.startswith(kind)][-1]

    # --- forward -----------------------------------------------------------------------

    def predict(self, x: Any, train_flg: bool = False) -> Any:
        """Scores of the last layer before the softmax, (N, output_size)."""
        x = self._input(x)
        self._bind()
        for layer in self._layer_list():
            if isinstance(layer, _TRAIN_MODE_LAYERS):
                x = layer.forward(x, train_flg)
            else:
                x = layer.forward(x)
        return x

    def loss(self, x: Any, t: Any, train_flg: bool | None = None) -> Any:
        """Mean cross-entropy (plus the L2 term), a 0-d array on the device.

        ``train_flg`` defaults to the book's choice for this net.
        """
        train = self._LOSS_TRAINS if train_flg is None else train_flg
        x = self._input(x)
        y = self.predict(x, train)
        loss = self.last_layer.forward(y, self._targets(t, y))
        if self.weight_decay_lambda:
            loss = loss + decay_term(self.params, self.weight_decay_lambda)
        return loss

    def logits(self, x: Any, *, scale: float | None = None) -> Any:
        """Test-mode scores before the softmax, (N, output_size)."""
        return self.predict(self._scaled(x, scale), False)

    def totals(self, x: Any, t: Any, *, scale: float | None = None) -> tuple[Any, Any]:
        """Correct rows and summed cross-entropy (no weight decay) over a whole set (``t``
        labels or one-hot), in test mode, :data:`EVAL_BATCH` rows per pass: two 0-d arrays
        on the device."""
        xp = self.backend.xp

        def part(start: int, stop: int) -> tuple[Any, Any]:
            y = self.logits(x[start:stop, ...], scale=scale)
            tb = self._targets(t[start:stop], y)
            loss_sum = self.last_layer.forward(y, tb) * (stop - start)
            return count_right(y, labels_of(tb, xp), xp), loss_sum

        return chunk_sums(int(x.shape[0]), EVAL_BATCH, part)

    def correct_count(self, x: Any, t: Any, *, scale: float | None = None) -> Any:
        """Rows whose largest score is the label: a 0-d integer array (no host sync)."""
        xp = self.backend.xp
        x = self._scaled(x, scale)
        return count_right(self.predict(x, False), labels_of(self._targets(t, x), xp), xp)

    def accuracy(
        self, x: Any, t: Any, batch_size: int | None = None, *, scale: float | None = None
    ) -> float:
        """Fraction of rows classified right, in test mode, ``batch_size`` rows at a time.

        One read-back at the end. Unlike the book's, a last partial batch is counted too
        (the book drops it but divides by all ``N``). ``scale`` multiplies the inputs.
        """
        return self._fraction(self.correct_total(x, t, scale=scale, batch_size=batch_size), x)

    # --- backward ----------------------------------------------------------------------

    def loss_and_gradient(
        self, x: Any, t: Any, *, scale: float | None = None, step: Any = 1.0
    ) -> tuple[Any, dict[str, Any]]:
        """The training-mode loss and ``step`` times its gradient, from one forward pass.

        ``scale`` multiplies the inputs (1/255 for raw pixels); ``step`` the gradients
        (:func:`xpnet.train` passes the SGD learning rate).
        """
        x = self._scaled(x, scale)
        loss = self.loss(x, t, train_flg=True)
        dout = self.last_layer.backward(1)
        layers = self._layer_list()
        for i in range(len(layers) - 1, 0, -1):
            dout = layers[i].backward(dout)
        first = layers[0]
        if isinstance(first, Affine | Convolution):  # its input is data: no dx needed
            first.backward(dout, need_dx=False)
        else:
            first.backward(dout)
        grads = {}
        one = isinstance(step, int | float) and step == 1
        for key, layer, _, grad_attr in self._links:
            g = getattr(layer, grad_attr)
            if self.weight_decay_lambda and key.startswith("W"):
                g = g + self.weight_decay_lambda * self.params[key]
            grads[key] = g if one else g * step
        return loss, grads

    def numerical_gradient(self, x: Any, t: Any, *, h: float | None = None) -> dict[str, Any]:
        """Central-difference gradients of the training-mode loss, keyed as :attr:`params`.

        The chapter's element-by-element loop (:func:`xpnet.numerical_gradient`), or on
        immutable arrays (JAX) the same differences one perturbed copy at a time. Batch
        normalization's running statistics are restored afterwards. Dropout draws a new
        mask for every evaluation, as in the book: check dropout nets with
        ``dropout_ratio=0``, or layer by layer.
        """
        x = self._input(x)
        t = self._targets(t, x)
        step = resolve_step(next(iter(self.params.values())), h, stacklevel=2)
        saved = self._running_stats()
        xp = self.backend.xp

        def loss(_: Any) -> Any:  # the chapter's way: the parameter is perturbed in place
            return self.loss(x, t, train_flg=True)

        grads = {}
        try:
            for key, p in self.params.items():
                if is_writeable_array(p):
                    grads[key] = gradient_with_step(loss, p, step)
                else:
                    f = stacked(self._loss_of(key, x, t), xp)
                    grads[key] = gradient_with_step(f, p, step, batched=True)
        finally:
            self._restore_running_stats(saved)
        return grads

    def _loss_of(self, key: str, x: Any, t: Any) -> Callable[[Any], Any]:
        """The training-mode loss as a function of ``params[key]`` (put back after)."""

        def f(value: Any) -> Any:
            old = self.params[key]
            self.params[key] = value
            try:
                return self.loss(x, t, train_flg=True)
            finally:
                self.params[key] = old

        return f

    def _running_stats(self) -> list[tuple[Any, Any, Any]]:
        return [(bn, bn.running_mean, bn.running_var) for bn in self._layer_list()
                if isinstance(bn, BatchNormalization)]  # fmt: skip

    @staticmethod
    def _restore_running_stats(saved: list[tuple[Any, Any, Any]]) -> None:
        for bn, mean, var in saved:
            bn.running_mean, bn.running_var = mean, var

    def training_state(self) -> dict[str, Any]:
        """What training changes besides :attr:`params`: batch normalization's running
        statistics (``running_mean1``, ``running_var1``, ... in layer order, device arrays)
        and ``"rng"``, the dropout generators' states (JSON values)."""
        state: dict[str, Any] = {}
        for i, (_, mean, var) in enumerate(self._running_stats(), start=1):
            if mean is not None:
                state[f"running_mean{i}"], state[f"running_var{i}"] = mean, var
        state["rng"] = [g.bit_generator.state for g in self._dropout_rngs()]
        return state

    def set_training_state(self, state: dict[str, Any]) -> None:
        """Put back what :meth:`training_state` returned (arrays of any library)."""
        for i, (bn, _, _) in enumerate(self._running_stats(), start=1):
            mean, var = state.get(f"running_mean{i}"), state.get(f"running_var{i}")
            # absent: the layer has not trained yet, its statistics start from zero
            bn.running_mean = None if mean is None else self._host(mean)
            bn.running_var = None if var is None else self._host(var)
        # zip's strict check: as many generator states as the net has generators
        for g, s in zip(self._dropout_rngs(), state.get("rng", []), strict=True):
            g.bit_generator.state = s

    def _dropout_rngs(self) -> list[np.random.Generator]:
        """The distinct host generators of the dropout layers, in layer order."""
        out: list[np.random.Generator] = []
        for layer in self._layer_list():
            rng = getattr(layer, "rng", None)  # (the book's runner uses NumPy's global one)
            if isinstance(rng, np.random.Generator) and all(rng is not g for g in out):
                out.append(rng)
        return out

    def _host(self, a: Any) -> Any:
        return self.backend.asarray(a, dtype=self.dtype)

    def _scaled(self, x: Any, scale: float | None) -> Any:
        x = self._input(x)
        return x if scale is None else x * scale

    # --- parameters --------------------------------------------------------------------

    def save_params(self, file_name: str | os.PathLike[str] = "params.npz") -> None:
        """Write :attr:`params` to ``file_name`` as ``.npz``, whatever its suffix.

        The book's ``params.pkl`` names keep working, but the file is an ``.npz`` (a zip
        of ``.npy`` arrays), never a pickle. Batch normalization's running statistics go
        with them (``running_mean1``, ``running_var1``, ... in layer order), so a loaded
        net predicts as the saved one did. Written atomically.
        """
        state = self.training_state()
        del state["rng"]
        host = {k: self.backend.to_numpy(v) for d in (self.params, state) for k, v in d.items()}
        with atomic_write(file_name) as fh:
            np.savez(fh, **host)

    def load_params(self, file_name: str | os.PathLike[str] = "params.npz") -> None:
        """Read parameters written by :meth:`save_params` (``allow_pickle=False``).

        Raises
        ------
        ValueError
            The file is a pickle (the book's ``.pkl`` files), lacks a parameter, or holds
            one of another shape.
        """
        try:
            data = np.load(file_name, allow_pickle=False)
        except ValueError as exc:
            raise ValueError(
                f"{os.fspath(file_name)} is not an .npz of parameters ({exc}); a pickle "
                "(such as the book's .pkl files) is never loaded: it can run code"
            ) from None
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError(f"{os.fspath(file_name)} holds one array, not an .npz of parameters")
        with data:
            host = {k: data[k] for k in data.files}
        missing = sorted(set(self.params) - set(host))
        wrong = [k for k in self.params if k in host and host[k].shape != self.params[k].shape]
        if missing or wrong:
            what = [f"lacks {', '.join(missing)}"] if missing else []
            what += [f"{k} is {host[k].shape}, the net's {tuple(self.params[k].shape)}"
                     for k in wrong]  # fmt: skip
            raise ValueError(f"{os.fspath(file_name)} does not fit this net: {'; '.join(what)}")
        for k in self.params:
            self.params[k] = self.backend.asarray(host[k], dtype=self.dtype)
        stats = {k: v for k, v in host.items() if k.startswith("running_")}
        self.set_training_state({**stats, "rng": self.training_state()["rng"]})

    def astype(self, dtype: str) -> LayerNet:
        """Move the parameters to another float dtype (``"float16"`` for half-precision
        inference, as the book's half_float_network.py), in place; returns the net.

        Raises :class:`xpnet.BackendError` where the backend lacks the dtype.
        """
        self.backend = self.backend.with_dtype(dtype)
        self.dtype = self.backend.float_dtype
        xp = self.backend.xp
        for k, v in self.params.items():
            self.params[k] = xp.astype(v, self.dtype)
        for bn, mean, var in self._running_stats():
            if mean is not None:
                bn.running_mean = xp.astype(mean, self.dtype)
                bn.running_var = xp.astype(var, self.dtype)
        return self


class MultiLayerNetExtend(LayerNet):
    """The book's extended fully connected net: weight decay, dropout, batch norm.

    ``(Affine [BatchNorm] activation [Dropout]) * n, Affine, SoftmaxWithLoss``.

    Parameters
    ----------
    input_size : int
    hidden_size_list : sequence of int
    output_size : int
    activation : {"relu", "sigmoid"}
    weight_init_std : float or {"relu", "he", "sigmoid", "xavier"}
        As :class:`xpnet.MultiLayerNet` (the same seed gives the same weights).
    weight_decay_lambda : float
    use_dropout : bool
    dropout_ration : float
        The book's spelling.
    use_batchnorm : bool
        Adds ``gamma1, beta1, ...`` (ones and zeros) to :attr:`params`.
    backend, dtype, seed
        As for :class:`xpnet.MultiLayerNet`.
    """

    # laid out as the book's: MultiLayerNet's six parameters, then the three extensions
    def __init__(self, input_size: int, hidden_size_list: Any, output_size: int,
                 activation: str = "relu", weight_init_std: float | str = "relu",
                 weight_decay_lambda: float = 0,
                 use_dropout: bool = False, dropout_ration: float = 0.5,
                 use_batchnorm: bool = False,
                 *, backend: Backend | str | None = None, dtype: str | None = None,
                 seed: int | None = None) -> None:  # fmt: skip
        # the dense part's checks and weights are MultiLayerNet's: the same seed, the same W
        dense = MultiLayerNet(input_size, hidden_size_list, output_size, activation,
                              weight_init_std, weight_decay_lambda, backend=backend,
                              dtype=dtype, seed=seed)  # fmt: skip
        self.backend, self.dtype, self.params = dense.backend, dense.dtype, dict(dense.params)
        self.weight_decay_lambda = dense.weight_decay_lambda
        self.input_size, *self.hidden_size_list, _ = dense.sizes
        self.hidden_layer_num = len(self.hidden_size_list)
        self.use_dropout, self.use_batchnorm = bool(use_dropout), bool(use_batchnorm)
        self.config = {"input_size": self.input_size,
                       "hidden_size_list": list(self.hidden_size_list),
                       "output_size": dense.output_size, "activation": activation,
                       "weight_init_std": init_std_setting(weight_init_std),
                       "weight_decay_lambda": self.weight_decay_lambda,
                       "use_dropout": self.use_dropout, "dropout_ration": float(dropout_ration),
                       "use_batchnorm": self.use_batchnorm}  # fmt: skip
        to_dev = self.backend.asarray
        act = {"sigmoid": Sigmoid, "relu": Relu}
        rng = dropout_rng(seed)
        self.layers = OrderedDict()
        links = []
        for i in range(1, self.hidden_layer_num + 2):
            affine = self.layers[f"Affine{i}"] = Affine(self.params[f"W{i}"], self.params[f"b{i}"])
            links += [(f"W{i}", affine, "W", "dW"), (f"b{i}", affine, "b", "db")]
            if i == self.hidden_layer_num + 1:
                break
            if self.use_batchnorm:
                width = self.hidden_size_list[i - 1]
                self.params[f"gamma{i}"] = to_dev(np.ones(width), dtype=self.dtype)
                self.params[f"beta{i}"] = to_dev(np.zeros(width), dtype=self.dtype)
                bn = self.layers[f"BatchNorm{i}"] = BatchNormalization(
                    self.params[f"gamma{i}"], self.params[f"beta{i}"]
                )
                links += [(f"gamma{i}", bn, "gamma", "dgamma"), (f"beta{i}", bn, "beta", "dbeta")]
            self.layers[f"Activation_function{i}"] = act[activation]()
            if self.use_dropout:
                self.layers[f"Dropout{i}"] = Dropout(dropout_ration, seed=rng)
        self.last_layer = SoftmaxWithLoss()
        self._link(links)
