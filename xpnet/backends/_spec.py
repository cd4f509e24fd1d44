"""What xpnet needs to know about one array library: the :class:`Spec` protocol.

Each library's module (``_numpy.py``, ``_torch.py``, ...) subclasses :class:`Spec`; the
registry (``_registry.py``) lists one instance of each, in order.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any, ClassVar

import array_api_compat
import numpy as np

__all__ = [
    "DTYPES",
    "BackendError",
    "Spec",
    "host_available_bytes",
    "namespace_or_none",
    "probe_gpu",
    "probe_message",
]

#: Floating dtypes a Backend can use, by name.
DTYPES = ("float32", "float64", "float16")


class BackendError(RuntimeError):
    """A backend, device or dtype that cannot be used; the message says what to do."""


class Spec:
    """What xpnet needs to know about one array library.

    Subclasses set the class attributes and override the methods whose default does not
    fit their library. ``canonical_device`` is pure (no import), so device strings can be
    checked and compared without the library installed.

    Capabilities (class attributes), so no code outside the backend layer compares names:

    ``slow_float16``
        The library has no float16 matrix-multiply kernels (NumPy runs them ~100x slower
        than float32), so a float16 training run should be refused.
    ``mutable_arrays``
        Arrays support in-place updates (``x[i] = v``); JAX arrays are immutable.
    ``native_vecdot``
        ``vecdot`` is one kernel. Where it is not (CuPy: array-api-compat falls back to a
        batched 1 x C @ C x 1 product per row), the cross-entropy's row dot is
        ``sum(t * s)`` instead; both give equal numbers for one-hot targets.
    ``contiguous_stacked_weights``
        The weights of layers 2.. of stacked models are stored C-contiguous (K, D_in,
        D_out): the library's batched matmul copies operands of other layouts on every
        call (CuPy). Elsewhere they are stored model axis second, as the first layer.
    ``compiles_kernels``
        The library compiles (or loads) kernels on first use, seconds in all, so
        :func:`xpnet.train` runs one untimed step first (see :meth:`warms_up`).
    """

    name: ClassVar[str]
    module: ClassVar[str]  # imported to tell whether the library is installed
    extras: ClassVar[tuple[str, ...]]  # xpnet's pip extras that install it
    install_note: ClassVar[str] = ""
    valid_devices: ClassVar[tuple[str, ...]]  # spellings shown in error messages
    float64_hint: ClassVar[str] = ""
    slow_float16: ClassVar[bool] = False
    mutable_arrays: ClassVar[bool] = True
    native_vecdot: ClassVar[bool] = True
    contiguous_stacked_weights: ClassVar[bool] = False
    compiles_kernels: ClassVar[bool] = False
    #: How to install CUDA headers and NVRTC, where the library compiles with them.
    toolkit_hint: ClassVar[str] = ""

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
        return DTYPES

    def owns_namespace(self, xp: ModuleType) -> bool:
        """Whether ``xp`` is this library's array namespace (or array-api-compat's wrapper)."""
        check = getattr(array_api_compat, f"is_{self.name}_namespace", None)
        return check is not None and check(xp)

    def on_cpu(self, dev: Any) -> bool:
        """Whether ``dev`` computes on the host CPU (so BLAS and thread pools matter)."""
        return True

    def warms_up(self, dev: Any) -> bool:
        """Whether training on ``dev`` should run one untimed step first."""
        return self.compiles_kernels

    def can_compile(self, dev: Any) -> bool:
        """Whether :meth:`compile_step` compiles on ``dev`` (elsewhere it is the identity)."""
        return False

    def compile_pays(self, dev: Any) -> bool:
        """Whether ``compile="auto"`` compiles the training step on ``dev``: only where
        ``scripts/bench.py --section compile`` measured a compiled run, compile time
        included, faster than an eager one (see :mod:`xpnet.step`)."""
        return False

    def compile_step(self, fn: Any, dev: Any) -> Any:
        """``fn(params, state, xb, tb, hyper) -> (params, state, loss)`` compiled for
        ``dev``, where the library can; ``fn`` itself elsewhere. The compiled function
        may consume (donate) its ``params`` and ``state`` arrays: callers keep only the
        ones it returns."""
        return fn

    def compile_function(self, fn: Any, dev: Any) -> Any:
        """A pure function of arrays (an evaluation pass) compiled for ``dev`` without
        consuming its inputs, where that pays; ``fn`` itself elsewhere."""
        return fn

    def intra_op_threads(self, dev: Any) -> Any:
        """The library's own CPU thread pool on ``dev`` as a ``(get, set)`` pair, or None
        (its BLAS is governed through threadpoolctl, or it has no CPU pool)."""
        return None

    def allow_float64(self) -> None:
        """Switch on float64 where the library keeps it off by default (process-wide, before
        the first array is made); most have it on."""

    def set_tf32(self, on: bool) -> None:
        """Set the library's process-wide float32-matmul precision (no-op on CPU libraries)."""

    def free_memory(self, xp: ModuleType, dev: Any) -> tuple[int | None, bool]:
        """``(bytes, on_host)``: what a new allocation on ``dev`` can take now, and whether
        that is the host's RAM (the default: CPU libraries); bytes None when unknown."""
        return host_available_bytes(), True

    def is_out_of_memory(self, exc: BaseException) -> bool:
        """Whether ``exc`` is this library's out-of-memory error (beyond :class:`MemoryError`).

        Looks only at modules already in :data:`sys.modules`: an exception cannot come
        from a library that was never imported, and importing one here would be slow.
        """
        return False

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


#: Words of a failure to compile or to find the CUDA compiler library (lower case).
_TOOLKIT_WORDS = ("nvrtc", "cannot open source file", "cuda_fp16.h", "compileexception",
                  "cuda_path", "include file")  # fmt: skip


def probe_gpu(spec: Spec, allocate: Any) -> None:
    """Allocate and compute on the GPU: an import that works proves nothing.

    The message names the cause found: CUDA headers or NVRTC missing (the library's
    :attr:`Spec.toolkit_hint`), the GPU out of memory, else no usable driver or GPU.
    """
    try:
        allocate()
    except Exception as exc:  # every CUDA failure mode looks different: classified here
        raise BackendError(probe_message(spec, exc)) from None


def probe_message(spec: Spec, exc: BaseException) -> str:
    """The one-line message of a failed GPU probe (see :func:`probe_gpu`)."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    said = f"{type(exc).__name__} {text}".lower()
    if spec.toolkit_hint and any(w in said for w in _TOOLKIT_WORDS):
        return (
            f"backend {spec.name!r} cannot compile its GPU kernels: CUDA headers or NVRTC "
            f"are missing ({first}); {spec.toolkit_hint}"
        )
    if isinstance(exc, MemoryError) or spec.is_out_of_memory(exc) or "out of memory" in said:
        return (
            f"backend {spec.name!r}: the GPU is out of memory ({first}); see nvidia-smi for "
            "the processes that hold it, or use XPNET_BACKEND=numpy"
        )
    return (
        f"backend {spec.name!r} has no usable GPU ({first}); "
        "check nvidia-smi and the CUDA driver, or use XPNET_BACKEND=numpy"
    )


def host_available_bytes() -> int | None:
    """RAM the kernel could give a new allocation without swapping (``MemAvailable``);
    the free pages where ``/proc/meminfo`` does not exist; None if neither says."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def namespace_or_none(x: Any) -> Any:
    """The array-API namespace of ``x``, or None when ``x`` is not an array."""
    try:
        return array_api_compat.array_namespace(x)
    except TypeError:
        return None
