"""Free memory where a backend's arrays live: the GPU's, or the host's available RAM.

Library-specific by nature (CuPy, torch CUDA and JAX each report their device's memory
their own way); this belongs with the backend layer's other per-library capabilities.
"""

from __future__ import annotations

import os
from typing import Any

from array_api_compat import is_cupy_namespace, is_jax_namespace, is_torch_namespace

__all__ = ["free_memory_bytes", "host_available_bytes"]


def free_memory_bytes(backend: Any) -> tuple[int | None, bool]:
    """``(bytes, on_host)``: memory a new allocation of ``backend`` can take now, and
    whether that is the host's RAM. Bytes are None when the library does not say.

    On a GPU: the driver's free memory plus what the library's own pool holds unused
    (CuPy's memory pool, torch's caching allocator), which it hands out first.
    """
    xp, dev = backend.xp, backend.device
    if is_cupy_namespace(xp):
        with dev:
            free, _ = xp.cuda.runtime.memGetInfo()
        return int(free) + int(xp.get_default_memory_pool().free_bytes()), False
    if is_torch_namespace(xp) and getattr(dev, "type", "cpu") == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info(dev)
        cached = torch.cuda.memory_reserved(dev) - torch.cuda.memory_allocated(dev)
        return int(free) + int(cached), False
    if is_jax_namespace(xp) and getattr(dev, "platform", "cpu") != "cpu":
        stats = dev.memory_stats() or {}
        if "bytes_limit" in stats:
            return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0)), False
        return None, False
    return host_available_bytes(), True


def host_available_bytes() -> int | None:
    """RAM the kernel could give a new allocation without swapping (``MemAvailable``);
    the free pages where ``/proc/meminfo`` does not exist."""
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
