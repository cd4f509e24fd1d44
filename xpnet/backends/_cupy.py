"""CuPy on the current CUDA GPU."""

from __future__ import annotations

import importlib
import os
import sys
from importlib import metadata
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

from ._spec import BackendError, Spec, probe_gpu


class CuPy(Spec):
    name = "cupy"
    module = "cupy"
    extras = ("cuda12", "cuda13")
    install_note = " (match your CUDA version)"
    valid_devices = ("cuda", "cuda:0")
    native_vecdot = False  # array-api-compat's fallback: one 1 x C @ C x 1 GEMM per row
    contiguous_stacked_weights = True  # cupy.matmul copies non-contiguous batches
    compiles_kernels = True  # NVRTC, 0.2-0.3 s per new kernel

    @property
    def toolkit_hint(self) -> str:  # type: ignore[override]
        wheel = next((d for d in _WHEELS if _installed(d)), None)
        ctk = f"pip install '{wheel}[ctk]'" if wheel else "pip install 'cupy-cuda13x[ctk]'"
        return f"{ctk} (CUDA's headers and NVRTC as wheels), or install the CUDA Toolkit"

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

        plain_reductions()  # first: the probe's own sum would compile CUB's headers
        probe_gpu(self, lambda: float(cupy.ones(8, dtype=cupy.float32).sum()))
        return xp, cupy.cuda.Device(0)

    def on_cpu(self, dev: Any) -> bool:
        return False

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

    def free_memory(self, xp: ModuleType, dev: Any) -> tuple[int | None, bool]:
        # the driver's free memory plus the pool's unused blocks, which CuPy hands out first
        import cupy

        with dev:
            free, _ = cupy.cuda.runtime.memGetInfo()
            pooled = cupy.get_default_memory_pool().free_bytes()
        return int(free) + int(pooled), False

    def is_out_of_memory(self, exc: BaseException) -> bool:
        # The memory pool's OutOfMemoryError (a MemoryError too, caught before this);
        # allocations inside cuBLAS/cuRAND surface as a runtime error of the driver.
        memory = sys.modules.get("cupy.cuda.memory")
        oom = getattr(memory, "OutOfMemoryError", None)
        if oom is not None and isinstance(exc, oom):
            return True
        runtime = sys.modules.get("cupy_backends.cuda.api.runtime")
        error = getattr(runtime, "CUDARuntimeError", None)
        return error is not None and isinstance(exc, error) and "MemoryAllocation" in str(exc)


#: CuPy's wheels, newest CUDA first.
_WHEELS = ("cupy-cuda13x", "cupy-cuda12x", "cupy-cuda11x")


def _installed(dist: str) -> bool:
    try:
        metadata.version(dist)
    except metadata.PackageNotFoundError:
        return False
    return True


def plain_reductions() -> None:
    """Turn CuPy's CUB block reductions off, unless ``CUPY_ACCELERATORS`` says otherwise.

    With CUB on (CuPy's default) every new reduction kernel (sum, max, argmax,
    count_nonzero per shape class) compiles CUB's headers, 3-4 s each; CuPy's own
    reduction kernels compile in 0.2-0.3 s and are as fast for the nets' small reductions.
    Process-wide, as CuPy's setting is; the routines' precompiled CUB stays on.
    """
    if "CUPY_ACCELERATORS" in os.environ:  # the user's choice
        return
    try:
        accelerator = importlib.import_module("cupy._core._accelerator")
        accelerator.set_reduction_accelerators([])
    except (ImportError, AttributeError):  # another CuPy layout: leave its defaults
        pass
