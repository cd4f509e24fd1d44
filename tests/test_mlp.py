"""MultiLayerNet and the one forward/backward (xpnet.mlp): init, gradients, model axis."""

from __future__ import annotations

import math

import numpy as np
import pytest

import xpnet
from xpnet import MultiLayerNet, TwoLayerNet, mlp
from xpnet.testing import numerical_atol, tolerance


def _batch(n=2, d=784, classes=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, d)), rng.integers(0, classes, size=n)


@pytest.mark.parametrize(
    ("sizes", "activation"),
    [((784, [100, 100, 100], 10), "relu"), ((30, [20, 20], 10), "sigmoid")],
)
def test_backprop_matches_numerical_gradient_deep_net_with_weight_decay(
    backend, sizes, activation
):
    net = MultiLayerNet(
        *sizes,
        activation=activation,
        weight_init_std=activation,
        weight_decay_lambda=0.1,
        backend=backend,
        seed=0,
    )
    x, t = _batch(d=sizes[0])
    analytic = net.gradient(x, t)
    numeric = net.numerical_gradient(x, t)
    for k in net.params:
        a, n = backend.to_numpy(analytic[k]), backend.to_numpy(numeric[k])
        assert a.shape == n.shape == tuple(net.params[k].shape)
        rel = np.abs(a - n).max() / max(np.abs(n).max(), numerical_atol("float64"))
        assert rel <= 1e-8, (k, rel)


def test_structured_and_generic_numerical_gradients_agree(backend):
    net = MultiLayerNet(12, [6, 5], 4, weight_decay_lambda=0.05, backend=backend, seed=2)
    x, t = _batch(3, 12, 4)
    s = net.numerical_gradient(x, t)
    g = net.numerical_gradient(x, t, method="generic")
    for k in net.params:
        np.testing.assert_allclose(
            backend.to_numpy(s[k]), backend.to_numpy(g[k]), rtol=0, atol=numerical_atol("float64")
        )


@pytest.mark.parametrize(
    ("init", "gain"), [("he", 2.0), ("relu", 2.0), ("xavier", 1.0), ("sigmoid", 1.0)]
)
def test_named_initial_scales_are_per_layer_and_the_same_everywhere(backend32, init, gain):
    net = MultiLayerNet(20, [30, 40], 5, weight_init_std=init, backend=backend32, seed=4)
    rng = np.random.default_rng(4)
    for i, (n_in, n_out) in enumerate([(20, 30), (30, 40), (40, 5)], start=1):
        ref = math.sqrt(gain / n_in) * rng.standard_normal((n_in, n_out))
        np.testing.assert_array_equal(
            backend32.to_numpy(net.params[f"W{i}"]), ref.astype(np.float32)
        )
        np.testing.assert_array_equal(backend32.to_numpy(net.params[f"b{i}"]), np.zeros(n_out))


def test_two_layer_net_is_the_one_hidden_layer_case():
    a = TwoLayerNet(30, 7, 4, backend="numpy", dtype="float64", seed=3)
    b = MultiLayerNet(
        30,
        [7],
        4,
        activation="sigmoid",
        weight_init_std=0.01,
        backend="numpy",
        dtype="float64",
        seed=3,
    )
    x, t = _batch(5, 30, 4)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    assert float(a.loss(x, t)) == float(b.loss(x, t))
    np.testing.assert_allclose(np.asarray(a.predict(x)).sum(axis=1), 1.0, rtol=1e-12)


def test_weight_decay_adds_half_lambda_sum_of_squares():
    x, t = _batch(4, 10, 3)
    plain = MultiLayerNet(10, [6], 3, backend="numpy", dtype="float64", seed=0)
    decayed = MultiLayerNet(
        10, [6], 3, weight_decay_lambda=0.3, backend="numpy", dtype="float64", seed=0
    )
    l2 = sum(float(np.sum(plain.params[k] ** 2)) for k in ("W1", "W2"))
    assert float(decayed.loss(x, t)) == pytest.approx(
        float(plain.loss(x, t)) + 0.15 * l2, rel=1e-14
    )
    g0, g1 = plain.gradient(x, t), decayed.gradient(x, t)
    np.testing.assert_allclose(g1["W2"], g0["W2"] + 0.3 * plain.params["W2"], rtol=1e-13)
    np.testing.assert_array_equal(g1["b2"], g0["b2"])


def test_stacked_parameters_give_each_members_loss_and_gradient(backend):
    """W1 (K, D, H), b1 (K, 1, H): one call equals K single-net calls, x shared or not."""
    k = 3
    nets = [
        MultiLayerNet(
            8, [5, 4], 3, activation="sigmoid", weight_init_std=0.5, backend=backend, seed=s
        )
        for s in range(k)
    ]
    xp = backend.xp
    stacked = {}
    for name in nets[0].params:
        parts = [n.params[name] for n in nets]
        stacked[name] = xp.stack(parts if name[0] == "W" else [p[None, :] for p in parts])
    x, t = _batch(6, 8, 3, seed=1)
    xd, td = backend.asarray(x), backend.asarray(np.eye(3)[t])
    lam = backend.asarray(np.array([0.0, 0.1, 0.2]).reshape(k, 1, 1))
    loss, grads = mlp.loss_and_grads(stacked, xd, td, "sigmoid", weight_decay=lam)
    xs = xp.stack([xd, xd * 0.5, xd * 2.0])  # (K, N, D): a batch per model
    loss2, _ = mlp.loss_and_grads(stacked, xs, td, "sigmoid")
    rtol, atol = tolerance("float64")
    for i, net in enumerate(nets):
        net.weight_decay_lambda = [0.0, 0.1, 0.2][i]
        ref_loss, ref = net.loss_and_gradient(x, t)
        assert float(backend.to_numpy(loss)[i]) == pytest.approx(
            float(backend.to_numpy(ref_loss)), rel=rtol
        )
        for name in ref:
            got = backend.to_numpy(grads[name])[i]
            want = backend.to_numpy(ref[name])
            np.testing.assert_allclose(got.reshape(want.shape), want, rtol=rtol, atol=atol)
        net.weight_decay_lambda = 0.0
        scaled = float(backend.to_numpy(net.loss(x * [1.0, 0.5, 2.0][i], t)))
        assert float(backend.to_numpy(loss2)[i]) == pytest.approx(scaled, rel=rtol)
    counts = mlp.correct_count(stacked, xd, backend.asarray(t), "sigmoid")
    assert tuple(counts.shape) == (k,)
    for i, net in enumerate(nets):
        assert int(backend.to_numpy(counts)[i]) == int(backend.to_numpy(net.correct_count(x, t)))


def test_bad_multilayer_arguments():
    with pytest.raises(ValueError, match=r"hidden_size_list\[1\] must be a positive integer"):
        MultiLayerNet(4, [3, 0], 2, backend="numpy")
    with pytest.raises(ValueError, match="weight_init_std must be a positive number or one of"):
        MultiLayerNet(4, [3], 2, weight_init_std="lecun", backend="numpy")
    with pytest.raises(ValueError, match="weight_decay_lambda must be >= 0"):
        MultiLayerNet(4, [3], 2, weight_decay_lambda=-1, backend="numpy")
    with pytest.raises(ValueError, match="model axis"):
        xpnet.mlp  # noqa: B018
        from xpnet.numerical_mlp import numerical_gradient_mlp

        w = np.zeros((2, 4, 3))
        numerical_gradient_mlp(
            {"W1": w, "b1": np.zeros((2, 1, 3))}, np.zeros((1, 4)), np.zeros((1, 3)), "relu"
        )


@pytest.mark.skip_backends("array_api_strict:no_float64", reason="the device has no float64")
def test_targets_of_another_float_dtype_are_cast_to_the_params(backend32):
    """float64 one-hot targets with float32 parameters: the loss and the gradients keep the
    parameters' dtype and equal those from float32 targets."""
    net = TwoLayerNet(8, 5, 3, backend=backend32, seed=0)
    x, t = _batch(6, 8, 3, seed=2)
    xd = backend32.asarray(x)
    hot = np.eye(3)[t]
    t32 = backend32.asarray(hot, dtype=backend32.xp.float32)
    t64 = backend32.asarray(hot, dtype=backend32.xp.float64)
    loss32, g32 = mlp.loss_and_grads(net.params, xd, t32, "sigmoid")
    loss64, g64 = mlp.loss_and_grads(net.params, xd, t64, "sigmoid")
    assert loss64.dtype == backend32.xp.float32
    assert float(backend32.to_numpy(loss64)) == float(backend32.to_numpy(loss32))
    for name, g in g64.items():
        assert g.dtype == backend32.xp.float32
        np.testing.assert_array_equal(backend32.to_numpy(g), backend32.to_numpy(g32[name]))
