"""PyTorch on the CPU or any CUDA GPU it sees."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import warnings
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

from ._spec import BackendError, Spec, probe_gpu

#: The start of Dynamo's note on tracing through a ``functools.lru_cache`` wrapper.
_LRU_CACHE_NOTE = "Dynamo detected a call to a `functools.lru_cache`-wrapped function"


class Torch(Spec):
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
        probe_gpu(self, lambda: torch.ones(8, device=dev).sum().item())
        return xp, dev

    def on_cpu(self, dev: Any) -> bool:
        return dev.type == "cpu"

    def warms_up(self, dev: Any) -> bool:
        # CUDA loads each kernel's module lazily and cuBLAS picks its algorithms on the
        # first call of each shape; the CPU has nothing to load.
        return dev.type == "cuda"

    def can_compile(self, dev: Any) -> bool:
        # Inductor writes C++ for the CPU (a compiler must exist), Triton for CUDA
        if dev.type == "cuda":
            import importlib.util

            return importlib.util.find_spec("triton") is not None
        return any(shutil.which(c) for c in (os.environ.get("CXX") or "g++", "c++", "clang++"))

    def compile_pays(self, dev: Any) -> bool:
        # On the CPU the cold compile (seconds) outweighs what a chapter run saves; CUDA
        # is not measured yet (README, "Compiled steps").
        return False

    def compile_step(self, fn: Any, dev: Any) -> Any:
        import torch

        cuda = dev.type == "cuda"
        with _quiet():
            compiled = torch.compile(fn, mode="reduce-overhead" if cuda else None, dynamic=False)

        def step(*args: Any) -> Any:
            with _quiet():
                if not cuda:
                    return compiled(*args)
                torch.compiler.cudagraph_mark_step_begin()
                # a CUDA graph replays into the same memory: what the caller keeps is copied
                return _clone(compiled(*args))

        return step

    def intra_op_threads(self, dev: Any) -> Any:
        if dev.type != "cpu":
            return None
        import torch

        # torch's matmuls run on its own intra-op pool, not on a BLAS threadpoolctl sees
        return torch.get_num_threads, torch.set_num_threads

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

    def free_memory(self, xp: ModuleType, dev: Any) -> tuple[int | None, bool]:
        if getattr(dev, "type", "cpu") != "cuda":
            return super().free_memory(xp, dev)
        import torch

        # the driver's free memory plus what the caching allocator holds unused
        free, _ = torch.cuda.mem_get_info(dev)
        cached = torch.cuda.memory_reserved(dev) - torch.cuda.memory_allocated(dev)
        return int(free) + int(cached), False

    def is_out_of_memory(self, exc: BaseException) -> bool:
        torch = sys.modules.get("torch")
        if torch is None:
            return False
        # torch.OutOfMemoryError since 2.5; torch.cuda.OutOfMemoryError before (same class)
        kinds = (
            getattr(torch, "OutOfMemoryError", None),
            getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None),
        )
        return any(k is not None and isinstance(exc, k) for k in kinds)


def _clone(out: Any) -> Any:
    """Copies of the tensors in nested tuples and dicts (a step's outputs)."""
    if isinstance(out, dict):
        return {k: _clone(v) for k, v in out.items()}
    if isinstance(out, tuple | list):
        return type(out)(_clone(v) for v in out)
    return out.clone() if hasattr(out, "clone") else out


@contextlib.contextmanager
def _quiet() -> Any:
    """torch.compile's notes that are no concern of a caller, silenced where they arise."""
    with warnings.catch_warnings():
        # at each trace: it traces array-api-compat's cached namespace lookup through (a
        # pure function of the array's type)
        warnings.filterwarnings("ignore", _LRU_CACHE_NOTE, UserWarning)
        # Inductor imports modules of torch's that warn of their own deprecation
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="torch")
        yield
