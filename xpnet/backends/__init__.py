"""The one place that knows backend names, devices and dtypes.

Everything else in xpnet receives arrays and asks :func:`array_api_compat.array_namespace`
for their namespace; :func:`get_backend` turns a name and a device string into a
:class:`Backend`. Each library's quirks (import, device names, GPU probe, host transfer,
synchronisation, dtype support, precision flags, out-of-memory errors, install hint) live
in one module per library (``_numpy``, ``_array_api_strict``, ``_torch``, ``_cupy``,
``_jax``), a subclass of the :class:`~xpnet.backends._spec.Spec` protocol. Adding a
backend is one such module and one entry in ``_registry.SPECS``.

GPU libraries are imported only when such a backend is asked for, so ``import xpnet``
stays cheap on machines that have CuPy or PyTorch installed but no GPU.
"""

from __future__ import annotations

from ._core import Backend, as_backend, canonical_device, dtype_name, get_backend, to_numpy
from ._registry import BACKENDS, SPECS, is_out_of_memory, namespace_spec
from ._spec import DTYPES, BackendError

__all__ = [
    "BACKENDS",
    "DTYPES",
    "SPECS",
    "Backend",
    "BackendError",
    "as_backend",
    "canonical_device",
    "dtype_name",
    "get_backend",
    "is_out_of_memory",
    "namespace_spec",
    "to_numpy",
]
