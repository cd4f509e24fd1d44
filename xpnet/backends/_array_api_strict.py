"""array-api-strict: the standard and nothing more, with simulated extra devices."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any, ClassVar

import array_api_compat
import numpy as np

from ._spec import Spec, namespace_or_none


class ArrayApiStrict(Spec):
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
    slow_float16 = True  # computes with NumPy underneath

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
        ns = namespace_or_none(x)
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
