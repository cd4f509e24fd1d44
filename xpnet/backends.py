"""The one place that knows backend names, devices and dtypes.

Everything else in xpnet receives arrays and asks :func:`array_api_compat.array_namespace`
for their namespace. This module turns a name such as ``"cupy"`` or ``"torch"`` plus a
device string into a :class:`Backend`: the namespace, the device object, the default float
dtype and the three host-side services the training loop needs (``asarray``,
``to_numpy``, ``synchronize``).

Each library's quirks (import, device names, GPU probe, host transfer, synchronisation,
dtype support, precision flags, install hint) live in one small spec class per library,
registered in ``_SPECS``; adding a backend means adding one class there.

GPU libraries are imported only when such a backend is asked for, so ``import xpnet``
stays cheap on machines that have CuPy or PyTorch installed but no GPU.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import Any, ClassVar

import array_api_compat
import numpy as np

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendError",
    "canonical_device",
    "dtype_name",
    "get_backend",
    "to_numpy",
]

#: Floating dtypes a Backend can use, by name.
DTYPES = _FLOAT_DTYPES = ("float32", "float64", "float16")
_DEFAULT_DTYPE = "float32"
_HOST_TYPES = (np.ndarray, np.generic, int, float, bool, complex)


class BackendError(RuntimeError):
    """A backend, device or dtype that cannot be used; the message says what to do."""


# --- one spec per library ----------------------------------------------------------------


class _Spec:
    """What xpnet needs to know about one array library.

    Subclasses set the class attributes and override the methods whose default does not
    fit their library. ``canonical_device`` is pure (no import), so device strings can be
    checked and compared without the library installed.
    """

    name: ClassVar[str]
    module: ClassVar[str]  # imported to tell whether the library is installed
    extras: ClassVar[tuple[str, ...]]  # xpnet's pip extras that install it
    install_note: ClassVar[str] = ""
    valid_devices: ClassVar[tuple[str, ...]]  # spellings shown in error messages
    float64_hint: ClassVar[str] = ""

    def canonical_device(self, device: str | None) -> str:
        """The one spelling of ``device`` (``None`` is the library's default device)."""
        raise NotImplementedError

    def open(self, device: str) -> tuple[ModuleType, Any]:
        """Import the library, build its device object for a canonical name, probe it."""
        raise NotImplementedError

    def owns(self, x: Any) -> bool:
        """Whether ``x`` is an array of this library."""
        raise NotImplementedError

    def label(self, dev: Any) -> str:
        return str(dev)

    def from_host(self, xp: ModuleType, host: np.ndarray, dev: Any) -> Any:
        return xp.asarray(host, device=dev)

    def to_host(self, x: Any) -> np.ndarray:
        return np.asarray(x)

    def synchronize(self, xp: ModuleType, dev: Any) -> None:
        """Nothing to wait for on synchronous CPU libraries."""

    def float_dtypes(self, xp: ModuleType, dev: Any) -> tuple[str, ...]:
        return _FLOAT_DTYPES

    def set_tf32(self, on: bool) -> None:
        """Set the library's process-wide float32-matmul precision (no-op on CPU libraries)."""

    # shared helpers

    def install_hint(self) -> str:
        if not self.extras:
            return f"pip install {self.module}"
        return " or ".join(f"pip install 'xpnet[{e}]'" for e in self.extras) + self.install_note

    def import_library(self) -> ModuleType:
        try:
            return importlib.import_module(self.module)
        except ImportError as exc:
            raise BackendError(
                f"backend {self.name!r} is not installed ({exc.msg}); install it with: "
                f"{self.install_hint()}"
            ) from None

    def bad_device(self, device: str, valid: tuple[str, ...] | None = None) -> BackendError:
        names = ", ".join(repr(d) for d in (valid or self.valid_devices))
        return BackendError(
            f"unknown device {device!r} for backend {self.name!r}; valid: {names} "
            "(argument or XPNET_DEVICE)"
        )

    def cuda_or_cpu(self, device: str | None, *, cpu: bool) -> str:
        """Canonical ``"cpu"`` or ``"cuda:N"`` from cpu / cuda / gpu / cuda:N / gpu:N."""
        d = (device or ("cpu" if cpu else "cuda")).strip().lower()
        if cpu and d == "cpu":
            return "cpu"
        head, _, idx = d.partition(":")
        if head not in ("cuda", "gpu") or (idx and not idx.isdigit()):
            raise self.bad_device(device or "")
        return f"cuda:{int(idx or 0)}"


class _NumPy(_Spec):
    name = "numpy"
    module = "numpy"
    extras = ()
    valid_devices = ("cpu",)

    def canonical_device(self, device: str | None) -> str:
        if device is not None and device.strip().lower() != "cpu":
            raise self.bad_device(device)
        return "cpu"

    def open(self, device: str) -> tuple[ModuleType, Any]:
        import array_api_compat.numpy as xp

        return xp, "cpu"

    def owns(self, x: Any) -> bool:
        return isinstance(x, np.ndarray)

    def from_host(self, xp: ModuleType, host: np.ndarray, dev: Any) -> Any:
        return host  # already where it belongs; no copy of a large image set


class _ArrayApiStrict(_Spec):
    name = "array_api_strict"
    module = "array_api_strict"
    extras = ("test",)
    # The library lists Device objects only; these are the names its Device() accepts.
    _NAMES: ClassVar[tuple[str, ...]] = (
        "CPU_DEVICE",
        "device1",
        "device2",
        "no_float64",
        "no_x64",
    )
    valid_devices = ("cpu",) + _NAMES

    def canonical_device(self, device: str | None) -> str:
        d = (device or "CPU_DEVICE").strip()
        return "CPU_DEVICE" if d.lower() == "cpu" else d

    def open(self, device: str) -> tuple[ModuleType, Any]:
        xp = self.import_library()
        available = xp.__array_namespace_info__().devices()
        known = tuple(n for n in self._NAMES if xp.Device(n) in available)
        if device not in known:
            raise self.bad_device(device, ("cpu",) + known)
        return xp, xp.Device(device)

    def owns(self, x: Any) -> bool:
        ns = _namespace_or_none(x)
        return ns is not None and array_api_compat.is_array_api_strict_namespace(ns)

    def label(self, dev: Any) -> str:
        xp = importlib.import_module(self.module)
        return next((n for n in self._NAMES if xp.Device(n) == dev), str(dev))

    def to_host(self, x: Any) -> np.ndarray:
        xp = importlib.import_module(self.module)
        # Only the CPU device hands out its buffer; the simulated devices refuse.
        return np.asarray(x.to_device(xp.Device("CPU_DEVICE")))

    def float_dtypes(self, xp: ModuleType, dev: Any) -> tuple[str, ...]:
        return tuple(xp.__array_namespace_info__().dtypes(device=dev, kind="real floating"))


class _Torch(_Spec):
    name = "torch"
    module = "torch"
    extras = ("torch",)
    valid_devices = ("cpu", "cuda", "cuda:N")

    def canonical_device(self, device: str | None) -> str:
        return self.cuda_or_cpu(device, cpu=True)

    def open(self, device: str) -> tuple[ModuleType, Any]:
        torch = self.import_library()
        import array_api_compat.torch as xp

        if device == "cpu":
            return xp, torch.device("cpu")
        if not torch.backends.cuda.is_built():
            raise BackendError(
                "this torch build has no CUDA support (pip install a CUDA build of torch, "
                "see https://pytorch.org/get-started/locally/), or use device 'cpu'"
            )
        dev = torch.device(device)
        self.check_index(dev.index, torch.cuda.device_count())
        _probe_gpu(self.name, lambda: torch.ones(8, device=dev).sum().item())
        return xp, dev

    def check_index(self, index: int, count: int) -> None:
        """torch honours ``device=``, so any GPU torch sees is usable; others are refused."""
        if 0 < count <= index:
            valid = ("cpu", "cuda") + tuple(f"cuda:{i}" for i in range(count))
            raise BackendError(
                f"backend 'torch' sees {count} GPU(s), so there is no 'cuda:{index}'; valid: "
                + ", ".join(repr(d) for d in valid)
                + " (argument or XPNET_DEVICE)"
            )
        # count == 0 is left to the probe, whose message names the driver problem.

    def owns(self, x: Any) -> bool:
        return array_api_compat.is_torch_array(x)

    def to_host(self, x: Any) -> np.ndarray:
        return x.detach().cpu().numpy()

    def synchronize(self, xp: ModuleType, dev: Any) -> None:
        if dev.type == "cuda":
            import torch

            torch.cuda.synchronize(dev)

    def set_tf32(self, on: bool) -> None:
        import torch

        torch.backends.cuda.matmul.allow_tf32 = on
        torch.backends.cudnn.allow_tf32 = on


class _CuPy(_Spec):
    name = "cupy"
    module = "cupy"
    extras = ("cuda12", "cuda13")
    install_note = " (match your CUDA version)"
    valid_devices = ("cuda", "cuda:0")

    def canonical_device(self, device: str | None) -> str:
        d = self.cuda_or_cpu(device, cpu=False)
        if d != "cuda:0":
            # array-api-compat's CuPy creation functions (arange, zeros, eye, ...) ignore
            # device= and allocate on the current device, so a second GPU would mix devices.
            n = d.partition(":")[2]
            raise BackendError(
                f"backend 'cupy' runs on one GPU, the current one: select GPU {n} with "
                f"CUDA_VISIBLE_DEVICES={n} and use device 'cuda' (or 'cuda:0')"
            )
        return d

    def open(self, device: str) -> tuple[ModuleType, Any]:
        cupy = self.import_library()
        import array_api_compat.cupy as xp

        _probe_gpu(self.name, lambda: float(cupy.ones(8, dtype=cupy.float32).sum()))
        return xp, cupy.cuda.Device(0)

    def owns(self, x: Any) -> bool:
        return array_api_compat.is_cupy_array(x)

    def label(self, dev: Any) -> str:
        return f"cuda:{dev.id}"

    def to_host(self, x: Any) -> np.ndarray:
        return x.get()

    def synchronize(self, xp: ModuleType, dev: Any) -> None:
        dev.synchronize()

    def set_tf32(self, on: bool) -> None:
        # CuPy reads CUPY_TF32 at import; the compute-type switch changes it afterwards
        # without touching os.environ.
        import cupy
        from cupy._core import _routines_linalg as linalg

        kind = linalg.COMPUTE_TYPE_TF32 if on else linalg.COMPUTE_TYPE_DEFAULT
        linalg.set_compute_type(cupy.float32, kind)


class _Jax(_Spec):
    name = "jax"
    module = "jax"
    extras = ("jax",)
    valid_devices = ("cpu", "cuda", "cuda:N")
    float64_hint = " or enable it with JAX_ENABLE_X64=1"

    def canonical_device(self, device: str | None) -> str:
        return self.cuda_or_cpu(device, cpu=True)

    def open(self, device: str) -> tuple[ModuleType, Any]:
        jax = self.import_library()
        import jax.numpy as xp

        if device == "cpu":
            return xp, jax.devices("cpu")[0]
        index = int(device.partition(":")[2])
        try:
            gpus = jax.devices("gpu")
        except RuntimeError:  # no GPU platform initialised
            gpus = []
        if index >= len(gpus):
            valid = ("cpu", "cuda") + tuple(f"cuda:{i}" for i in range(len(gpus)))
            raise BackendError(
                f"backend 'jax' has no usable GPU {index} (found {len(gpus)}); valid: "
                + ", ".join(repr(d) for d in valid)
                + "; install jax[cuda12] for GPUs"
            )
        return xp, gpus[index]

    def owns(self, x: Any) -> bool:
        return array_api_compat.is_jax_array(x)

    def label(self, dev: Any) -> str:
        return "cpu" if dev.platform == "cpu" else f"cuda:{dev.id}"

    def synchronize(self, xp: ModuleType, dev: Any) -> None:
        # JAX has no global barrier; waiting on a fresh array orders after prior work
        # only per stream, which is the best JAX offers without holding every output.
        xp.zeros(1, device=dev).block_until_ready()

    def float_dtypes(self, xp: ModuleType, dev: Any) -> tuple[str, ...]:
        import jax

        return _FLOAT_DTYPES if jax.config.jax_enable_x64 else ("float32", "float16")

    def set_tf32(self, on: bool) -> None:
        import jax

        # 'highest' keeps float32 matmuls exact on GPU/TPU (JAX's default uses TF32/bf16).
        jax.config.update("jax_default_matmul_precision", "tensorfloat32" if on else "highest")


_SPECS: dict[str, _Spec] = {
    s.name: s for s in (_NumPy(), _ArrayApiStrict(), _Torch(), _CuPy(), _Jax())
}

#: Backend names and the pip extras of xpnet that install each one.
BACKENDS: dict[str, tuple[str, ...]] = {name: s.extras for name, s in _SPECS.items()}


def _probe_gpu(backend: str, allocate: Any) -> None:
    """Allocate and compute on the GPU: an import that works proves nothing."""
    try:
        allocate()
    except Exception as exc:  # every CUDA failure mode looks different; report all alike
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BackendError(
            f"backend {backend!r} has no usable GPU ({first}); "
            "check nvidia-smi and the CUDA driver, or use XPNET_BACKEND=numpy"
        ) from None


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
        return _SPECS[self.name].label(self.device)

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
        spec = _SPECS[self.name]
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
        _check_dtype(_SPECS[self.name], self.xp, self.device, dtype)
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
        _SPECS[self.name].synchronize(self.xp, self.device)


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
    for spec in _SPECS.values():
        if spec.owns(x):
            return spec.to_host(x)
    return np.asarray(x)


def _first_device_array(seq: list | tuple) -> Any:
    for v in seq:
        if isinstance(v, list | tuple):
            found = _first_device_array(v)
            if found is not None:
                return found
        elif not isinstance(v, _HOST_TYPES) and _namespace_or_none(v) is not None:
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
    env_name = _normal_name(env.get("XPNET_BACKEND") or "numpy")
    name = _normal_name(name) if name else env_name
    if device is None and name == env_name:
        # XPNET_DEVICE belongs to XPNET_BACKEND: an explicitly named other backend
        # (get_backend("numpy") under XPNET_DEVICE=device1) uses its own default device.
        device = env.get("XPNET_DEVICE") or None
    dtype = _check_dtype_name(dtype or env.get("XPNET_DTYPE") or _DEFAULT_DTYPE, "XPNET_DTYPE")
    if tf32 is None:
        tf32 = _env_flag("XPNET_TF32")

    spec = _SPECS.get(name)
    if spec is None:
        raise BackendError(
            f"unknown backend {name!r}; choose one of: {', '.join(_SPECS)} "
            "(argument or XPNET_BACKEND)"
        )
    xp, dev = spec.open(spec.canonical_device(device))
    _check_dtype(spec, xp, dev, dtype)
    if tf32 is not None:
        spec.set_tf32(tf32)
    return Backend(name=name, xp=xp, device=dev, float_dtype=getattr(xp, dtype), tf32=bool(tf32))


def canonical_device(name: str, device: str | None) -> str:
    """The one spelling of a backend's device, e.g. ``("cupy", "cuda") -> "cuda:0"``.

    Needs no library import; raises :class:`BackendError` for a device the backend never
    accepts (CuPy ``cuda:N`` with N >= 1 included).
    """
    spec = _SPECS.get(_normal_name(name))
    if spec is None:
        raise BackendError(f"unknown backend {name!r}; choose one of: {', '.join(_SPECS)}")
    return spec.canonical_device(device)


def _normal_name(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def _env_flag(var: str) -> bool | None:
    raw = os.environ.get(var, "").strip().lower()
    if not raw:
        return None
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise BackendError(f"{var}={raw!r} is not a switch; use 1 or 0")


def _check_dtype_name(dtype: str, env_var: str) -> str:
    dtype = dtype.strip().lower()
    if dtype not in _FLOAT_DTYPES:
        where = f" (argument or {env_var})" if env_var else ""
        raise BackendError(
            f"unknown dtype {dtype!r}; choose one of: {', '.join(_FLOAT_DTYPES)}{where}"
        )
    return dtype


def _check_dtype(spec: _Spec, xp: ModuleType, dev: Any, dtype: str) -> None:
    supported = spec.float_dtypes(xp, dev)
    if dtype not in supported:
        raise BackendError(
            f"device {spec.label(dev)!r} of backend {spec.name!r} has no {dtype}; "
            f"use one of {', '.join(sorted(supported))} (argument or XPNET_DTYPE)"
            + (spec.float64_hint if dtype == "float64" else "")
        )


# --- small helpers ---------------------------------------------------------------------


def _namespace_or_none(x: Any) -> Any:
    try:
        return array_api_compat.array_namespace(x)
    except TypeError:
        return None


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
