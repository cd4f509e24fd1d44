"""This machine's memory, and host draws of initial weights that refuse to outgrow it."""

from __future__ import annotations

import math
import os

import numpy as np

__all__ = [
    "HOST_AND_DEVICE",
    "gib",
    "memory_text",
    "over_memory",
    "physical_memory",
    "standard_normal",
]

#: Bytes per weight while a net is built: the host's float64 draw and the backend's copy.
HOST_AND_DEVICE = 8 + 8


def physical_memory() -> int | None:
    """This machine's memory in bytes; None where the system does not say (not POSIX)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def over_memory(need: float) -> int | None:
    """This machine's memory when ``need`` bytes exceed it, else None (also where the
    system does not say how much there is)."""
    total = physical_memory()
    return total if total is not None and need > total else None


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
    need = HOST_AND_DEVICE * math.prod(int(v) for v in shape)
    total = over_memory(need)
    if total is not None:
        raise MemoryError(
            f"{name} of shape {tuple(shape)} needs about {memory_text(need)} with its copy on "
            f"the device, more than this machine's {memory_text(total)}"
        )
    return rng.standard_normal(shape)
