"""gradcheck: passes right gradients, reports wrong ones, on every backend."""

from __future__ import annotations

import numpy as np
import pytest

import xpnet
from xpnet import GradcheckError, PrecisionWarning, gradcheck
from xpnet.testing import numerical_atol

#: A central difference along a unit vector v is off by h^2/6 * sum(v^3 * f3), f3 the
#: third derivative per element; for the cubic below f3 = 6 - cos(x), so along e_i by
#: exactly h^2 (1 - cos(x_i)/6), up to rounding.
H = xpnet.default_step("float64")


def _truncation(x, v=None):
    third = 6 - np.cos(x).ravel()
    if v is None:
        return (H**2 / 6 * third).reshape(x.shape)
    return H**2 / 6 * (v**3 @ third)


def _cubic(backend):
    xp = backend.xp
    x = backend.asarray(np.random.default_rng(0).standard_normal((3, 4)))

    def f(v):
        return xp.sum(v**3) + xp.sum(xp.sin(v))

    def grad(v):
        return 3 * v**2 + xp.cos(v)

    return x, f, grad


@pytest.mark.parametrize("fast", [False, True], ids=["full", "fast"])
def test_right_gradient_passes(backend, fast):
    x, f, grad = _cubic(backend)
    report = gradcheck(f, grad, x, fast=fast)
    assert report.passed and report.dtype == "float64"
    assert report.checked == (4 if fast else 12)
    host = backend.to_numpy(x)
    if fast:  # the same seeded directions on every backend
        v = np.random.default_rng(0).standard_normal((4, 12))
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        expected = np.max(np.abs(_truncation(host, v)))
    else:
        expected = np.max(_truncation(host))
    assert report.max_abs_error == pytest.approx(expected, abs=numerical_atol("float64"))


def test_host_gradient_is_moved_to_the_device(backend):
    """grad given as a host NumPy array (or a list) works on every backend."""
    x, f, _ = _cubic(backend)
    host = backend.to_numpy(x)
    for analytic in (3 * host**2 + np.cos(host), (3 * host**2 + np.cos(host)).tolist()):
        report = gradcheck(f, analytic, x)
        assert report.passed
        assert report.max_abs_error == pytest.approx(
            np.max(_truncation(host)), abs=numerical_atol("float64")
        )
    with pytest.raises(GradcheckError):
        gradcheck(f, -(3 * host**2 + np.cos(host)), x, fast=True)


def test_wrong_element_is_named(backend):
    x, f, grad = _cubic(backend)
    xp = backend.xp
    mask = xp.astype(xp.reshape(xp.arange(12, device=backend.device) == 6, (3, 4)), x.dtype)

    def wrong(v):
        return grad(v) + 0.01 * mask  # element (1, 2) off by 0.01

    with pytest.raises(GradcheckError) as info:
        gradcheck(f, wrong, x)
    report = info.value.report
    assert report.worst == (1, 2) and not report.passed
    host = backend.to_numpy(x)
    assert report.max_abs_error == pytest.approx(0.01 - _truncation(host)[1, 2], abs=H**2)
    assert "worst at element (1, 2)" in str(info.value)
    assert backend.to_numpy(x)[1, 2] == np.random.default_rng(0).standard_normal((3, 4))[1, 2]


def test_fast_mode_catches_a_wrong_sign(backend):
    x, f, grad = _cubic(backend)
    with pytest.raises(GradcheckError, match=r"fast, 4 directions"):
        gradcheck(f, lambda v: -grad(v), x, fast=True)


def test_batched_full_mode_and_report_without_raising(backend):
    x, f, grad = _cubic(backend)
    xp = backend.xp

    def f_stack(s):
        return xp.sum(s**3 + xp.sin(s), axis=(1, 2))

    assert gradcheck(f_stack, grad, x, batched=True).passed
    report = gradcheck(f_stack, lambda v: 2 * grad(v), x, batched=True, raise_exception=False)
    assert not report.passed and report.max_rel_error == pytest.approx(1.0, rel=report.rtol)


def test_two_layer_net_backprop_passes_fast_gradcheck(backend):
    net = xpnet.TwoLayerNet(30, 8, 4, backend=backend, seed=0, weight_init_std=0.5)
    rng = np.random.default_rng(1)
    x, t = backend.asarray(rng.random((5, 30))), backend.asarray(rng.integers(0, 4, size=5))
    w1 = net.params["W1"]

    def loss_at(w):
        net.params["W1"] = w
        try:
            return net.loss(x, t)
        finally:
            net.params["W1"] = w1

    def grad_at(w):
        net.params["W1"] = w
        try:
            return net.gradient(x, t)["W1"]
        finally:
            net.params["W1"] = w1

    report = gradcheck(loss_at, grad_at, w1, fast=True, n_directions=8)
    assert report.passed and report.checked == 8
    with pytest.raises(GradcheckError):
        gradcheck(loss_at, lambda w: 0.5 * grad_at(w), w1, fast=True, n_directions=8)


def test_float32_warns(backend32):
    x, f, grad = _cubic(backend32)
    with pytest.warns(PrecisionWarning, match="in float32: expect only a few correct digits"):
        report = gradcheck(f, grad, x, fast=True, dtype="float32")
    assert report.passed and report.dtype == "float32"


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match=r"grad has shape \(3,\) but x has shape \(2,\)"):
        gradcheck(lambda v: np.sum(v**2), np.zeros(3), np.zeros(2))
