"""The chapters' networks: ``SimpleNet`` (2x3), ``TwoLayerNet`` and ``MultiLayerNet``.

Parameters live on the backend's device; initial weights are drawn on the host from
``numpy.random.default_rng(seed)``, so the same seed starts every backend from the same
weights. Every method also accepts host NumPy arrays and moves them to the device. The
math (one forward, one backward, one cross-entropy) is in :mod:`xpnet.mlp`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as device_of

from ._array import chunk_sums, labels_of, one_hot
from ._memory import standard_normal
from ._threads import blas_threads
from .backends import Backend, as_backend, dtype_name
from .evaluation import EVAL_CHUNK, set_totals
from .functions import softmax
from .losses import cross_entropy_error
from .losses import softmax_cross_entropy_stats as _ce
from .mlp import ACTIVATIONS, correct_count, decay_term, forward, loss_and_grads, param_names
from .numerical import DEFAULT_MAX_BYTES
from .numerical_mlp import numerical_gradient_mlp

__all__ = ["ACTIVATIONS", "EVAL_CHUNK", "PARAM_NAMES", "MultiLayerNet", "SimpleNet", "TwoLayerNet"]

PARAM_NAMES = param_names(2)

#: ``weight_init_std`` names, as the book's MultiLayerNet: std sqrt(gain / n_in).
INIT_GAINS = {"xavier": 1.0, "sigmoid": 1.0, "he": 2.0, "relu": 2.0}


def init_std(weight_init_std: float | str, n_in: int) -> float:
    """The standard deviation of a layer's initial weights (a number, or a name)."""
    if isinstance(weight_init_std, str):
        key = weight_init_std.lower()
        if key not in INIT_GAINS:
            raise ValueError(
                f"weight_init_std must be a positive number or one of "
                f"{', '.join(INIT_GAINS)}, got {weight_init_std!r}"
            )
        return math.sqrt(INIT_GAINS[key] / n_in)
    v = float(weight_init_std)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"weight_init_std must be a positive number, got {weight_init_std!r}")
    return v


def init_std_setting(weight_init_std: float | str) -> float | str:
    """``weight_init_std`` as a JSON value (a name, or a Python float), for a net's config."""
    return weight_init_std if isinstance(weight_init_std, str) else float(weight_init_std)


def init_params(
    sizes: tuple[int, ...], weight_init_std: float | str, seed: int | None
) -> dict[str, np.ndarray]:
    """Host float64 initial weights: ``Wi = std_i * standard_normal``, ``bi = 0``, drawn
    W1, W2, ... in order from ``numpy.random.default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(1, len(sizes)):
        std = init_std(weight_init_std, sizes[i - 1])
        out[f"W{i}"] = std * standard_normal(rng, (sizes[i - 1], sizes[i]), f"W{i}")
        out[f"b{i}"] = np.zeros(sizes[i])
    return out


class DeviceNet:
    """Moves user inputs to the net's backend, device and dtype."""

    backend: Backend
    dtype: Any

    def _input(self, x: Any, *, floating: bool = True) -> Any:
        b = self.backend
        try:  # the class check first: it is what a training loop's every call passes
            own = self.params["W1"] if hasattr(self, "params") else getattr(self, "W", None)
            same = type(x) is type(own) or array_namespace(x) is b.xp
            same = same and device_of(x) == b.device
        except TypeError:
            same = False
        if not same:
            x = b.asarray(x)
        if floating and x.dtype != self.dtype:
            x = b.xp.astype(x, self.dtype)
        return x

    def _targets(self, t: Any, x: Any) -> Any:
        """Labels (one fewer dimension than ``x``) stay integers; one-hot rows, of any
        dtype, become the net's float dtype."""
        t = self._input(t, floating=False)
        if t.ndim == x.ndim and t.dtype != self.dtype:
            t = self.backend.xp.astype(t, self.dtype)
        return t


class Classifier(DeviceNet):
    """A net with ``correct_count`` and ``loss_and_gradient``: whole-set counts and the
    book's ``gradient``."""

    #: Rows per forward pass of :meth:`correct_total`.
    _EVAL_ROWS = EVAL_CHUNK

    def correct_total(
        self, x: Any, t: Any, *, scale: float | None = None, batch_size: int | None = None
    ) -> Any:
        """``correct_count`` over a whole set, ``batch_size`` rows per forward pass (the
        net's default: 2048 for the MLPs, 100 for nets of layers, as the book's).

        Memory stays bounded by one chunk; the result stays on the device. The BLAS
        threads are chosen for the machine's load (:func:`xpnet._threads.blas_threads`):
        a whole-set pass with every core's thread on a busy machine runs 10-30x slower.
        """
        n = int(x.shape[0])
        if n == 0:
            raise ValueError("accuracy of an empty set is undefined")
        with blas_threads(backend=self.backend):
            return chunk_sums(n, batch_size or self._EVAL_ROWS, lambda s, e: self.correct_count(
                x[s:e, ...], t[s:e, ...], scale=scale))  # fmt: skip

    def gradient(self, x: Any, t: Any) -> dict[str, Any]:
        """Backprop gradients of the training loss (weight decay included), keyed as
        ``params`` (the net's ``loss_and_gradient``, the loss dropped)."""
        return self.loss_and_gradient(x, t)[1]

    def _fraction(self, total: Any, x: Any) -> float:
        """A device count of right rows as the fraction of ``x``'s rows: one read-back."""
        return int(self.backend.to_numpy(total)) / int(x.shape[0])


class SimpleNet(DeviceNet):
    """The chapter's ``simpleNet``: one 2x3 weight matrix, softmax, cross-entropy.

    Parameters
    ----------
    W : array_like, shape (2, 3), optional
        Weights; drawn from a standard normal with ``seed`` when omitted. A floating ``W``
        keeps its dtype unless ``dtype`` is given.
    backend : Backend or str, optional
        Default: :func:`xpnet.get_backend`.
    dtype : str, optional
    seed : int, optional
    """

    def __init__(
        self,
        W: Any = None,
        *,
        backend: Backend | str | None = None,
        dtype: str | None = None,
        seed: int | None = None,
    ) -> None:
        if dtype is None and W is not None:  # a floating W keeps its dtype
            name = dtype_name(W if hasattr(W, "dtype") else np.asarray(W))
            dtype = name if name.startswith("float") else None
        self.backend = as_backend(backend, dtype)
        self.dtype = self.backend.float_dtype
        if W is None:
            W = np.random.default_rng(seed).standard_normal((2, 3))
        self.W = self._input(W)

    def predict(self, x: Any) -> Any:
        """Scores ``x @ W``, shape (3,) or (N, 3)."""
        return self._input(x) @ self.W

    def loss(self, x: Any, t: Any) -> Any:
        """The chapter's ``cross_entropy_error(softmax(x @ W), t)``, a 0-d array."""
        x = self._input(x)
        return cross_entropy_error(softmax(self.predict(x)), self._targets(t, x))


class MultiLayerNet(Classifier):
    """The next chapter's fully connected net: (affine, activation) * n, affine, softmax.

    Parameters
    ----------
    input_size : int
    hidden_size_list : sequence of int
        One entry per hidden layer (``[100, 100, 100]``).
    output_size : int
    activation : {"relu", "sigmoid"}
    weight_init_std : float or {"relu", "he", "sigmoid", "xavier"}
        A fixed standard deviation, or per layer sqrt(2/n_in) ("relu"/"he") or
        sqrt(1/n_in) ("sigmoid"/"xavier"), as the book's MultiLayerNet.
    weight_decay_lambda : float
        ``lambda`` of the L2 term ``0.5 * lambda * sum(W**2)`` added to the loss.
    backend : Backend or str, optional
        Default: :func:`xpnet.get_backend` (``XPNET_BACKEND``/``XPNET_DEVICE``).
    dtype : {"float32", "float64", "float16"}, optional
        Parameter dtype; default the backend's float dtype.
    seed : int, optional
        Seed of the host RNG that draws the initial weights.

    Attributes
    ----------
    params : dict
        ``W1`` (input, hidden1), ``b1`` (hidden1,), ..., ``bn`` (output,), arrays of the
        backend on its device; ``params[k] -= lr * grads[k]`` works on mutable backends.
    """

    _HIDDEN = "hidden_size_list[{}]"  # how errors name a hidden size

    def __init__(
        self,
        input_size: int,
        hidden_size_list: Any,
        output_size: int,
        activation: str = "relu",
        weight_init_std: float | str = "relu",
        weight_decay_lambda: float = 0.0,
        *,
        backend: Backend | str | None = None,
        dtype: str | None = None,
        seed: int | None = None,
    ) -> None:
        sizes = (input_size, *list(hidden_size_list), output_size)
        hidden = [self._HIDDEN.format(i) for i in range(len(sizes) - 2)]
        for name, v in zip(["input_size", *hidden, "output_size"], sizes, strict=True):
            if isinstance(v, bool) or int(v) != v or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}"
            )
        wd = float(weight_decay_lambda)
        if not (math.isfinite(wd) and wd >= 0):
            raise ValueError(f"weight_decay_lambda must be >= 0, got {weight_decay_lambda!r}")
        self.backend = as_backend(backend, dtype)
        self.dtype = self.backend.float_dtype
        self.activation = activation
        self.weight_init_std = weight_init_std
        self.weight_decay_lambda = wd
        host = init_params(tuple(int(s) for s in sizes), weight_init_std, seed)
        self.params = {k: self.backend.asarray(v, dtype=self.dtype) for k, v in host.items()}

    @property
    def sizes(self) -> tuple[int, ...]:
        """``(input_size, *hidden_sizes, output_size)``."""
        n = len(self.params) // 2
        w = [self.params[f"W{i}"] for i in range(1, n + 1)]
        return (int(w[0].shape[-2]), *(int(wi.shape[-1]) for wi in w))

    @property
    def output_size(self) -> int:
        return self.sizes[-1]

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one input row, ``(input_size,)``."""
        return self.sizes[:1]

    # --- forward -----------------------------------------------------------------------

    def logits(self, x: Any, *, scale: float | None = None) -> Any:
        """Scores before the softmax, shape (N, output_size)."""
        return forward(self.params, self._input(x), self.activation, scale=scale)[0]

    def predict(self, x: Any) -> Any:
        """Scores of the last affine layer, shape (N, output_size), as the book's."""
        return self.logits(x)

    def loss(self, x: Any, t: Any) -> Any:
        """Mean cross-entropy (stable log-sum-exp form) plus the L2 term, a 0-d array."""
        x, t = self._batch(x, t)
        loss = _ce(self.logits(x), t)[0]
        if self.weight_decay_lambda:
            loss = loss + decay_term(self.params, self.weight_decay_lambda)
        return loss

    def correct_count(self, x: Any, t: Any, *, scale: float | None = None) -> Any:
        """Number of correctly classified rows, as a 0-d device array (no host sync).

        ``scale`` multiplies the inputs (1/255 for raw pixels, see :mod:`xpnet.scaling`).
        """
        x = self._input(x)
        labels = labels_of(self._targets(t, x), self.backend.xp)
        return correct_count(self.params, x, labels, self.activation, scale=scale)

    def totals(self, x: Any, t: Any, *, scale: float | None = None) -> tuple[Any, Any]:
        """Correct rows and summed cross-entropy (no weight decay) over a whole set (``t``
        labels or one-hot), :data:`EVAL_CHUNK` rows per pass: two 0-d device arrays."""
        x = self._input(x, floating=False)  # set_totals casts one chunk at a time
        labels = labels_of(self._input(t, floating=False), self.backend.xp)
        return set_totals(self.params, x, labels, self.activation, scale=scale, loss=True)

    def accuracy(
        self, x: Any, t: Any, *, scale: float | None = None, batch_size: int = EVAL_CHUNK
    ) -> float:
        """Fraction of rows whose largest output is the label (t one-hot or labels).

        Evaluates in chunks (:meth:`correct_total`) and reads the result back once.
        """
        if x.ndim == 1:  # one sample
            x, t = x[None, ...], t[None, ...]
        return self._fraction(self.correct_total(x, t, scale=scale, batch_size=batch_size), x)

    # --- backward ----------------------------------------------------------------------

    def loss_and_gradient(
        self, x: Any, t: Any, *, scale: float | None = None, step: Any = 1.0
    ) -> tuple[Any, dict[str, Any]]:
        """:meth:`loss` and ``step`` times :meth:`gradient` from one forward pass.

        Parameters
        ----------
        x : array, shape (N, input_size) or (input_size,)
        t : array, one-hot (N, output_size) or integer labels (N,)
        scale : float, optional
            Input scale, applied to the first matmul's output (see :mod:`xpnet.mlp`).
        step : float or array
            Multiplies the gradients (the SGD loop passes ``lr``).
        """
        x, t = self._batch(x, t)
        return loss_and_grads(
            self.params, x, t, self.activation, scale=scale, step=step,
            weight_decay=self.weight_decay_lambda,
        )  # fmt: skip

    def numerical_gradient(
        self,
        x: Any,
        t: Any,
        *,
        h: float | None = None,
        method: str = "structured",
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> dict[str, Any]:
        """Central-difference gradients of :meth:`loss` (weight decay included) for every
        parameter, by :func:`xpnet.numerical_mlp.numerical_gradient_mlp`.

        Parameters
        ----------
        x, t : arrays
            Batch and targets (one-hot or labels).
        h, method, max_bytes
            As for :func:`~xpnet.numerical_mlp.numerical_gradient_mlp`: ``h`` defaults to
            1e-4 in float64, larger in coarser dtypes (:func:`xpnet.default_step`).
        """
        x, t = self._batch(x, t)
        return numerical_gradient_mlp(
            self.params, x, t, self.activation, weight_decay=self.weight_decay_lambda,
            h=h, method=method, max_bytes=max_bytes,
        )  # fmt: skip

    def _batch(self, x: Any, t: Any) -> tuple[Any, Any]:
        """Device arrays x (N, D) and one-hot t (N, C) in the net's dtype."""
        x = self._input(x)
        t = self._targets(t, x)
        if x.ndim == 1:  # one sample: a batch of one for the matmuls
            x, t = x[None, :], t[None, ...]
        if t.ndim == 1:
            t = one_hot(t, self.output_size, self.dtype, self.backend.xp)
        return x, t


class TwoLayerNet(MultiLayerNet):
    """The chapter's two-layer net: affine, sigmoid (or relu), affine, softmax.

    A :class:`MultiLayerNet` with one hidden layer, the chapter's signature and defaults
    (sigmoid, ``weight_init_std=0.01``), and the chapter's ``predict`` (probabilities).

    Parameters
    ----------
    input_size, hidden_size, output_size : int
        784, 50, 10 in the chapter.
    weight_init_std : float or str
        Standard deviation of the initial weights (biases start at 0).
    backend, dtype, seed
        As for :class:`MultiLayerNet`.
    activation : {"sigmoid", "relu"}
    weight_decay_lambda : float
    """

    _HIDDEN = "hidden_size"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int,
        weight_init_std: float | str = 0.01,
        *,
        backend: Backend | str | None = None,
        dtype: str | None = None,
        seed: int | None = None,
        activation: str = "sigmoid",
        weight_decay_lambda: float = 0.0,
    ) -> None:
        super().__init__(
            input_size, [hidden_size], output_size, activation, weight_init_std,
            weight_decay_lambda, backend=backend, dtype=dtype, seed=seed,
        )  # fmt: skip

    def predict(self, x: Any) -> Any:
        """Class probabilities, shape (N, output_size) (or (output_size,) for one sample)."""
        return softmax(self.logits(x))
