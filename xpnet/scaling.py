"""How raw ``uint8`` pixels become floats: the one input-scaling path.

Images stay ``uint8`` on the device (4x less memory than float32) and are scaled by
:data:`PIXEL_SCALE` where they meet the first layer: :func:`input_scale` says whether and
by how much, and the nets fold the factor into the first matmul's (N, H) output.
"""

from __future__ import annotations

from typing import Any

from array_api_compat import array_namespace

__all__ = ["PIXEL_SCALE", "input_scale", "to_float_inputs"]

#: Raw pixels 0..255 become 0..1, as the chapter's ``load_mnist(normalize=True)``.
PIXEL_SCALE = 1.0 / 255.0


def input_scale(x: Any) -> float | None:
    """:data:`PIXEL_SCALE` for ``uint8`` inputs, ``None`` for inputs used as they are."""
    return PIXEL_SCALE if x.dtype == array_namespace(x).uint8 else None


def to_float_inputs(x: Any, dtype: Any) -> Any:
    """``x`` as ``dtype``, scaled as :func:`input_scale` says (for code that needs floats)."""
    xp = array_namespace(x)
    scale = input_scale(x)
    if x.dtype != dtype:
        x = xp.astype(x, dtype)
    return x if scale is None else x * scale
