"""The :class:`Backend` value object, :func:`get_backend` and :func:`to_numpy`.

A name such as ``"cupy"`` or ``"torch"`` plus a device string becomes a :class:`Backend`:
the namespace, the device object, the default float dtype and the three host-side
services the training loop needs (``asarray``, ``to_numpy``, ``synchronize``). What
differs between libraries is asked of their spec (``_registry.SPECS``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

from .._env import env_flag
from ._registry import SPECS, normal_name, spec_for
from ._spec import DTYPES, BackendError, Spec, namespace_or_none

__all__ = ["Backend", "canonical_device", "dtype_name", "get_backend", "to_numpy"]

DEFAULT_DTYPE = "float32"
_HOST_TYPES = (np.ndarray, np.generic, int, float, bool, complex)


# --- the Backend value object --------------------------------------------------------------


@dataclass(frozen=True)
class Backend:
    """An array library bound to one device and one default float dtype.

    Attributes
    ----------
    name : str
        One of :data:`BACKENDS`.
    xp : module
        The array-API namespace (array-api-compat's wrapper where the library needs one).
    device : object
        The library's own device object; every array xpnet creates goes there.
    float_dtype : dtype
        The namespace's dtype used for floating data (float32 unless asked otherwise).
    tf32 : bool
        True when TF32 float32 matmuls were asked for (``tf32=True`` or ``XPNET_TF32=1``).
        The switch is process-wide (see :func:`get_backend`).
    """

    name: str
    xp: ModuleType = field(repr=False)
    device: Any
    float_dtype: Any
    tf32: bool = False

    @property
    def dtype_name(self) -> str:
        """The float dtype as a plain string, e.g. ``"float32"``."""
        return dtype_name(self.float_dtype)

    @property
    def device_name(self) -> str:
        """The device as a short string for logs and metrics files."""
        return SPECS[self.name].label(self.device)

    @property
    def slow_float16(self) -> bool:
        """True when the library has no float16 matmul kernels (~100x slower than float32)."""
        return SPECS[self.name].slow_float16

    @property
    def mutable_arrays(self) -> bool:
        """True when arrays support in-place updates (``x[i] = v``); False on JAX."""
        return SPECS[self.name].mutable_arrays

    def free_memory_bytes(self) -> tuple[int | None, bool]:
        """``(bytes, on_host)``: memory a new allocation on this device can take now (a
        GPU's free memory with what the library's pool holds unused; else the host's
        available RAM) and whether it is the host's; bytes None when the library does
        not say."""
        return SPECS[self.name].free_memory(self.xp, self.device)

    @property
    def contiguous_stacked_weights(self) -> bool:
        """True when stacked weights of layers 2.. are stored C-contiguous (CuPy)."""
        return SPECS[self.name].contiguous_stacked_weights

    @property
    def on_cpu(self) -> bool:
        """True when the device is the host CPU (BLAS and CPU thread pools apply)."""
        return SPECS[self.name].on_cpu(self.device)

    @property
    def warms_up(self) -> bool:
        """True when training runs one untimed step first (kernels compile on first use)."""
        return SPECS[self.name].warms_up(self.device)

    @property
    def can_compile(self) -> bool:
        """True when the library compiles a whole training step (``jax.jit``,
        ``torch.compile``), see :meth:`compile_step`."""
        return SPECS[self.name].can_compile(self.device)

    @property
    def compile_pays(self) -> bool:
        """True when ``compile="auto"`` compiles the training step here (measured to pay)."""
        return SPECS[self.name].compile_pays(self.device)

    def compile_step(self, fn: Any) -> Any:
        """``fn(params, state, xb, tb, hyper) -> (params, state, loss)`` compiled for this
        device where the library can, else ``fn``; the compiled one may consume its
        ``params`` and ``state`` arrays (use the returned ones)."""
        return SPECS[self.name].compile_step(fn, self.device)

    def compile_function(self, fn: Any) -> Any:
        """A pure function of arrays compiled for this device without consuming its
        inputs where the library compiles evaluations (JAX), else ``fn``."""
        return SPECS[self.name].compile_function(fn, self.device)

    def updates_in_place(self, compiled: bool) -> bool:
        """Whether a training step updates its arrays in place: on libraries with mutable
        arrays, eagerly; a compiled (traced) step builds new ones."""
        return self.mutable_arrays and not compiled

    def intra_op_threads(self) -> Any:
        """The library's own CPU thread pool as ``(get, set)``, or None (see
        :func:`xpnet._threads.blas_threads`)."""
        return SPECS[self.name].intra_op_threads(self.device)

    def asarray(self, x: Any, dtype: Any = None) -> Any:
        """Return ``x`` as an array of this backend, on its device.

        Parameters
        ----------
        x : array_like
            An array of this backend (returned as it is when device and dtype already
            match; cast or moved on the device otherwise), an array of another library
            (brought through the host), a NumPy array, Python scalar or nested list.
        dtype : dtype or str, optional
            Target dtype. By default floating input becomes :attr:`float_dtype` and
            integer or boolean input keeps its dtype.

        Returns
        -------
        array
            An array of :attr:`xp` on :attr:`device`. An input that needs no change is
            returned without a copy (on the numpy backend that includes host arrays), so a
            47 MB image set is not duplicated; copy it first if you will modify one and
            keep the other.
        """
        spec = SPECS[self.name]
        if spec.owns(x):
            if array_api_compat.device(x) != self.device:
                x = array_api_compat.to_device(x, self.device)
            target = self._target(dtype, self.xp.isdtype(x.dtype, "real floating"))
            return x if target is None or x.dtype == target else self.xp.astype(x, target)
        host = np.asarray(x) if isinstance(x, _HOST_TYPES) else to_numpy(x)
        target = self._target(dtype, np.issubdtype(host.dtype, np.floating))
        if target is not None:
            # Cast on the host: a float64 set sent as float32 moves half the bytes.
            host = host.astype(dtype_name(target), copy=False)
        return spec.from_host(self.xp, host, self.device)

    def _target(self, dtype: Any, floating: bool) -> Any:
        if dtype is not None:
            return self.resolve_dtype(dtype)
        return self.float_dtype if floating else None

    def with_dtype(self, dtype: str) -> Backend:
        """The same library and device with another default float dtype (checked)."""
        dtype = _check_dtype_name(dtype, "")
        _check_dtype(SPECS[self.name], self.xp, self.device, dtype)
        return replace(self, float_dtype=getattr(self.xp, dtype))

    def resolve_dtype(self, dtype: Any) -> Any:
        """Return this namespace's dtype object for a name such as ``"float64"``."""
        if isinstance(dtype, str):
            if not hasattr(self.xp, dtype):
                raise BackendError(f"unknown dtype {dtype!r} for backend {self.name!r}")
            return getattr(self.xp, dtype)
        name = dtype_name(dtype)
        return getattr(self.xp, name) if hasattr(self.xp, name) else dtype

    def to_numpy(self, x: Any) -> np.ndarray:
        """Copy an array of this backend to a host NumPy array (see :func:`to_numpy`)."""
        return to_numpy(x)

    def synchronize(self) -> None:
        """Wait until every queued kernel on this device has finished (GPU timing)."""
        SPECS[self.name].synchronize(self.xp, self.device)


def to_numpy(x: Any) -> np.ndarray:
    """Copy an array of any supported backend (or a scalar, list or tuple) to the host.

    Parameters
    ----------
    x : array, scalar, list or tuple
        NumPy, CuPy, PyTorch, JAX or array-api-strict array, a Python number, or a
        (nested) list/tuple of such scalars or same-shaped arrays. Device arrays in a list
        are stacked on their device first, so the list costs one transfer.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype, on the host.
    """
    if isinstance(x, _HOST_TYPES):
        return np.asarray(x)
    if isinstance(x, list | tuple):
        first = _first_device_array(x)
        if first is None:
            return np.asarray(x)
        xp = array_api_compat.array_namespace(first)
        return to_numpy(_stack(x, xp, array_api_compat.device(first)))
    for spec in SPECS.values():
        if spec.owns(x):
            return spec.to_host(x)
    return np.asarray(x)


def _first_device_array(seq: list | tuple) -> Any:
    for v in seq:
        if isinstance(v, list | tuple):
            found = _first_device_array(v)
            if found is not None:
                return found
        elif not isinstance(v, _HOST_TYPES) and namespace_or_none(v) is not None:
            return v
    return None


def _stack(seq: list | tuple, xp: ModuleType, dev: Any) -> Any:
    parts = [
        _stack(v, xp, dev) if isinstance(v, list | tuple) else xp.asarray(v, device=dev)
        for v in seq
    ]
    return xp.stack(parts)


def get_backend(
    name: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    *,
    tf32: bool | None = None,
) -> Backend:
    """Build the :class:`Backend` for a name and device.

    Each setting comes from the argument, else the environment (``XPNET_BACKEND``,
    ``XPNET_DEVICE``, ``XPNET_DTYPE``, ``XPNET_TF32``), else the default (``numpy``, the
    library's default device, ``float32``, the library's own matmul precision).

    Parameters
    ----------
    name : {"numpy", "array_api_strict", "torch", "cupy", "jax"}, optional
    device : str, optional
        ``"cpu"``, ``"cuda"`` (= ``"cuda:0"``), ``"cuda:1"`` (torch and JAX; CuPy uses the
        current GPU only, chosen with ``CUDA_VISIBLE_DEVICES``), or an array-api-strict
        device name (``"CPU_DEVICE"``, ``"device1"``, ``"device2"``, ``"no_float64"``).
    dtype : {"float32", "float64", "float16"}, optional
        Default float dtype for data and parameters.
    tf32 : bool, optional
        Allow (True) or forbid (False) TF32 for float32 matmuls on NVIDIA GPUs. These are
        process-wide library switches (torch ``allow_tf32``, JAX's default matmul
        precision, CuPy's compute type): they are changed only when this argument or
        ``XPNET_TF32`` is given, and then apply to every array of that library in the
        process, including Backends built earlier. Left alone, torch and CuPy use full
        float32 and JAX uses TF32 on GPUs that have it.

    Returns
    -------
    Backend

    Raises
    ------
    BackendError
        Unknown name, device or dtype; library not installed; no usable GPU; float64
        asked of a device that has none. The message is one line saying what to do.
    """
    env = os.environ
    env_name = normal_name(env.get("XPNET_BACKEND") or "numpy")
    name = normal_name(name) if name else env_name
    if device is None and name == env_name:
        # XPNET_DEVICE belongs to XPNET_BACKEND: an explicitly named other backend
        # (get_backend("numpy") under XPNET_DEVICE=device1) uses its own default device.
        device = env.get("XPNET_DEVICE") or None
    dtype = _check_dtype_name(dtype or env.get("XPNET_DTYPE") or DEFAULT_DTYPE, "XPNET_DTYPE")
    if tf32 is None:
        tf32 = env_flag("XPNET_TF32", BackendError)

    spec = spec_for(name, "argument or XPNET_BACKEND")
    xp, dev = spec.open(spec.canonical_device(device))
    _check_dtype(spec, xp, dev, dtype)
    if tf32 is not None:
        spec.set_tf32(tf32)
    return Backend(name=name, xp=xp, device=dev, float_dtype=getattr(xp, dtype), tf32=bool(tf32))


def as_backend(backend: Backend | str | None, dtype: str | None = None) -> Backend:
    """What a ``backend=`` argument names: a :class:`Backend` as given (in ``dtype`` if
    given), a backend name, or None for :func:`get_backend`'s default."""
    if isinstance(backend, Backend):
        return backend if dtype is None else backend.with_dtype(dtype)
    return get_backend(backend, None, dtype)


def canonical_device(name: str, device: str | None) -> str:
    """The one spelling of a backend's device, e.g. ``("cupy", "cuda") -> "cuda:0"``.

    Needs no library import; raises :class:`BackendError` for a device the backend never
    accepts (CuPy ``cuda:N`` with N >= 1 included).
    """
    return spec_for(name).canonical_device(device)


def _check_dtype_name(dtype: str, env_var: str) -> str:
    dtype = dtype.strip().lower()
    if dtype not in DTYPES:
        where = f" (argument or {env_var})" if env_var else ""
        raise BackendError(f"unknown dtype {dtype!r}; choose one of: {', '.join(DTYPES)}{where}")
    return dtype


def _check_dtype(spec: Spec, xp: ModuleType, dev: Any, dtype: str) -> None:
    supported = spec.float_dtypes(xp, dev)
    if dtype not in supported:
        raise BackendError(
            f"device {spec.label(dev)!r} of backend {spec.name!r} has no {dtype}; "
            f"use one of {', '.join(sorted(supported))} (argument or XPNET_DTYPE)"
            + (spec.float64_hint if dtype == "float64" else "")
        )


def dtype_name(dtype: Any) -> str:
    """A dtype of any library (or an array) as a plain name such as ``"float32"``."""
    if not isinstance(dtype, type | np.dtype | str) and hasattr(dtype, "shape"):  # an array
        dtype = dtype.dtype
    if isinstance(dtype, str):
        return dtype
    try:
        return np.dtype(dtype).name  # NumPy, CuPy and JAX dtypes
    except TypeError:
        pass
    # torch.float32, array_api_strict.float32, ...
    return str(dtype).rsplit(".", 1)[-1].strip("'>")
