"""The one place that knows backend names, devices and dtypes.

Everything else in xpnet receives arrays and asks :func:`array_api_compat.array_namespace`
for their namespace. This module turns a name such as ``"cupy"`` or ``"torch"`` plus a
device string into a :class:`Backend`: the namespace, the device object, the default float
dtype and the three host-side services the training loop needs (``asarray``,
``to_numpy``, ``synchronize``).

GPU libraries are imported only when such a backend is asked for, so ``import xpnet``
stays cheap on machines that have CuPy or PyTorch installed but no GPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendError",
    "dtype_name",
    "get_backend",
    "to_numpy",
]

#: Backend names and the pip extra that installs each one.
BACKENDS: dict[str, str] = {
    "numpy": "",
    "array_api_strict": "test",
    "torch": "torch",
    "cupy": "cuda12 or cuda13",
    "jax": "jax",
}

_FLOAT_DTYPES = ("float32", "float64", "float16")
_DEFAULT_DTYPE = "float32"


class BackendError(RuntimeError):
    """A backend, device or dtype that cannot be used; the message says what to do."""


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
        Whether float32 matmuls may use TF32 tensor cores (GPU only, opt-in).
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
        return _device_label(self.name, self.device)

    def asarray(self, host: Any, dtype: Any = None) -> Any:
        """Move a host array (or nested sequence, or scalar) to this backend's device.

        Parameters
        ----------
        host : array_like
            NumPy array, Python scalar or nested list. Arrays of other backends are
            brought to the host first.
        dtype : dtype or str, optional
            Target dtype. By default floating input becomes :attr:`float_dtype` and
            integer or boolean input keeps its dtype.

        Returns
        -------
        array
            An array of :attr:`xp` on :attr:`device`. On the numpy backend (and where a
            library can wrap host memory) an input that already has the target dtype is
            used without a copy, so a 47 MB image set is not duplicated; copy it first if
            you will modify one and keep the other.
        """
        host = np.asarray(to_numpy(host) if _is_device_array(host) else host)
        if dtype is None:
            target = self.float_dtype if np.issubdtype(host.dtype, np.floating) else None
        else:
            target = self.resolve_dtype(dtype)
        if target is not None:
            host = host.astype(dtype_name(target), copy=False)
        if self.name == "array_api_strict":
            # array-api-strict only accepts plain buffers; it copies, so no aliasing.
            return self.xp.asarray(host, device=self.device)
        if self.name == "numpy":
            return host
        return self.xp.asarray(host, device=self.device)

    def with_dtype(self, dtype: str) -> Backend:
        """The same library and device with another default float dtype (checked)."""
        dtype = dtype.strip().lower()
        if dtype not in _FLOAT_DTYPES:
            raise BackendError(
                f"unknown dtype {dtype!r}; choose one of: {', '.join(_FLOAT_DTYPES)}"
            )
        _check_dtype(self.name, self.xp, self.device, dtype)
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
        """Copy an array of this backend to a host NumPy array."""
        return to_numpy(x)

    def synchronize(self) -> None:
        """Wait until every queued kernel on this device has finished (GPU timing)."""
        if self.name == "cupy":
            self.device.synchronize()
        elif self.name == "torch" and self.device.type == "cuda":
            import torch

            torch.cuda.synchronize(self.device)
        elif self.name == "jax":
            # JAX has no global barrier; waiting on a fresh array orders after prior work
            # only per stream, which is the best JAX offers without holding every output.
            self.xp.zeros(1, device=self.device).block_until_ready()


def to_numpy(x: Any) -> np.ndarray:
    """Copy an array of any supported backend (or a scalar) to a host NumPy array.

    Parameters
    ----------
    x : array or scalar
        NumPy, CuPy, PyTorch, JAX or array-api-strict array, or a Python number.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype, on the host.
    """
    if isinstance(x, np.ndarray | np.generic | int | float | bool | list | tuple):
        return np.asarray(x)
    if array_api_compat.is_cupy_array(x):
        return x.get()
    if array_api_compat.is_torch_array(x):
        return x.detach().cpu().numpy()
    ns = _namespace_or_none(x)
    if ns is not None and array_api_compat.is_array_api_strict_namespace(ns):
        import array_api_strict

        # Only the CPU device hands out its buffer; the simulated devices refuse.
        return np.asarray(x.to_device(array_api_strict.Device("CPU_DEVICE")))
    return np.asarray(x)


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
    library's default device, ``float32``, no TF32).

    Parameters
    ----------
    name : {"numpy", "array_api_strict", "torch", "cupy", "jax"}, optional
    device : str, optional
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, or an array-api-strict device name
        (``"CPU_DEVICE"``, ``"device1"``, ``"device2"``, ``"no_float64"``).
    dtype : {"float32", "float64", "float16"}, optional
        Default float dtype for data and parameters.
    tf32 : bool, optional
        Allow TF32 for float32 matmuls on NVIDIA GPUs. Off by default so that GPU results
        match the CPU's to float32 rounding.

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
    dtype = (dtype or env.get("XPNET_DTYPE") or _DEFAULT_DTYPE).strip().lower()
    if tf32 is None:
        tf32 = env.get("XPNET_TF32", "").strip().lower() in ("1", "true", "yes", "on")

    if name not in BACKENDS:
        raise BackendError(
            f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)} "
            "(argument or XPNET_BACKEND)"
        )
    if dtype not in _FLOAT_DTYPES:
        raise BackendError(
            f"unknown dtype {dtype!r}; choose one of: {', '.join(_FLOAT_DTYPES)} "
            "(argument or XPNET_DTYPE)"
        )
    xp, dev = _OPENERS[name](device, tf32)
    _check_dtype(name, xp, dev, dtype)
    return Backend(name=name, xp=xp, device=dev, float_dtype=getattr(xp, dtype), tf32=tf32)


def _normal_name(name: str) -> str:
    return name.strip().lower().replace("-", "_")


# --- one opener per library: import, parse the device, probe it ------------------------


def _import(module: str, backend: str) -> ModuleType:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra = BACKENDS[backend]
        hint = f"pip install 'xpnet[{extra.split(' ')[0]}]'" if extra else "pip install numpy"
        if backend == "cupy":
            hint = "pip install 'xpnet[cuda12]' or 'xpnet[cuda13]' (match your CUDA version)"
        raise BackendError(
            f"backend {backend!r} is not installed ({exc.msg}); install it with: {hint}"
        ) from None


def _bad_device(backend: str, device: str, valid: str) -> BackendError:
    return BackendError(
        f"unknown device {device!r} for backend {backend!r}; valid: {valid} "
        "(argument or XPNET_DEVICE)"
    )


def _cuda_index(backend: str, device: str) -> int:
    """Parse ``cuda``, ``gpu``, ``cuda:N`` into N."""
    d = device.strip().lower()
    head, _, idx = d.partition(":")
    if head not in ("cuda", "gpu") or (idx and not idx.isdigit()):
        raise _bad_device(backend, device, "'cuda', 'cuda:N'")
    return int(idx or 0)


def _open_numpy(device: str | None, tf32: bool) -> tuple[ModuleType, Any]:
    if device not in (None, "cpu"):
        raise _bad_device("numpy", device, "'cpu'")
    import array_api_compat.numpy as xp

    return xp, "cpu"


def _open_array_api_strict(device: str | None, tf32: bool) -> tuple[ModuleType, Any]:
    xp = _import("array_api_strict", "array_api_strict")
    devices = xp.__array_namespace_info__().devices()
    if device is None or device == "cpu":
        return xp, xp.__array_namespace_info__().default_device()
    for d in devices:
        if str(d).split("'")[1] == device:
            return xp, d
    names = ", ".join(repr(str(d).split("'")[1]) for d in devices)
    raise _bad_device("array_api_strict", device, names)


def _open_torch(device: str | None, tf32: bool) -> tuple[ModuleType, Any]:
    torch = _import("torch", "torch")
    import array_api_compat.torch as xp

    d = (device or "cpu").strip().lower()
    if d == "cpu":
        dev = torch.device("cpu")
    else:
        index = _cuda_index("torch", d)
        dev = torch.device("cuda", index)
        _probe_gpu("torch", lambda: torch.ones(8, device=dev).sum().item())
    # Full float32 matmuls unless TF32 was asked for, so GPU numbers match the CPU's.
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    return xp, dev


def _open_cupy(device: str | None, tf32: bool) -> tuple[ModuleType, Any]:
    cupy = _import("cupy", "cupy")
    import array_api_compat.cupy as xp

    index = _cuda_index("cupy", device or "cuda")

    def probe() -> None:
        with cupy.cuda.Device(index):
            float(cupy.ones(8, dtype=cupy.float32).sum())

    _probe_gpu("cupy", probe)
    _set_cupy_tf32(cupy, tf32)
    return xp, cupy.cuda.Device(index)


def _set_cupy_tf32(cupy: ModuleType, tf32: bool) -> None:
    # CuPy reads CUPY_TF32 at import; the compute-type switch changes it afterwards
    # without touching os.environ.
    try:
        from cupy._core import _routines_linalg as linalg
    except ImportError:  # pragma: no cover - layout of CuPy internals changed
        return
    setter = getattr(linalg, "set_compute_type", None)
    if setter is not None:
        kind = linalg.COMPUTE_TYPE_TF32 if tf32 else linalg.COMPUTE_TYPE_DEFAULT
        setter(cupy.float32, kind)


def _open_jax(device: str | None, tf32: bool) -> tuple[ModuleType, Any]:
    jax = _import("jax", "jax")
    import jax.numpy as xp

    # 'highest' keeps float32 matmuls exact on GPU/TPU (JAX's default uses TF32/bf16).
    jax.config.update("jax_default_matmul_precision", "tensorfloat32" if tf32 else "highest")
    d = (device or "cpu").strip().lower()
    if d == "cpu":
        return xp, jax.devices("cpu")[0]
    index = _cuda_index("jax", d)
    try:
        gpus = jax.devices("gpu")
    except RuntimeError:
        gpus = []
    if index >= len(gpus):
        raise BackendError(
            f"backend 'jax' has no usable GPU {index} (found {len(gpus)}); "
            "install jax[cuda12] or use XPNET_DEVICE=cpu"
        )
    return xp, gpus[index]


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


_OPENERS = {
    "numpy": _open_numpy,
    "array_api_strict": _open_array_api_strict,
    "torch": _open_torch,
    "cupy": _open_cupy,
    "jax": _open_jax,
}


def _check_dtype(name: str, xp: ModuleType, dev: Any, dtype: str) -> None:
    supported: Any = None
    info_fn = getattr(xp, "__array_namespace_info__", None)
    if info_fn is not None:
        try:
            supported = info_fn().dtypes(device=dev, kind="real floating")
        except (TypeError, ValueError, NotImplementedError):
            supported = None
    if name == "jax" and dtype == "float64":
        import jax

        if not jax.config.read("jax_enable_x64"):
            supported = {"float32": xp.float32, "float16": xp.float16}
    if name == "torch" and dev.type == "mps" and dtype == "float64":  # pragma: no cover
        supported = {"float32": xp.float32}
    if supported is not None and dtype not in supported and dtype != "float16":
        raise BackendError(
            f"device {_device_label(name, dev)!r} of backend {name!r} has no {dtype}; "
            f"use one of {', '.join(sorted(supported))} (argument or XPNET_DTYPE)"
            + (" or enable it with JAX_ENABLE_X64=1" if name == "jax" else "")
        )


# --- small helpers ---------------------------------------------------------------------


def _namespace_or_none(x: Any) -> Any:
    try:
        return array_api_compat.array_namespace(x)
    except TypeError:
        return None


def _is_device_array(x: Any) -> bool:
    return (
        not isinstance(x, np.ndarray | np.generic | list | tuple | int | float | bool)
        and _namespace_or_none(x) is not None
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


def _device_label(name: str, device: Any) -> str:
    if name == "cupy":
        return f"cuda:{device.id}"
    if name == "array_api_strict":
        return str(device).split("'")[1]
    if name == "jax":
        return f"{device.platform}:{device.id}"
    return str(device)
