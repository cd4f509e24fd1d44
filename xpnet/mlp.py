"""The one forward and backward pass of a stack of affine layers, and its loss.

``Affine -> activation -> ... -> Affine -> softmax cross-entropy``, the networks of the
chapter and the next one. Parameters are ``W1, b1, ..., Wn, bn``; each may carry leading
model axes: ``W1`` of shape (K, D, H) with ``b1`` of shape (K, 1, H) is K nets at once, and
``x`` of shape (N, D) (one batch for all K) or (K, N, D). Broadcasting matmul makes a single
net (``W1`` (D, H), ``b1`` (H,)) the K-less case of the same code.

Raw ``uint8`` pixels may come with ``scale`` (1/255): the first layer multiplies its
(N, H) product instead of the (N, D) input, so images can stay bytes until here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from array_api_compat import array_namespace

from ._array import count_right, scalar
from .losses import softmax_cross_entropy_stats

__all__ = ["ACTIVATIONS", "correct_count", "forward", "loss_and_grads", "param_names"]


def _sigmoid_tanh(x: Any, xp: Any) -> Any:
    """The nets' sigmoid, ``0.5 * tanh(0.5 * x) + 0.5``: 4 array operations against the
    public :func:`~xpnet.sigmoid`'s 7 (and a third of its time on NumPy), with an absolute
    error within eps. Training needs no more; the public function also keeps a few ulp of
    *relative* accuracy in the lower tail, where this form rounds to 0 below about -40."""
    y = xp.tanh(0.5 * x)
    y *= 0.5  # in place on our own temporary: one allocation instead of three
    y += 0.5
    return y


def _sigmoid_backprop(y: Any, dy: Any, xp: Any) -> Any:
    """``dy * y * (1 - y)`` from the sigmoid's output ``y``: 3 operations, 1 allocation."""
    d = 1.0 - y
    d *= y
    d *= dy
    return d


def _relu(x: Any, xp: Any) -> Any:
    # NaN propagates, as in the public relu; 1 operation. A cached 0-d zero: a Python
    # 0.0 would become a new device array (a host sync on a GPU) on every call.
    return xp.maximum(x, scalar(0.0, x, xp))


def _relu_backprop(y: Any, dy: Any, xp: Any) -> Any:
    """``dy`` where the output is positive, else 0: 2 operations (the public
    :func:`~xpnet.relu_grad` also carries NaN through, which backprop need not: a NaN loss
    stops training)."""
    return xp.where(y > 0, dy, scalar(0.0, dy, xp))


#: Hidden activations, and backprop through them from their own outputs (backprop keeps
#: the outputs from the forward pass, so it need not evaluate the activation again):
#: ``(f(x, xp), backprop(y, dy, xp) = dy * f'(x) where y = f(x))``.
ACTIVATIONS: dict[str, tuple[Callable[[Any, Any], Any], Callable[[Any, Any, Any], Any]]] = {
    "sigmoid": (_sigmoid_tanh, _sigmoid_backprop),
    "relu": (_relu, _relu_backprop),
}


@functools.cache
def param_names(n_layers: int) -> tuple[str, ...]:
    """``("W1", "b1", ..., "Wn", "bn")``."""
    return tuple(f"{p}{i}" for i in range(1, n_layers + 1) for p in "Wb")


def _mT(x: Any, xp: Any) -> Any:
    return x.T if x.ndim == 2 else xp.matrix_transpose(x)


def _shared_matmul(x: Any, w: Any, xp: Any) -> Any:
    """``x (N, D) @ w (K, D, H)`` as one (N, D) @ (D, K*H) product, shaped (K, N, H).

    One large matrix product instead of K small ones (about 12% faster for the chapter's
    sizes and K = 16 on NumPy); no copy of ``w`` when it is stored with the model axis
    second, as :func:`xpnet.sweeps.stack_params` stores it. The product is copied once into
    (K, N, H) order: every later (K, N, H) operation then meets arrays of one layout (on
    NumPy, mixed layouts made the sigmoid's backprop 3x slower).
    """
    k, d, h = (int(v) for v in w.shape)
    n = int(x.shape[0])
    flat = xp.reshape(xp.permute_dims(w, (1, 0, 2)), (d, k * h))
    by_model = xp.permute_dims(xp.reshape(x @ flat, (n, k, h)), (1, 0, 2))
    return xp.reshape(xp.reshape(by_model, (k * n, h)), (k, n, h))


def _shared_grads(x: Any, dy: Any, scale: float | None, xp: Any) -> tuple[Any, Any]:
    """The first layer's ``(x^T @ dy, sum(dy))`` for one batch ``x`` (N, D) shared by K
    models, ``dy`` (K, N, H): one (D, N) @ (N, K*H) product, the weight gradient (K, D, H)
    with the model axis second in memory (as :func:`xpnet.sweeps.stack_params` stores
    weights) and the bias gradient (K, 1, H), summed over the (N, K*H) copy, which NumPy
    reduces 4x faster than (K, N, H)."""
    k, n, h = (int(v) for v in dy.shape)
    flat = xp.reshape(xp.permute_dims(dy, (1, 0, 2)), (n, k * h))
    g_b = xp.reshape(xp.sum(flat, axis=0), (k, 1, h))
    if scale is not None:
        flat *= scale  # a copy (the permuted reshape) or a view of our own temporary dy
    g = xp.reshape(_mT(x, xp) @ flat, (int(x.shape[1]), k, h))
    return xp.permute_dims(g, (1, 0, 2)), g_b


def forward(
    params: dict[str, Any],
    x: Any,
    activation: str,
    *,
    scale: float | None = None,
    keep: bool = False,
    xp: Any = None,
) -> tuple[Any, list[Any]]:
    """Logits of the stack of layers.

    Parameters
    ----------
    params : dict
        ``W1, b1, ..., Wn, bn``: ``Wi`` (..., D_in, D_out), ``bi`` (D_out,) or (..., 1, D_out).
    x : array, shape (N, D) or (..., N, D)
        Floating, or any dtype when ``scale`` is given (it is multiplied in after the first
        matmul; the caller casts).
    activation : {"sigmoid", "relu"}
    scale : float, optional
        Input scale (1/255 for raw pixels).
    keep : bool
        Also return every layer's input (``x``, then each hidden activation), which the
        backward pass needs.

    Returns
    -------
    logits : array, shape (..., N, C)
    inputs : list of arrays
        The layer inputs when ``keep``, else empty.
    """
    xp = array_namespace(params["W1"]) if xp is None else xp
    act = ACTIVATIONS[activation][0]
    n = len(params) // 2
    kept = [x] if keep else []
    h = x
    for i in range(1, n + 1):
        w = params[f"W{i}"]
        # a fresh temporary from here on: scaling and bias are added in place
        if h.ndim == 2 and w.ndim == 3:
            a = _shared_matmul(h, w, xp)
        elif i == n:
            # The logits are computed transposed, (..., C, N) in memory and seen as
            # (..., N, C): the loss then reduces over C across long rows of N (on NumPy
            # 2.5x faster for the chapter's 10 classes) and sums the bias gradient over
            # contiguous N; the values are those of h @ w.
            a = _mT(_mT(w, xp) @ _mT(h, xp), xp)
        else:
            a = h @ w
        if i == 1 and scale is not None:
            a *= scale
        b = params[f"b{i}"]
        if b.ndim > a.ndim:  # stacked biases on one net's product: the sum is larger
            a = a + b
        else:
            a += b
        if i == n:
            return a, kept
        h = act(a, xp)
        if keep:
            kept.append(h)
    raise ValueError("params hold no layer")


def decay_term(params: dict[str, Any], weight_decay: Any) -> Any:
    """``0.5 * lambda * sum(W**2)`` over every weight matrix, per model (shape (...,))."""
    xp = array_namespace(params["W1"])
    total = None
    for name, w in params.items():
        if name.startswith("W"):
            s = xp.sum(w * w, axis=(-2, -1))
            total = s if total is None else total + s
    return 0.5 * _per_model(weight_decay) * total


def _per_model(v: Any) -> Any:
    """A hyperparameter of shape (K, 1, 1) as (K,), for per-model losses; numbers and 0-d
    arrays (a compiled step's) pass."""
    return v if isinstance(v, int | float) or v.ndim == 0 else v[..., 0, 0]


def loss_and_grads(
    params: dict[str, Any],
    x: Any,
    t_onehot: Any,
    activation: str,
    *,
    scale: float | None = None,
    step: Any = 1.0,
    weight_decay: Any = 0.0,
) -> tuple[Any, dict[str, Any]]:
    """Loss and ``step`` times its gradient, by backprop, from one forward pass.

    Parameters
    ----------
    params, x, activation, scale
        As for :func:`forward`.
    t_onehot : array (N, C) or (..., N, C), the params' floating dtype
    step : float or array (K, 1, 1)
        Multiplies every gradient: 1 gives the gradient; the SGD loop passes ``lr`` so its
        update is one subtraction per parameter (the gradient is linear in ``dy``).
    weight_decay : float or array (K, 1, 1)
        ``lambda`` of the ``0.5 * lambda * sum(W**2)`` term.

    Returns
    -------
    loss : array (...,), per model (0-d for one net), before the update
    grads : dict, the params' shapes
    """
    xp = array_namespace(params["W1"])
    logits, inputs = forward(params, x, activation, scale=scale, keep=True, xp=xp)
    if t_onehot.dtype != logits.dtype:  # the in-place gradient below keeps the logits' dtype
        t_onehot = xp.astype(t_onehot, logits.dtype)
    loss, dy = softmax_cross_entropy_stats(logits, t_onehot, xp=xp)
    decays = not (isinstance(weight_decay, int | float) and weight_decay == 0)
    if decays:
        loss = loss + decay_term(params, weight_decay)
    # dy: the probabilities, made the loss gradient in place
    dy -= t_onehot
    dy *= step / logits.shape[-2]
    backprop = ACTIVATIONS[activation][1]
    n = len(params) // 2
    grads: dict[str, Any] = {}
    for i in range(n, 0, -1):
        w, b = params[f"W{i}"], params[f"b{i}"]
        z = inputs[i - 1]
        if z.ndim == 2 and dy.ndim == 3:  # one batch shared by K models
            g_w, g_b = _shared_grads(z, dy, scale if i == 1 else None, xp)
        else:
            g_b = xp.sum(dy, axis=-2, keepdims=b.ndim > 1)
            if i == 1 and scale is not None:  # scale the (N, H) factor, not the (D, H) product
                dy = dy * scale
            g_w = _mT(z, xp) @ dy
        if decays:
            g_w = g_w + (step * weight_decay) * w
        grads[f"W{i}"], grads[f"b{i}"] = g_w, g_b
        if i > 1:
            dy = backprop(inputs[i - 1], dy @ _mT(w, xp), xp)
    return loss, {k: grads[k] for k in param_names(n)}


def correct_count(
    params: dict[str, Any], x: Any, labels: Any, activation: str, *, scale: float | None = None
) -> Any:
    """Rows whose largest logit is the label, per model: an integer array (...,).

    ``labels`` are integers (N,); the count stays on the device.
    """
    xp = array_namespace(params["W1"])
    return count_right(forward(params, x, activation, scale=scale, xp=xp)[0], labels, xp)
