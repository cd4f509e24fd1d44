"""The chapter's networks: ``SimpleNet`` (2x3) and ``TwoLayerNet`` (affine-sigmoid-affine-softmax).

Parameters live on the backend's device; initial weights are drawn on the host from
``numpy.random.default_rng(seed)``, so the same seed starts every backend from the same
weights. Every method also accepts host NumPy arrays and moves them to the device.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from array_api_compat import array_namespace, is_jax_array
from array_api_compat import device as device_of

from ._array import one_hot
from .backends import Backend, dtype_name, get_backend
from .functions import (
    relu,
    relu_grad_from_output,
    sigmoid,
    sigmoid_grad_from_output,
    softmax,
)
from .losses import cross_entropy_error, softmax_cross_entropy
from .numerical import DEFAULT_MAX_BYTES, PrecisionWarning, default_step, numerical_gradient

__all__ = ["PARAM_NAMES", "SimpleNet", "TwoLayerNet"]

PARAM_NAMES = ("W1", "b1", "W2", "b2")

#: Rows per chunk when evaluating a whole data set: bounds the memory of one forward, and
#: 2048 rows of float32 pixels (6 MiB) stay in cache between the cast and the matmul
#: (measured: 36 ms per train+test evaluation on Fashion-MNIST against 49 ms at 10,000).
EVAL_CHUNK = 2048

# activation and its derivative from its own output (backprop has the output from the
# forward pass, so it need not evaluate the activation again)
_ACTIVATIONS = {
    "sigmoid": (sigmoid, sigmoid_grad_from_output),
    "relu": (relu, relu_grad_from_output),
}


def _resolve_backend(backend: Backend | str | None, dtype: str | None) -> Backend:
    if isinstance(backend, Backend):
        return backend if dtype is None else backend.with_dtype(dtype)
    return get_backend(backend, None, dtype)


class _OnDevice:
    """Moves user inputs to the net's backend, device and dtype."""

    backend: Backend
    dtype: Any

    def _input(self, x: Any, *, floating: bool = True) -> Any:
        b = self.backend
        try:
            same = array_namespace(x) is b.xp and device_of(x) == b.device
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


class SimpleNet(_OnDevice):
    """The chapter's ``simpleNet``: one 2x3 weight matrix, softmax, cross-entropy.

    Parameters
    ----------
    W : array_like, shape (2, 3), optional
        Weights; drawn from a standard normal with ``seed`` when omitted.
    backend : Backend or str, optional
        Default: :func:`xpnet.get_backend`.
    seed : int, optional

    Examples
    --------
    >>> net = SimpleNet(seed=0)
    >>> x, t = np.array([0.6, 0.9]), np.array([0, 0, 1])
    >>> dW = numerical_gradient(lambda w: net.loss(x, t), net.W)  # the chapter's way
    """

    def __init__(
        self, W: Any = None, *, backend: Backend | str | None = None, seed: int | None = None
    ) -> None:
        self.backend = _resolve_backend(backend, None)
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


class TwoLayerNet(_OnDevice):
    """The chapter's two-layer net: affine, sigmoid (or relu), affine, softmax.

    Parameters
    ----------
    input_size, hidden_size, output_size : int
        784, 50, 10 in the chapter.
    weight_init_std : float
        Standard deviation of the initial weights (biases start at 0).
    backend : Backend or str, optional
        Default: :func:`xpnet.get_backend` (``XPNET_BACKEND``/``XPNET_DEVICE``).
    dtype : {"float32", "float64", "float16"}, optional
        Parameter dtype; default the backend's float dtype.
    seed : int, optional
        Seed of the host RNG that draws the initial weights.
    activation : {"sigmoid", "relu"}

    Attributes
    ----------
    params : dict
        ``W1`` (input, hidden), ``b1`` (hidden,), ``W2`` (hidden, output), ``b2`` (output,),
        arrays of the backend on its device. ``params[k] -= lr * grads[k]`` works on every
        mutable backend, as in the chapter's training loop.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int,
        weight_init_std: float = 0.01,
        *,
        backend: Backend | str | None = None,
        dtype: str | None = None,
        seed: int | None = None,
        activation: str = "sigmoid",
    ) -> None:
        for name, v in (("input_size", input_size), ("hidden_size", hidden_size),
                        ("output_size", output_size)):  # fmt: skip
            if int(v) != v or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}"
            )
        self.backend = _resolve_backend(backend, dtype)
        self.dtype = self.backend.float_dtype
        self.activation = activation
        self._act, self._act_grad_out = _ACTIVATIONS[activation]
        rng = np.random.default_rng(seed)
        host = {
            "W1": weight_init_std * rng.standard_normal((input_size, hidden_size)),
            "b1": np.zeros(hidden_size),
            "W2": weight_init_std * rng.standard_normal((hidden_size, output_size)),
            "b2": np.zeros(output_size),
        }
        self.params = {k: self.backend.asarray(v, dtype=self.dtype) for k, v in host.items()}

    @property
    def sizes(self) -> tuple[int, int, int]:
        """``(input_size, hidden_size, output_size)``."""
        w1, w2 = self.params["W1"], self.params["W2"]
        return int(w1.shape[0]), int(w1.shape[1]), int(w2.shape[1])

    # --- forward -----------------------------------------------------------------------

    def _logits(self, x: Any, scale: float | None = None) -> Any:
        p = self.params
        a1 = x @ p["W1"]
        if scale is not None:  # (x * scale) @ W1, scaling the small (N, H) result
            a1 = a1 * scale
        return self._act(a1 + p["b1"]) @ p["W2"] + p["b2"]

    def predict(self, x: Any) -> Any:
        """Class probabilities, shape (N, output_size) (or (output_size,) for one sample)."""
        return softmax(self._logits(self._input(x)))

    def loss(self, x: Any, t: Any) -> Any:
        """Mean cross-entropy of the batch (stable log-sum-exp form), a 0-d array."""
        x = self._input(x)
        return softmax_cross_entropy(self._logits(x), self._targets(t, x))

    def correct_count(self, x: Any, t: Any, *, scale: float | None = None) -> Any:
        """Number of correctly classified rows, as a 0-d device array (no host sync).

        ``scale`` multiplies the inputs (1/255 for raw pixels), as in
        :meth:`loss_and_gradient`.
        """
        xp = self.backend.xp
        x = self._input(x)
        pred = xp.argmax(self._logits(x, scale), axis=-1)
        t = self._targets(t, x)
        labels = xp.argmax(t, axis=-1) if t.ndim == pred.ndim + 1 else t
        # count_nonzero: the default integer dtype (int32 under JAX without x64)
        return xp.count_nonzero(pred == xp.astype(labels, pred.dtype))

    def correct_total(
        self, x: Any, t: Any, *, scale: float | None = None, batch_size: int = EVAL_CHUNK
    ) -> Any:
        """:meth:`correct_count` over a whole data set in chunks of ``batch_size`` rows.

        Memory stays bounded by one chunk; the result stays on the device.
        """
        n = int(x.shape[0])
        if n == 0:
            raise ValueError("accuracy of an empty set is undefined")
        total = None
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)  # out-of-range slice stops are not standard
            c = self.correct_count(x[start:stop, ...], t[start:stop, ...], scale=scale)
            total = c if total is None else total + c
        return total

    def accuracy(
        self, x: Any, t: Any, *, scale: float | None = None, batch_size: int = EVAL_CHUNK
    ) -> float:
        """Fraction of rows whose largest output is the label (t one-hot or labels).

        Evaluates in chunks (:meth:`correct_total`) and reads the result back once.
        ``scale`` multiplies the inputs (1/255 for raw ``uint8`` pixels).
        """
        if x.ndim == 1:  # one sample
            x, t = x[None, ...], t[None, ...]
        total = self.correct_total(x, t, scale=scale, batch_size=batch_size)
        return int(self.backend.to_numpy(total)) / int(x.shape[0])

    # --- backward ----------------------------------------------------------------------

    def gradient(self, x: Any, t: Any) -> dict[str, Any]:
        """Backprop gradients of :meth:`loss`, the chapter's formulas.

        Returns
        -------
        dict
            ``W1``, ``b1``, ``W2``, ``b2`` with the parameters' shapes, on the device.
        """
        return self.loss_and_gradient(x, t)[1]

    def loss_and_gradient(
        self, x: Any, t: Any, *, scale: float | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """:meth:`loss` and :meth:`gradient` from one forward pass.

        Parameters
        ----------
        x : array, shape (N, input_size) or (input_size,)
        t : array, one-hot (N, output_size) or integer labels (N,)
        scale : float, optional
            Multiply the inputs by this (1/255 turns raw pixels into [0, 1]). Applied to
            the (N, hidden) product and the (input, hidden) gradient instead of the much
            larger input, which is what lets images stay ``uint8`` until this call.

        Returns
        -------
        loss : 0-d array on the device
        grads : dict of arrays, the parameters' shapes
        """
        x = self._input(x)
        t = self._targets(t, x)
        if x.ndim == 1:  # one sample: a batch of one for the matmuls
            x = x[None, :]
            t = t[None, ...]
        return self._backprop(x, t, scale, 1.0 / x.shape[0])

    def _backprop(self, x: Any, t: Any, scale: float | None, factor: float) -> tuple[Any, Any]:
        """Loss and ``factor * N`` times the gradients for device arrays x (N, D), t.

        ``factor = 1/N`` gives the gradients; the training loop passes ``lr/N`` so the
        SGD update is one subtraction per parameter.
        """
        xp = self.backend.xp
        p = self.params
        a1 = x @ p["W1"]
        if scale is not None:
            a1 = a1 * scale
        z1 = self._act(a1 + p["b1"])
        a2 = z1 @ p["W2"] + p["b2"]
        batch = a2.shape[0]
        if t.ndim != a2.ndim:
            t = one_hot(t, a2.shape[-1], a2.dtype, xp)
        # log-softmax once: the loss and y = softmax(a2) share it.
        shifted = a2 - xp.max(a2, axis=-1, keepdims=True)
        e = xp.exp(shifted)
        s = xp.sum(e, axis=-1, keepdims=True)
        loss = (xp.sum(xp.log(s)) - xp.sum(t * shifted)) / batch
        dy = (e / s - t) * factor
        da1 = (dy @ p["W2"].T) * self._act_grad_out(z1)
        g_b1 = xp.sum(da1, axis=0)
        if scale is not None:  # scale the (N, H) factor, not the (D, H) product
            da1 = da1 * scale
        grads = {"W1": x.T @ da1, "b1": g_b1, "W2": z1.T @ dy, "b2": xp.sum(dy, axis=0)}
        return loss, grads

    def sgd_step(self, x: Any, t: Any, lr: float, *, scale: float | None = None) -> Any:
        """One SGD step on device arrays x (N, D) and t; returns the loss before it.

        The same update as ``params[k] -= lr * gradient(x, t)[k]``, with ``lr`` folded into
        the backward pass and the update done in place where the library allows it.
        """
        loss, steps = self._backprop(x, t, scale, lr / x.shape[0])
        sgd_update(self.params, steps, 1.0)
        return loss

    def numerical_gradient(
        self,
        x: Any,
        t: Any,
        *,
        h: float | None = None,
        method: str = "structured",
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> dict[str, Any]:
        """Central-difference gradients of :meth:`loss` for all four parameters.

        Parameters
        ----------
        x, t : arrays
            Batch and targets (one-hot or labels).
        h : float, optional
            Step; 1e-4 in float64, larger in float32 (see :func:`xpnet.default_step`).
        method : {"structured", "generic"}
            ``"generic"`` runs :func:`xpnet.numerical_gradient` with ``batched=True`` on each
            parameter: every perturbation is a full forward pass of a stacked copy.
            ``"structured"`` (default, much faster) uses the net's shape: a change to
            ``W1[i, j]`` or ``b1[j]`` moves only hidden unit ``j`` and a change to ``W2`` or
            ``b2`` only the logits, so the other units' activations are reused; every entry
            is still a real central difference of the loss.
        max_bytes : int
            Memory bound for one chunk of perturbations.

        Returns
        -------
        dict of arrays, the parameters' shapes and dtype
        """
        x = self._input(x)
        t = self._targets(t, x)
        if dtype_name(self.dtype) != "float64":
            warnings.warn(
                f"numerical gradient in {dtype_name(self.dtype)}: use float64 to check gradients",
                PrecisionWarning,
                stacklevel=2,
            )
        step = default_step(dtype_name(self.dtype)) if h is None else float(h)
        if method == "generic":
            return self._numerical_generic(x, t, step, max_bytes)
        if method != "structured":
            raise ValueError(f"method must be 'structured' or 'generic', got {method!r}")
        return _structured_numerical_gradient(self, x, t, step, max_bytes)

    def _numerical_generic(self, x: Any, t: Any, h: float, max_bytes: int) -> dict[str, Any]:
        xp = self.backend.xp
        act = self._act
        if t.ndim == 1 and x.ndim == 2:
            t = one_hot(t, self.sizes[2], self.dtype, xp)

        def stacked_loss(name: str):
            def f(stack: Any) -> Any:
                p = dict(self.params)
                p[name] = stack
                if name.startswith("b"):
                    p[name] = stack[:, None, :]  # (k, 1, n) broadcasts over the batch
                a2 = act(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
                return _batched_ce(a2, t, xp)

            return f

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PrecisionWarning)  # warned once above
            return {
                k: numerical_gradient(
                    stacked_loss(k), self.params[k], h, batched=True, max_bytes=max_bytes
                )
                for k in PARAM_NAMES
            }


def _batched_ce(logits: Any, t: Any, xp: Any) -> Any:
    """Mean softmax cross-entropy for a stack of logits (..., N, C) and one-hot t (N, C)."""
    m = xp.max(logits, axis=-1, keepdims=True)
    lse = xp.log(xp.sum(xp.exp(logits - m), axis=-1)) + m[..., 0]
    return xp.mean(lse - xp.sum(t * logits, axis=-1), axis=-1)


def _structured_numerical_gradient(
    net: TwoLayerNet, x: Any, t: Any, h: float, max_bytes: int
) -> dict[str, Any]:
    """Central differences of the loss, reusing the activations a perturbation leaves alone."""
    xp = net.backend.xp
    p = net.params
    if x.ndim == 1:
        x = x[None, :]
        t = t[None, ...]
    n_in, n_hidden, n_out = net.sizes
    if t.ndim == 1:
        t = one_hot(t, n_out, net.dtype, xp)
    dev = device_of(x)
    itemsize = 8 if dtype_name(net.dtype) == "float64" else 4
    batch = int(x.shape[0])
    a1 = x @ p["W1"] + p["b1"]  # (N, H)
    z1 = net._act(a1)
    a2 = z1 @ p["W2"] + p["b2"]  # (N, C)
    eye_c = xp.eye(n_out, dtype=net.dtype, device=dev)

    def central(loss_plus: Any, loss_minus: Any) -> Any:
        return (loss_plus - loss_minus) / (2 * h)

    # Memory of one (batch, classes) block of logits with its temporaries, both signs.
    block = 6 * batch * n_out * itemsize

    def chunks(n: int, per_item: int) -> list[tuple[int, int]]:
        k = max(1, min(n, int(max_bytes) // max(1, per_item)))
        return [(s, min(n, s + k)) for s in range(0, n, k)]  # stops stay in range

    # Output layer: W2[j, c] moves logit c by h * z1[:, j]; b2[c] moves it by h.
    def out_layer(shift: Any) -> Any:  # shift (..., N, 1) -> losses (..., C)
        logits = a2 + shift[..., None, :, :] * eye_c[:, None, :]  # (..., C, N, C)
        return _batched_ce(logits, t, xp)

    z1_t = xp.permute_dims(z1, (1, 0))[:, :, None]  # (H, N, 1)
    g_w2 = xp.concat(
        [
            central(out_layer(h * z1_t[j0:j1, ...]), out_layer(-h * z1_t[j0:j1, ...]))
            for j0, j1 in chunks(n_hidden, n_out * block)
        ],
        axis=0,
    )  # (H, C)
    ones = xp.ones((batch, 1), dtype=net.dtype, device=dev)
    g_b2 = central(out_layer(h * ones), out_layer(-h * ones))  # (C,)

    # Hidden layer: W1[i, j] moves a1[:, j] by h * x[:, i]; b1[j] by h. Only unit j's
    # activation changes, and with it the logits by (z1'_j - z1_j) * W2[j, :].
    w2 = p["W2"][None, :, None, :]  # (1, H, 1, C)
    units = chunks(n_hidden, block)

    def hidden(shift: Any, j0: int, j1: int) -> Any:  # shift (r, N, 1) -> losses (r, j1-j0)
        delta = net._act(a1[None, :, j0:j1] + shift) - z1[None, :, j0:j1]  # (r, N, u)
        delta = xp.permute_dims(delta, (0, 2, 1))[..., None]  # (r, u, N, 1)
        return _batched_ce(a2 + delta * w2[:, j0:j1, ...], t, xp)

    def hidden_grad(shift: Any) -> Any:  # (r, N, 1) -> (r, H)
        return xp.concat(
            [central(hidden(h * shift, j0, j1), hidden(-h * shift, j0, j1)) for j0, j1 in units],
            axis=1,
        )

    x_t = xp.permute_dims(x, (1, 0))[:, :, None]  # (D, N, 1)
    per_row = block * (units[0][1] - units[0][0])
    g_w1 = xp.concat([hidden_grad(x_t[i0:i1, ...]) for i0, i1 in chunks(n_in, per_row)], axis=0)
    g_b1 = hidden_grad(ones[None, :, :])[0, :]
    return {"W1": g_w1, "b1": g_b1, "W2": g_w2, "b2": g_b2}


def sgd_update(params: dict[str, Any], grads: dict[str, Any], lr: float) -> None:
    """``params[k] -= lr * grads[k]``, in place where the library allows it (not JAX)."""
    in_place = not is_jax_array(next(iter(params.values())))
    for k, g in grads.items():
        step = g if lr == 1.0 else lr * g
        if in_place:
            params[k] -= step
        else:
            params[k] = params[k] - step
