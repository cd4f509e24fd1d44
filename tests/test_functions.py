"""Activations on every backend, against NumPy float64 references."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from array_api_compat import array_namespace
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import xpnet
from xpnet.testing import assert_close

X = np.array([[-800.0, -3.0, -0.5, 0.0], [0.5, 2.0, 40.0, 800.0]])


def _ref_sigmoid(x):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


REFERENCES = {
    "identity_function": lambda x: x,
    "step_function": lambda x: (x > 0).astype(x.dtype),
    "sigmoid": _ref_sigmoid,
    "sigmoid_grad": lambda x: _ref_sigmoid(x) * (1 - _ref_sigmoid(x)),
    "relu": lambda x: np.maximum(x, 0),
    "relu_grad": lambda x: (x > 0).astype(x.dtype),
    "softmax": lambda x: (
        np.exp(x - x.max(-1, keepdims=True))
        / np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True)
    ),
}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_matches_numpy_reference(backend32, name):
    b = backend32
    x = b.asarray(X / 16.0 if name == "softmax" else X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warnings, even at |x| = 800
        y = getattr(xpnet, name)(x)
    ref = REFERENCES[name](b.to_numpy(x).astype(np.float64))
    assert_close(y, ref, xp=b.xp, device=b.device, dtype=b.xp.float32)


def test_sigmoid_saturates_exactly(backend):
    y = backend.to_numpy(xpnet.sigmoid(backend.asarray(np.array([-1000.0, 0.0, 1000.0]))))
    assert y.tolist() == [0.0, 0.5, 1.0]


def test_softmax_one_dimensional_and_batched(backend):
    a = np.array([0.3, 2.9, 4.0])
    y1 = xpnet.softmax(backend.asarray(a))
    assert_close(y1, np.exp(a) / np.exp(a).sum(), xp=backend.xp, device=backend.device)
    yb = xpnet.softmax(backend.asarray(np.stack([a, a + 1000.0])))
    np.testing.assert_allclose(backend.to_numpy(yb)[1], backend.to_numpy(y1), rtol=1e-12)


finite = st.floats(-50, 50, allow_nan=False, width=64)


@settings(max_examples=40, deadline=None)
@given(
    arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 7)), elements=finite),
    st.floats(-100, 100),
)
def test_softmax_rows_sum_to_one_and_ignore_a_shift(x, c):
    xp = array_namespace(x)
    y = xpnet.softmax(x)
    np.testing.assert_allclose(np.sum(y, axis=-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(xpnet.softmax(x + c), y, rtol=1e-9, atol=1e-15)
    assert xp is array_namespace(y)
