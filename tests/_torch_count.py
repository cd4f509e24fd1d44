"""Count torch tensors built from Python (or NumPy) scalars, with a TorchFunctionMode.

On a GPU each one is a host-to-device copy and a stream synchronization; the training
loop and a sweep's stacked step must build none.
"""

from __future__ import annotations

import numbers
from contextlib import contextmanager

import numpy as np

#: torch functions that build a tensor from their first argument's data.
FACTORIES = ("asarray", "tensor", "as_tensor", "scalar_tensor", "full", "full_like")


@contextmanager
def scalar_tensors():
    """Yields a list that collects ``(function name, value)`` of every such tensor."""
    from torch.overrides import TorchFunctionMode

    built: list[tuple[str, object]] = []

    class Count(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            name = getattr(func, "__name__", "")
            data = args[1] if name == "full" and len(args) > 1 else (args[0] if args else None)
            if name in FACTORIES and isinstance(data, numbers.Number | np.generic):
                built.append((name, data))
            return func(*args, **kwargs)

    with Count():
        yield built
