"""Numerical gradients of a stack of affine layers (:mod:`xpnet.mlp`), vectorized.

Every entry is a real central difference of the loss; the "structured" method only skips
recomputing what a perturbation leaves alone: a change to ``Wl[i, j]`` or ``bl[j]`` moves
the pre-activation of unit ``j`` of layer ``l`` by ``h * z[:, i]`` (or ``h``), so the layers
before ``l`` are reused, and the next layer's input changes by a rank-one term.
"""

from __future__ import annotations

from typing import Any

from array_api_compat import array_namespace
from array_api_compat import device as device_of

from ._array import itemsize
from .losses import softmax_cross_entropy_stats as _ce
from .mlp import ACTIVATIONS, decay_term, forward
from .numerical import DEFAULT_MAX_BYTES, central_difference, gradient_with_step, resolve_step

__all__ = ["METHODS", "numerical_gradient_mlp"]

#: :func:`numerical_gradient_mlp`'s ``method`` choices, the default first.
METHODS = ("structured", "generic")


def numerical_gradient_mlp(
    params: dict[str, Any],
    x: Any,
    t_onehot: Any,
    activation: str,
    *,
    weight_decay: float = 0.0,
    h: float | None = None,
    method: str = "structured",
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> dict[str, Any]:
    """Central-difference gradient of ``mean CE + 0.5 * weight_decay * sum(W**2)``.

    Parameters
    ----------
    params : dict
        ``W1, b1, ..., Wn, bn`` of one net (no model axis).
    x : array (N, D), floating
    t_onehot : array (N, C), x's dtype
    activation : {"sigmoid", "relu"}
    weight_decay : float
    h : float, optional
        Step; the dtype's default (:func:`xpnet.default_step`), with a
        :class:`PrecisionWarning` unless float64.
    method : {"structured", "generic"}
        ``"generic"``: a full forward pass of the stacked perturbed copies of each
        parameter. ``"structured"`` (much faster): a change to ``Wl[i, j]`` or ``bl[j]``
        moves only unit ``j`` of layer ``l``, so the layers before it are reused; every
        entry is still a real central difference of the loss.
    max_bytes : int
        Memory bound of one chunk of perturbations.

    Returns
    -------
    dict of arrays, the params' shapes and dtype
    """
    if method not in METHODS:
        raise ValueError(f"method must be {' or '.join(map(repr, METHODS))}, got {method!r}")
    if params["W1"].ndim != 2:
        raise ValueError(
            "numerical gradients are computed for one net; these parameters carry a model "
            f"axis (W1 of shape {tuple(params['W1'].shape)})"
        )
    step = resolve_step(x, h, stacklevel=3)  # warned once, at the net's method
    if method == "generic":
        return _generic(params, x, t_onehot, activation, weight_decay, step, max_bytes)
    grads = _structured(params, x, t_onehot, activation, step, max_bytes)
    if weight_decay:
        for k, w in params.items():
            if k.startswith("W"):  # the L2 term's own central difference, elementwise
                plus, minus = w + step, w - step
                grads[k] = grads[k] + (0.5 * weight_decay) * (plus * plus - minus * minus) / (
                    2 * step
                )
    return grads


def _generic(params, x, t, activation, weight_decay, h, max_bytes):
    def stacked_loss(name: str):
        def f(stack: Any) -> Any:
            p = dict(params)
            p[name] = stack if name.startswith("W") else stack[:, None, :]
            loss = _ce(forward(p, x, activation)[0], t)[0]
            return loss + decay_term(p, weight_decay) if weight_decay else loss

        return f

    return {
        k: gradient_with_step(stacked_loss(k), v, h, batched=True, max_bytes=max_bytes)
        for k, v in params.items()
    }


def _structured(params, x, t, activation, h, max_bytes):
    xp = array_namespace(x)
    act = ACTIVATIONS[activation][0]
    n = len(params) // 2
    inputs = forward(params, x, activation, keep=True)[1]  # x, z1, ..., z_{n-1}
    pre = [inputs[i - 1] @ params[f"W{i}"] + params[f"b{i}"] for i in range(1, n + 1)]
    batch = int(x.shape[0])
    size = itemsize(x.dtype, xp)
    widths = [int(params[f"W{i}"].shape[1]) for i in range(1, n + 1)]
    ones = xp.ones((1, batch, 1), dtype=x.dtype, device=device_of(x))

    def rest(a: Any, first: int) -> Any:
        """Logits from layer ``first``'s pre-activation (..., N, H_first)."""
        for i in range(first + 1, n + 1):
            a = act(a, xp) @ params[f"W{i}"] + params[f"b{i}"]
        return a

    grads: dict[str, Any] = {}
    for layer in range(1, n + 1):
        # memory of one (direction, unit) pair: its (N, widest later layer) temporaries
        per_unit = 4 * batch * max(widths[layer - 1 :]) * size
        units = widths[layer - 1]
        u = max(1, min(units, int(max_bytes) // per_unit))

        def losses(shift: Any, layer: int = layer, u: int = u, units: int = units) -> Any:
            """Loss for every unit of ``layer`` with its pre-activation moved by
            ``shift`` (m, N, 1): (m, units)."""
            a = pre[layer - 1]
            out = []
            for j0 in range(0, units, u):
                j1 = min(units, j0 + u)
                if layer == n:  # logits j0:j1 move directly
                    eye = xp.astype(
                        xp.arange(j0, j1, device=device_of(a))[:, None]
                        == xp.arange(units, device=device_of(a))[None, :],
                        a.dtype,
                    )  # (u, C)
                    logits = a + shift[:, None, :, :] * eye[None, :, None, :]
                else:
                    delta = act(a[None, :, j0:j1] + shift, xp) - inputs[layer][None, :, j0:j1]
                    delta = xp.permute_dims(delta, (0, 2, 1))[..., None]  # (m, u, N, 1)
                    w_next = params[f"W{layer + 1}"][j0:j1, :][:, None, :]  # (u, 1, H')
                    logits = rest(pre[layer] + delta * w_next, layer + 1)
                out.append(_ce(logits, t)[0])  # (m, u)
            return xp.concat(out, axis=1)

        z_t = xp.permute_dims(inputs[layer - 1], (1, 0))[:, :, None]  # (D_in, N, 1)
        per_direction = 2 * u * per_unit
        grads[f"W{layer}"] = central_difference(
            losses, z_t, h, max_bytes=max_bytes, bytes_per_direction=per_direction
        )
        grads[f"b{layer}"] = central_difference(losses, ones, h, max_bytes=max_bytes)[0, :]
    return {k: grads[k] for k in params}
