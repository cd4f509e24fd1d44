"""gradcheck: passes right gradients, reports wrong ones, on every backend."""

from __future__ import annotations

import numpy as np
import pytest

import xpnet
from xpnet import GradcheckError, PrecisionWarning, gradcheck


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
    if backend.name == "jax" and not fast:
        pytest.skip("full mode perturbs in place; JAX uses batched=True")
    x, f, grad = _cubic(backend)
    report = gradcheck(f, grad, x, fast=fast)
    assert report.passed and report.dtype == "float64"
    assert report.checked == (4 if fast else 12)
    assert report.max_rel_error < 1e-7


def test_wrong_element_is_named(backend):
    if backend.name == "jax":
        pytest.skip("full mode perturbs in place; JAX uses batched=True")
    x, f, grad = _cubic(backend)
    xp = backend.xp
    mask = xp.astype(xp.reshape(xp.arange(12, device=backend.device) == 6, (3, 4)), x.dtype)

    def wrong(v):
        return grad(v) + 0.01 * mask  # element (1, 2) off by 0.01

    with pytest.raises(GradcheckError) as info:
        gradcheck(f, wrong, x)
    report = info.value.report
    assert report.worst == (1, 2) and not report.passed
    assert report.max_abs_error == pytest.approx(0.01, rel=1e-4)
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
    assert not report.passed and report.max_rel_error == pytest.approx(1.0, rel=1e-6)


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
    assert report.passed and report.max_rel_error < 1e-7


def test_float32_warns(backend32):
    x, f, grad = _cubic(backend32)
    with pytest.warns(PrecisionWarning, match="gradcheck in float32"):
        report = gradcheck(f, grad, x, fast=True, dtype="float32")
    assert report.passed and report.dtype == "float32"


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match=r"grad has shape \(3,\) but x has shape \(2,\)"):
        gradcheck(lambda v: np.sum(v**2), np.zeros(3), np.zeros(2))
