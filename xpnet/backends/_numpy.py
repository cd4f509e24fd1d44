"""NumPy: the host library, the reference every other backend is checked against."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from ._spec import Spec


class NumPy(Spec):
    name = "numpy"
    module = "numpy"
    extras = ()
    valid_devices = ("cpu",)
    slow_float16 = True  # no float16 BLAS: matmuls run ~100x slower than float32

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
