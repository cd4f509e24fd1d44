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


def test_count_right_counts_rows_whose_largest_score_is_the_label(backend32):
    xp = backend32.xp
    scores = np.array([[0.1, 0.7, 0.2], [0.9, 0.05, 0.05], [0.2, 0.3, 0.5], [0.4, 0.1, 0.5]])
    labels = np.array([1, 0, 1, 2])  # rows 0, 1 and 3 right
    got = _array.count_right(backend32.asarray(scores), backend32.asarray(labels))
    assert got.shape == () and device(got) == backend32.device
    assert int(backend32.to_numpy(got)) == 3
    stacked = np.stack([scores, scores[:, ::-1]])  # (K=2, N, C): the second model reversed
    got = _array.count_right(backend32.asarray(stacked), backend32.asarray(labels), xp)
    want = [np.count_nonzero(np.argmax(s, axis=-1) == labels) for s in stacked]
    np.testing.assert_array_equal(backend32.to_numpy(got), want)
    assert want == [3, 1]


def test_labels_of_takes_labels_or_one_hot_rows(backend32):
    labels = np.array([2, 0, 1])
    hot = np.eye(3, dtype=np.float32)[labels]
    for t in (labels, hot):
        got = _array.labels_of(backend32.asarray(t))
        np.testing.assert_array_equal(backend32.to_numpy(got), labels)
