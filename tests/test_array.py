"""The array-API helpers shared by the math modules."""

from __future__ import annotations

import numpy as np
from array_api_compat import device

from xpnet import _array


def test_scalar_is_one_cached_0d_array_per_dtype_and_device(backend32):
    xp = backend32.xp
    x = backend32.asarray(np.arange(6.0).reshape(2, 3))
    zero = _array.scalar(0.0, x, xp)
    assert zero.shape == () and zero.dtype == x.dtype and device(zero) == device(x)
    assert float(backend32.to_numpy(zero)) == 0.0
    assert _array.scalar(0.0, x[:1, ...], xp) is zero  # same dtype and device: same array
    assert _array.scalar(2.5, x, xp) is not zero
    counts = xp.astype(x, xp.int32)
    one = _array.scalar(1, counts, xp)
    assert one.dtype == xp.int32 and _array.scalar(1, counts, xp) is one
    want = np.maximum(np.arange(6.0) - 2, 0).reshape(2, 3)
    np.testing.assert_array_equal(backend32.to_numpy(xp.maximum(x - 2.0, zero)), want)
