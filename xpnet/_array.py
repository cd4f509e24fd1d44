"""Array-API helpers shared by the math modules (no backend names here)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from array_api_compat import array_namespace, device, is_array_api_obj

#: The 0-d arrays :func:`scalar` made, by (namespace, dtype, device, value).
_SCALARS: dict[tuple[Any, ...], Any] = {}


def namespace(*arrays: Any, xp: Any = None) -> Any:
    """The array namespace of ``arrays`` unless ``xp`` is given."""
    return array_namespace(*arrays) if xp is None else xp


def arrays(*values: Any, xp: Any = None) -> tuple[Any, ...]:
    """``(xp, *arrays)``: the namespace of ``values`` and each value as an array of it.

    The chapter calls its functions on Python numbers and lists (``sigmoid(1.0)``,
    ``softmax([0.3, 2.9, 4.0])``). When no value is an array they become NumPy arrays
    (the chapter's library); next to arrays of a library, on the first array's device.
    """
    given = [v for v in values if is_array(v)]
    if not given:
        import numpy as np  # the chapter's library, for inputs that name none

        converted = [np.asarray(v) for v in values]
        return (namespace(*converted, xp=xp), *converted)
    xp = namespace(*given, xp=xp)
    dev = device(given[0])
    return (xp, *(v if is_array(v) else xp.asarray(v, device=dev) for v in values))


def scalar(value: float, like: Any, xp: Any) -> Any:
    """``value`` as a 0-d array of ``like``'s dtype on ``like``'s device, made once.

    A Python number handed to a two-argument function (``maximum(x, 0.0)``) becomes a new
    array on every call in array-api-compat's torch wrapper: on a GPU that is a host-to-
    device copy, and a stream synchronization, per call. A cached device array costs
    nothing after the first call. Never write into the result: it is shared.

    Parameters
    ----------
    value : float
    like : array
        Gives the dtype and device.
    xp : namespace
        ``like``'s namespace.

    Returns
    -------
    array, shape (), ``like``'s dtype
    """
    dev = device(like)
    if dev is None:  # a traced value (jax.jit): a constant of the trace, never cached
        return xp.asarray(value, dtype=like.dtype)
    key = (xp.__name__, like.dtype, _hashable(dev), type(value), value)
    out = _SCALARS.get(key)
    if out is None:
        out = _SCALARS[key] = xp.asarray(value, dtype=like.dtype, device=dev)
    return out


def _hashable(dev: Any) -> Any:
    try:
        hash(dev)
    except TypeError:  # a device object without a hash: its repr names it
        return repr(dev)
    return dev


def is_array(x: Any) -> bool:
    """An array of any supported library (not a scalar type such as ``numpy.float64``)."""
    return is_array_api_obj(x) and not isinstance(x, type)


def is_floating(x: Any, xp: Any) -> bool:
    return xp.isdtype(x.dtype, "real floating")


def as_float(x: Any, xp: Any) -> Any:
    """Return ``x`` if it is real floating, else a floating copy.

    Integers become float64 where the device has it (the chapter's NumPy arithmetic),
    else the namespace's default float dtype.
    """
    if is_floating(x, xp):
        return x
    return xp.astype(x, float_dtype_for(x, xp))


def itemsize(dtype: Any, xp: Any) -> int:
    """Bytes per element of a real floating or integer ``dtype`` of namespace ``xp``."""
    info = xp.finfo(dtype) if xp.isdtype(dtype, "real floating") else xp.iinfo(dtype)
    return info.bits // 8


def float_dtype_for(x: Any, xp: Any) -> Any:
    """float64 if ``x``'s device supports it, else the default real floating dtype."""
    dev = device(x)
    info = getattr(xp, "__array_namespace_info__", None)
    if info is None:
        return xp.float64
    inf = info()
    try:
        if "float64" in inf.dtypes(device=dev, kind="real floating"):
            return xp.float64
        return inf.default_dtypes(device=dev)["real floating"]
    except (TypeError, ValueError, NotImplementedError):
        return xp.float64


def one_hot(labels: Any, num_classes: int, dtype: Any, xp: Any) -> Any:
    """One-hot rows built by comparison; integer-array assignment is not in the standard."""
    classes = xp.arange(num_classes, device=device(labels), dtype=labels.dtype)
    return xp.astype(labels[..., None] == classes, dtype)


def labels_of(t: Any, xp: Any = None) -> Any:
    """Integer labels (N,) of targets given as labels or one-hot rows (N, C)."""
    xp = namespace(t, xp=xp)
    return xp.argmax(t, axis=-1) if t.ndim == 2 else t


def count_right(scores: Any, labels: Any, xp: Any = None) -> Any:
    """Rows of ``scores`` (..., N, C) whose largest entry is the label (N,), per model: an
    integer array (...,) on the device (the default integer dtype: int32 under JAX
    without x64). The one count of every accuracy."""
    xp = namespace(scores, xp=xp)
    pred = xp.argmax(scores, axis=-1)
    return xp.count_nonzero(pred == xp.astype(labels, pred.dtype), axis=-1)


def has_non_finite(x: Any) -> bool:
    """Whether a floating array holds NaN or inf (never for integers): one read-back."""
    xp = array_namespace(x)
    return is_floating(x, xp) and bool(xp.any(~xp.isfinite(x)))


def chunk_sums(n: int, rows: int, part: Callable[[int, int], Any]) -> Any:
    """``part(start, stop)`` summed over the chunks of ``rows`` rows of ``0..n``: one
    array, or a tuple of arrays summed item by item; the sums stay where ``part`` made
    them. The one chunk loop of every whole-set evaluation (memory bounded by a chunk)."""
    total = None
    for start in range(0, n, rows):
        p = part(start, min(n, start + rows))  # out-of-range slice stops are not standard
        if total is None:
            total = p
        elif isinstance(p, tuple):
            total = tuple(a + b for a, b in zip(total, p, strict=True))
        else:
            total = total + p
    return total
