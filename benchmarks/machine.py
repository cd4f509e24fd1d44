"""The machine description every benchmark result carries: CPU, cores, library versions."""

from __future__ import annotations

import os
import platform
from typing import Any

import numpy as np

import xpnet


def machine() -> dict[str, Any]:
    """The machine and libraries the figures were measured with, as JSON-ready values.

    Keys: ``cpu_count``, ``cpus_usable`` (this process's affinity), ``cpu_model``,
    ``platform``, ``python``, ``numpy``, ``blas``, ``blas_threads``, ``torch``,
    ``torch_threads``, ``cupy``, ``gpu``, ``xpnet``, ``loadavg_start``; ``None`` where a
    library or value is absent.
    """
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas(),
        "blas_threads": blas_threads(),
        "torch": None,
        "torch_threads": None,
        "cupy": None,
        "gpu": None,
        "xpnet": xpnet.__version__,
        # Other processes share these CPUs; a high load makes every time here longer.
        "loadavg_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    try:
        import cupy

        info["cupy"] = cupy.__version__
        if info["gpu"] is None:
            info["gpu"] = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    except (ImportError, RuntimeError, OSError, AttributeError):
        pass
    return info


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else ``platform.processor()``."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def blas() -> str | None:
    """NumPy's BLAS as "name version" (e.g. "scipy-openblas 0.3.29"), else ``None``."""
    try:
        cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{cfg.get('name')} {cfg.get('version')}"
    except (TypeError, KeyError):  # NumPy < 2 prints instead of returning
        return None


def blas_threads() -> int | None:
    """Threads NumPy's BLAS would use now (threadpoolctl), else ``None``.

    Read at start-up: the library may lower it for its own work, and
    ``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` set it for the whole process.
    """
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    counts = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
    return max(counts) if counts else None
