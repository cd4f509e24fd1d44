"""Which library and device a layer computes in."""

from __future__ import annotations

from typing import Any

from array_api_compat import array_namespace, is_numpy_array
from array_api_compat import device as device_of

from .._array import arrays, is_array

#: Namespace by array type: a layer asks for it at every pass, and array_namespace's
#: checks cost more than a small layer's arithmetic.
_NAMESPACES: dict[type, Any] = {}


class Layer:
    """What every layer keeps between its forward and its backward: the namespace its
    last forward computed in (the state attributes are class-level ``None`` until a
    forward sets them on the instance)."""

    _xp: Any = None


def namespace_of(a: Any) -> Any:
    """``array_namespace(a)``, remembered per array type."""
    kind = type(a)
    xp = _NAMESPACES.get(kind)
    if xp is None:
        xp = _NAMESPACES[kind] = array_namespace(a)
    return xp


def operands(x: Any, *params: Any) -> tuple[Any, ...]:
    """``(xp, x)``: the namespace a layer computes in and its input there.

    A layer computes where its parameters are. Host NumPy input (the book's data) next to
    parameters of another library is moved to their device; any other mix of libraries is
    an error. Without parameters (``Relu``, ``Pooling``) the input decides; Python numbers
    and lists become NumPy arrays, as for :mod:`xpnet.functions`.
    """
    if not params:
        if is_array(x):
            return namespace_of(x), x
        return arrays(x)
    xp = namespace_of(params[0])
    try:
        same = type(x) is type(params[0]) or array_namespace(x) is xp
    except TypeError:  # a Python number or list
        same = False
    if not same:
        if not (is_numpy_array(x) or not hasattr(x, "shape")):
            raise TypeError(
                f"this layer's parameters are {_library(params[0])} arrays but its input is a "
                f"{type(x).__module__}.{type(x).__name__}; move the input to the parameters' "
                "library (xpnet.Backend.asarray) or build the layer with parameters of the "
                "input's library"
            )
        x = xp.asarray(x, device=device_of(params[0]))
    elif device_of(x) != device_of(params[0]):
        raise ValueError(
            f"this layer's parameters are on device {device_of(params[0])!r} but its input "
            f"is on {device_of(x)!r}; move one of them"
        )
    return xp, x


def like(v: Any, ref: Any, xp: Any) -> Any:
    """``v`` (an array of any library, or host data) as an array of ``xp`` on ``ref``'s device."""
    if type(v) is type(ref) and device_of(v) == device_of(ref):
        return v
    return xp.asarray(v, device=device_of(ref))


def _library(a: Any) -> str:
    return type(a).__module__.split(".")[0]
