"""The ordered registry of backend specs: adding a backend is its module and one entry here.

The order is the order of help texts and error messages, and of the ``to_numpy``
dispatch (NumPy first: the cheapest test and the most common array).
"""

from __future__ import annotations

import functools
from types import ModuleType

from ._array_api_strict import ArrayApiStrict
from ._cupy import CuPy
from ._jax import Jax
from ._numpy import NumPy
from ._spec import BackendError, Spec
from ._torch import Torch

__all__ = ["BACKENDS", "SPECS", "is_out_of_memory", "namespace_spec", "normal_name", "spec_for"]

SPECS: dict[str, Spec] = {
    s.name: s
    for s in (
        NumPy(),
        ArrayApiStrict(),
        Torch(),
        CuPy(),
        Jax(),
    )
}

#: Backend names and the pip extras of xpnet that install each one.
BACKENDS: dict[str, tuple[str, ...]] = {name: s.extras for name, s in SPECS.items()}


def normal_name(name: str) -> str:
    """One spelling of a backend name: ``" Array-API-Strict"`` -> ``"array_api_strict"``."""
    return name.strip().lower().replace("-", "_")


def spec_for(name: str, where: str = "") -> Spec:
    """The spec of a backend name (any spelling); ``where`` names the setting in errors."""
    spec = SPECS.get(normal_name(name))
    if spec is None:
        raise BackendError(
            f"unknown backend {name!r}; choose one of: {', '.join(SPECS)}"
            + (f" ({where})" if where else "")
        )
    return spec


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` means a host or device allocation failed.

    True for :class:`MemoryError` (NumPy's "Unable to allocate", CuPy's pool) and for each
    library's own out-of-memory error: ``torch.OutOfMemoryError``, CuPy's allocation
    failures inside CUDA libraries, JAX's ``RESOURCE_EXHAUSTED``. Imports no library:
    one that is not imported yet cannot have raised ``exc``.
    """
    if isinstance(exc, MemoryError):
        return True
    return any(spec.is_out_of_memory(exc) for spec in SPECS.values())


#: The flags of a namespace no spec owns (a duck array library): the defaults.
_GENERIC = Spec()


@functools.cache
def namespace_spec(xp: ModuleType) -> Spec:
    """The spec of an array namespace, for its capability flags (math code asks them).

    Cached per namespace; a namespace of no known library gets the defaults of
    :class:`Spec`.
    """
    return next((s for s in SPECS.values() if s.owns_namespace(xp)), _GENERIC)
