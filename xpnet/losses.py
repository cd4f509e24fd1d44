"""Loss functions of the chapter and the stable loss the networks train on.

Inputs may be arrays of any array-API library, or Python numbers and lists as the chapter
passes them (computed as NumPy arrays). All losses return a 0-d array on the device of
their inputs: reading it back to the host
(``float(loss)``) is the caller's choice, so a training loop never has to wait for a GPU.
"""

from __future__ import annotations

from typing import Any

from array_api_compat import array_namespace

from ._array import arrays, as_float, one_hot
from .backends import namespace_spec

__all__ = ["cross_entropy_error", "mean_squared_error", "softmax_cross_entropy"]

#: Added inside the log by :func:`cross_entropy_error`, as in the chapter, so log(0) is finite.
CEE_DELTA = 1e-7


def mean_squared_error(y: Any, t: Any, /, *, xp: Any = None) -> Any:
    """The chapter's squared error, ``0.5 * sum((y - t)**2)`` per sample, batch-averaged.

    Note the chapter's convention: the factor is 1/2 (it makes the gradient ``y - t``) and
    the sum runs over a sample's outputs. This is *not* the statistics textbook's mean
    ``mean((y - t)**2)``; for one sample it is ``n/2`` times that.

    Parameters
    ----------
    y, t : array, shape (C,) for one sample or (N, C) for a batch
        Outputs and targets; integer inputs are computed in floating point.

    Returns
    -------
    array, shape ()
        For ``y = [1, 2, 3]``, ``t = [3, 4, 7]``: ``12.0``.

    Raises
    ------
    ValueError
        If the shapes differ.
    """
    xp, y, t = arrays(y, t, xp=xp)
    _same_shape("mean_squared_error", y, t)
    y = as_float(y, xp)
    t = as_float(t, xp) if not xp.isdtype(t.dtype, "integral") else xp.astype(t, y.dtype)
    d = y - t
    total = 0.5 * xp.sum(d * d)
    return total if y.ndim <= 1 else total / y.shape[0]


def cross_entropy_error(y: Any, t: Any, /, *, xp: Any = None) -> Any:
    """The chapter's cross-entropy, ``-sum(t * log(y + 1e-7))``, batch-averaged.

    Parameters
    ----------
    y : array, shape (C,) or (N, C)
        Probabilities (for example a softmax output).
    t : array
        Either targets of ``y``'s shape (one-hot rows, or any weights, as in the
        chapter's example) or integer class labels of shape () / (N,), each in
        ``0..C-1`` (a label outside that range matches no class and adds nothing; it is
        not checked here, which would need a device read-back; :func:`xpnet.train`
        checks its labels once).

    Returns
    -------
    array, shape ()
        Mean over the batch (a 1-D ``y`` is one sample). For ``y = [0, 2, 3, 8, 9]``,
        ``t = [3, 4, 7, 8, 9]``: ``1.4808580471604245`` (float64).

    Raises
    ------
    ValueError
        If ``t`` is neither ``y``'s shape nor integer labels for its rows.
    """
    xp, y, t = arrays(y, t, xp=xp)
    y = as_float(y, xp)
    t = float_targets("cross_entropy_error", y, t, xp)
    total = -xp.sum(t * xp.log(y + CEE_DELTA))
    return total if y.ndim <= 1 else total / y.shape[0]


def softmax_cross_entropy(logits: Any, t: Any, /, *, xp: Any = None) -> Any:
    """Cross-entropy of ``softmax(logits)`` computed stably with log-sum-exp.

    Equal to ``cross_entropy_error(softmax(logits), t)`` without the 1e-7 inside the log,
    so its exact gradient is ``(softmax(logits) - t) / N``, which backprop uses.

    Parameters
    ----------
    logits : array, shape (C,) or (N, C), real floating dtype
    t : array, one-hot of ``logits``' shape or integer labels of shape () / (N,)

    Returns
    -------
    array, shape (), mean over the batch
    """
    xp, logits, t = arrays(logits, t, xp=xp)
    logits = as_float(logits, xp)
    t = float_targets("softmax_cross_entropy", logits, t, xp)
    if logits.ndim == 1:  # one sample: a batch of one
        return softmax_cross_entropy_stats(logits[None, :], t[None, :])[0]  # mean of one row: 0-d
    return softmax_cross_entropy_stats(logits, t)[0]


def softmax_cross_entropy_stats(logits: Any, t_onehot: Any, *, xp: Any = None) -> tuple[Any, Any]:
    """Mean cross-entropy over the rows and ``softmax(logits)``, from one log-sum-exp.

    The one cross-entropy of xpnet: :func:`softmax_cross_entropy`, the nets' loss, their
    backprop (which needs the probabilities too) and their numerical gradients use it.

    Parameters
    ----------
    logits : array (..., N, C), real floating
    t_onehot : array (N, C) or (..., N, C), ``logits``' dtype

    Returns
    -------
    loss : array (...,), mean over the N rows (0-d for one batch)
    probs : array (..., N, C)
        A new array, which the caller may overwrite.
    """
    xp = array_namespace(logits) if xp is None else xp
    shifted = logits - xp.max(logits, axis=-1, keepdims=True)
    e = xp.exp(shifted)
    s = xp.sum(e, axis=-1, keepdims=True)
    per_row = xp.log(s[..., 0]) - _row_dot(t_onehot, shifted, xp)
    e /= s  # the probabilities, in place: e is ours
    return xp.mean(per_row, axis=-1), e


def _row_dot(t: Any, s: Any, xp: Any) -> Any:
    """``sum(t * s, axis=-1)``: one ``vecdot`` (2x faster than the pair on NumPy) where the
    library has one kernel for it, else the product and the sum (equal for one-hot ``t``)."""
    if namespace_spec(xp).native_vecdot:
        return xp.vecdot(t, s, axis=-1)
    return xp.sum(t * s, axis=-1)


def _same_shape(fn: str, y: Any, t: Any) -> None:
    if tuple(y.shape) != tuple(t.shape):
        raise ValueError(
            f"{fn}: y has shape {tuple(y.shape)} but t has shape {tuple(t.shape)}; they must match"
        )


def float_targets(fn: str, y: Any, t: Any, xp: Any) -> Any:
    """``t`` as floating targets of ``y``'s shape (labels become one-hot rows)."""
    if y.ndim not in (1, 2):
        raise ValueError(f"{fn}: y must have shape (C,) or (N, C), got {tuple(y.shape)}")
    if tuple(t.shape) == tuple(y.shape):
        return xp.astype(t, y.dtype) if t.dtype != y.dtype else t
    if tuple(t.shape) == tuple(y.shape[:-1]):
        if not xp.isdtype(t.dtype, "integral"):
            raise ValueError(
                f"{fn}: labels t of shape {tuple(t.shape)} for y of shape {tuple(y.shape)} "
                f"must be integers, got dtype {t.dtype}"
            )
        return one_hot(t, y.shape[-1], y.dtype, xp)
    raise ValueError(
        f"{fn}: y has shape {tuple(y.shape)} but t has shape {tuple(t.shape)}; t must be "
        f"one-hot of shape {tuple(y.shape)} or integer labels of shape {tuple(y.shape[:-1])}"
    )
