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
from xpnet.functions import relu_grad_from_output
from xpnet.testing import assert_close, tolerance

RTOL64, ATOL64 = tolerance("float64")
#: The chapter prints these outputs to 8 decimals: half a unit of the last one.
PRINTED = 5e-9

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


def test_sigmoid_saturates(backend):
    y = backend.to_numpy(xpnet.sigmoid(backend.asarray(np.array([-1000.0, 0.0, 1000.0]))))
    assert 0.0 <= y[0] <= np.finfo(np.float64).tiny  # the true value underflows
    assert y[1:].tolist() == [0.5, 1.0]


def test_softmax_one_dimensional_and_batched(backend):
    a = np.array([0.3, 2.9, 4.0])
    y1 = xpnet.softmax(backend.asarray(a))
    assert_close(y1, np.exp(a) / np.exp(a).sum(), xp=backend.xp, device=backend.device)
    yb = xpnet.softmax(backend.asarray(np.stack([a, a + 1000.0])))
    np.testing.assert_allclose(backend.to_numpy(yb)[1], backend.to_numpy(y1), rtol=RTOL64)


finite = st.floats(-50, 50, allow_nan=False, width=64)


@settings(max_examples=40, deadline=None)
@given(
    arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 7)), elements=finite),
    st.floats(-100, 100),
)
def test_softmax_rows_sum_to_one_and_ignore_a_shift(x, c):
    xp = array_namespace(x)
    y = xpnet.softmax(x)
    np.testing.assert_allclose(np.sum(y, axis=-1), 1.0, rtol=RTOL64)
    # A shift by c rounds x + c: relative error eps * |c| in the exponent.
    np.testing.assert_allclose(
        xpnet.softmax(x + c), y, rtol=RTOL64 * max(1.0, abs(c)), atol=ATOL64
    )
    assert xp is array_namespace(y)


# --- accuracy in both tails, against mpmath ---------------------------------------------

mpmath = pytest.importorskip("mpmath")

#: The points the chapter's readers hit first, then a grid over each dtype's range where
#: sigmoid's lower tail is still a normal number (below it the result is subnormal and
#: only its absolute error is small).
SPECIAL = [-700.0, -40.0, -18.0, -1.0, 0.0, 1.0, 18.0, 40.0]
GRID = {"float64": np.linspace(-708.0, 709.0, 1501), "float32": np.linspace(-87.0, 88.0, 1501)}
ULPS = 4


def _exact(x, grad=False):
    mpmath.mp.dps = 40
    out = []
    for v in x.tolist():
        e = mpmath.exp(-abs(mpmath.mpf(v)))
        s = e / (1 + e) ** 2 if grad else (1 / (1 + e) if v >= 0 else e / (1 + e))
        out.append(float(s))
    return np.array(out)


def _check_ulps(y, x, grad, dtype):
    exact = _exact(x.astype(np.float64), grad)
    tiny = np.finfo(dtype).tiny
    normal = exact >= tiny
    err = np.abs(y.astype(np.float64) - exact)
    ulp = np.spacing(exact.astype(dtype)).astype(np.float64)
    worst = np.max(err[normal] / ulp[normal])
    assert worst <= ULPS, f"{worst:.1f} ulp"
    assert np.all(err[~normal] <= tiny)  # subnormal results: absolute


@pytest.mark.parametrize("name", ["sigmoid", "sigmoid_grad"])
def test_sigmoid_within_a_few_ulp_in_float64(backend, name):
    host = np.concatenate([SPECIAL, GRID["float64"]])
    y = getattr(xpnet, name)(backend.asarray(host))
    assert y.dtype == backend.xp.float64
    _check_ulps(backend.to_numpy(y), host, name == "sigmoid_grad", np.float64)


@pytest.mark.parametrize("name", ["sigmoid", "sigmoid_grad"])
def test_sigmoid_within_a_few_ulp_in_float32(backend32, name):
    host = np.concatenate([SPECIAL[1:], GRID["float32"]]).astype(np.float32)
    y = getattr(xpnet, name)(backend32.asarray(host))
    assert y.dtype == backend32.xp.float32
    _check_ulps(backend32.to_numpy(y), host, name == "sigmoid_grad", np.float32)


def test_sigmoid_tails_the_tanh_form_lost():
    y = xpnet.sigmoid(np.array([-40.0, 40.0]))
    assert y[0] == pytest.approx(4.248354255291589e-18, rel=RTOL64)
    assert y[1] == 1.0
    assert xpnet.sigmoid(np.float32(-18.0)) == pytest.approx(
        1.5229979e-08, rel=tolerance("float32")[0]
    )
    g = xpnet.sigmoid_grad(np.array([-40.0, 40.0]))
    np.testing.assert_allclose(g, 4.248354255291589e-18, rtol=RTOL64)


def test_relu_and_its_gradient_propagate_nan(backend):
    x = backend.asarray(np.array([np.nan, -np.inf, -1.0, -0.0, 0.0, 2.0, np.inf]))
    y = backend.to_numpy(xpnet.relu(x))
    np.testing.assert_array_equal(y, [np.nan, 0.0, 0.0, 0.0, 0.0, 2.0, np.inf])
    g = backend.to_numpy(xpnet.relu_grad(x))
    np.testing.assert_array_equal(g, [np.nan, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0])
    assert np.isnan(backend.to_numpy(relu_grad_from_output(xpnet.relu(x)))[0])


def test_chapter_calls_with_python_numbers_and_lists():
    """As the chapter calls them; the results are NumPy arrays with the chapter's values."""
    s = xpnet.sigmoid(1.0)
    assert isinstance(s, np.ndarray | np.generic) and np.shape(s) == ()
    assert float(s) == pytest.approx(0.7310585786300049, rel=RTOL64)
    np.testing.assert_allclose(
        xpnet.softmax([0.3, 2.9, 4.0]), [0.01821127, 0.24519181, 0.73659691], atol=PRINTED
    )
    assert float(xpnet.step_function(3.0)) == 1.0
    assert xpnet.step_function([-1.0, 1.0, 2.0]).tolist() == [0.0, 1.0, 1.0]
    chapter = [0.26894142, 0.73105858, 0.88079708]
    np.testing.assert_allclose(xpnet.sigmoid([-1.0, 1.0, 2.0]), chapter, atol=PRINTED)
    assert xpnet.relu([-1.0, 2.0]).tolist() == [0.0, 2.0]


def test_python_list_next_to_a_backend_array_joins_its_device(backend):
    x = backend.asarray(np.array([0.0, 1.0]))
    y = xpnet.softmax(x)
    assert_close(y, np.array([1.0, np.e]) / (1.0 + np.e), xp=backend.xp, device=backend.device)
