"""This machine's memory, and host draws of initial weights that refuse to outgrow it."""

from __future__ import annotations

import math
import os

import numpy as np

__all__ = ["gib", "memory_text", "physical_memory", "standard_normal"]


def physical_memory() -> int | None:
    """This machine's memory in bytes; None where the system does not say (not POSIX)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def gib(n: float) -> str:
    """Bytes as GiB, or TiB from 1 TiB on (``3.1 GiB``, ``51.3 TiB``)."""
    return f"{n / 2**40:,.1f} TiB" if n >= 2**40 else f"{n / 2**30:,.1f} GiB"


def memory_text(n: float) -> str:
    """Bytes as MiB below 1 GiB, else as :func:`gib`."""
    return gib(n) if n >= 2**30 else f"{n / 2**20:,.1f} MiB"


def standard_normal(rng: np.random.Generator, shape: tuple[int, ...], name: str) -> np.ndarray:
    """``rng.standard_normal(shape)`` (float64), refused with a MemoryError that names
    ``name`` when the draw and the backend's copy of it would not fit in this machine's
    memory: filling it would otherwise let the system kill the process part way."""
    need = 16 * math.prod(int(v) for v in shape)  # the float64 draw + the device copy
    total = physical_memory()
    if total is not None and need > total:
        raise MemoryError(
            f"{name} of shape {tuple(shape)} needs about {memory_text(need)} with its copy on "
            f"the device, more than this machine's {memory_text(total)}"
        )
    return rng.standard_normal(shape)
