"""MultiLayerNetExtend and what every layered net shares: gradients, modes, parameters."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import xpnet
from xpnet import MultiLayerNet, MultiLayerNetExtend
from xpnet.testing import assert_close, numerical_atol


def _batch(n=6, d=10, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.integers(0, classes, n)


def _assert_gradient(analytic, numerical, name):
    """Within 1e-7 of the largest entry, plus a central difference's own rounding (a bias
    before batch norm has an exact gradient of 0)."""
    a, n = np.asarray(analytic), np.asarray(numerical)
    err = np.abs(a - n).max()
    assert err <= 1e-7 * np.abs(n).max() + numerical_atol("float64"), f"{name}: {err:.2e}"


def test_without_extras_it_is_multi_layer_net(backend):
    x, t = _batch()
    ext = MultiLayerNetExtend(10, [8, 6], 3, weight_decay_lambda=0.1, backend=backend, seed=4)
    ref = MultiLayerNet(10, [8, 6], 3, weight_decay_lambda=0.1, backend=backend, seed=4)
    for k in ref.params:
        assert_close(ext.params[k], ref.params[k], rtol=0, atol=0)
    assert_close(ext.loss(x, t), ref.loss(x, t), rtol=1e-12)
    got, want = ext.gradient(x, t), ref.gradient(x, t)
    assert list(got) == list(want)
    for k in want:
        assert_close(got[k], want[k], rtol=1e-10, atol=1e-14, err_msg=k)


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_batch_norm_net_backprop_equals_numerical_gradient(backend, activation):
    x, t = _batch(n=8, d=5)
    net = MultiLayerNetExtend(5, [4, 3], 3, activation=activation, weight_init_std=0.5,
                              weight_decay_lambda=0.05, use_batchnorm=True, backend=backend,
                              seed=1)  # fmt: skip
    got = net.gradient(x, t)
    want = net.numerical_gradient(x, t)
    assert sorted(got) == sorted(net.params)
    for k in net.params:
        _assert_gradient(backend.to_numpy(got[k]), backend.to_numpy(want[k]), k)


def test_numerical_gradient_leaves_the_running_statistics(backend):
    x, t = _batch()
    net = MultiLayerNetExtend(10, [4], 3, use_batchnorm=True, backend=backend, seed=0)
    net.loss(x, t, train_flg=True)
    bn = net.layers["BatchNorm1"]
    before = backend.to_numpy(bn.running_mean)
    net.numerical_gradient(x, t)
    assert_close(bn.running_mean, before, rtol=0, atol=0)


def test_layer_names_and_params_are_the_books(backend):
    net = MultiLayerNetExtend(5, [4, 3], 2, use_dropout=True, use_batchnorm=True,
                              backend=backend, seed=0)  # fmt: skip
    assert list(net.layers) == [
        "Affine1", "BatchNorm1", "Activation_function1", "Dropout1",
        "Affine2", "BatchNorm2", "Activation_function2", "Dropout2", "Affine3",
    ]  # fmt: skip
    assert sorted(net.params) == sorted(["W1", "b1", "W2", "b2", "W3", "b3", "gamma1",
                                         "beta1", "gamma2", "beta2"])  # fmt: skip
    assert_close(net.params["gamma1"], np.ones(4), rtol=0, atol=0, xp=backend.xp,
                 device=backend.device)  # fmt: skip


def test_dropout_nets_drop_the_same_units_everywhere(backend):
    x, t = _batch(n=5, d=6)
    net = MultiLayerNetExtend(6, [20], 3, use_dropout=True, dropout_ration=0.5, backend=backend,
                              seed=3)  # fmt: skip
    host = xpnet.get_backend("numpy", dtype="float64")
    ref = MultiLayerNetExtend(6, [20], 3, use_dropout=True, dropout_ration=0.5, backend=host,
                              seed=3)  # fmt: skip
    for _ in range(2):  # two draws of the masks
        g, g_ref = net.gradient(x, t), ref.gradient(x, t)
    np.testing.assert_array_equal(backend.to_numpy(net.layers["Dropout1"].mask),
                                  ref.layers["Dropout1"].mask)  # fmt: skip
    for k in g_ref:
        assert_close(g[k], g_ref[k], rtol=1e-10, atol=1e-14, err_msg=k)
    # test mode: no mask, outputs scaled by 1 - ratio, nothing random
    assert_close(net.predict(x), net.predict(x), rtol=0, atol=0)


def test_save_and_load_round_trip(backend, tmp_path):
    x, t = _batch()
    net = MultiLayerNetExtend(10, [6], 3, use_batchnorm=True, backend=backend, seed=0)
    net.params["beta1"] = backend.asarray(np.linspace(-1, 1, 6))
    net.loss(x, t, train_flg=True)  # running statistics to save
    path = tmp_path / "params.pkl"  # the book's name: the file is an .npz all the same
    net.save_params(path)
    with np.load(path, allow_pickle=False) as data:
        assert sorted(data.files) == sorted([*net.params, "running_mean1", "running_var1"])
    other = MultiLayerNetExtend(10, [6], 3, use_batchnorm=True, backend=backend, seed=9)
    other.load_params(path)
    for k in net.params:
        assert_close(other.params[k], net.params[k], rtol=0, atol=0, xp=backend.xp,
                     device=backend.device)  # fmt: skip
    assert_close(other.loss(x, t), net.loss(x, t), rtol=1e-12)  # test mode: running stats
    assert_close(other.layers["BatchNorm1"].running_var, net.layers["BatchNorm1"].running_var,
                 rtol=0, atol=0)  # fmt: skip


def test_load_params_refuses_pickles_and_misfits(tmp_path):
    net = MultiLayerNetExtend(4, [3], 2, backend="numpy", seed=0)
    pkl = tmp_path / "book.pkl"
    with open(pkl, "wb") as fh:
        pickle.dump({k: np.asarray(v) for k, v in net.params.items()}, fh)
    with pytest.raises(ValueError, match="a pickle .* is never loaded"):
        net.load_params(pkl)
    small = tmp_path / "small.npz"
    MultiLayerNetExtend(4, [2], 2, backend="numpy", seed=0).save_params(small)
    with pytest.raises(ValueError, match=r"does not fit this net: W1 is \(4, 2\)"):
        net.load_params(small)


def test_accuracy_counts_the_last_partial_batch(backend):
    x, t = _batch(n=7)
    net = MultiLayerNetExtend(10, [5], 3, backend=backend, seed=0)
    pred = np.argmax(backend.to_numpy(net.predict(x)), axis=1)
    want = float(np.mean(pred == t))
    assert net.accuracy(x, t, batch_size=3) == pytest.approx(want)
    assert net.accuracy(x, np.eye(3)[t]) == pytest.approx(want)  # one-hot targets


@pytest.mark.skip_backends("array_api_strict", "jax", reason="no float16 matmul")
def test_float16_inference(backend):
    x, t = _batch(n=50, seed=2)
    net = MultiLayerNetExtend(10, [16], 3, backend=backend, seed=0)
    want = backend.to_numpy(net.predict(x))
    net.astype("float16")
    assert net.params["W1"].dtype == backend.xp.float16
    got = backend.to_numpy(net.predict(x))
    assert got.dtype == np.float16
    np.testing.assert_allclose(got, want, rtol=2e-2, atol=2e-2)
    assert abs(net.accuracy(x, t) - float(np.mean(want.argmax(1) == t))) <= 0.04


def test_totals_take_labels_or_one_hot_rows(backend):
    x, t = _batch(n=250, d=10)  # 3 passes of EVAL_BATCH=100 rows
    net = MultiLayerNetExtend(10, [8], 3, use_batchnorm=True, backend=backend, seed=5)
    scores = backend.to_numpy(net.predict(x, False))
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    for targets in (t, np.eye(3)[t]):
        correct, loss_sum = net.totals(x, targets)
        assert int(backend.to_numpy(correct)) == np.count_nonzero(scores.argmax(1) == t)
        assert float(backend.to_numpy(loss_sum)) == pytest.approx(
            -log_p[np.arange(250), t].sum(), rel=1e-10
        )


def test_config_is_a_copy_of_the_settings():
    net = MultiLayerNetExtend(4, [3, 2], 2, backend="numpy", seed=0)
    assert net.config["hidden_size_list"] == [3, 2] == net.hidden_size_list
    net.hidden_size_list.append(9)  # what a checkpoint saves does not move with it
    assert net.config["hidden_size_list"] == [3, 2]


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="activation must be"):
        MultiLayerNetExtend(4, [3], 2, activation="tanh", backend="numpy")
    with pytest.raises(ValueError, match="weight_decay_lambda must be >= 0"):
        MultiLayerNetExtend(4, [3], 2, weight_decay_lambda=-1, backend="numpy")
    with pytest.raises(ValueError, match="dropout_ratio"):
        MultiLayerNetExtend(4, [3], 2, use_dropout=True, dropout_ration=2, backend="numpy")
    # the dense part is MultiLayerNet's, checks included
    with pytest.raises(ValueError, match="input_size must be a positive integer, got 0"):
        MultiLayerNetExtend(0, [3], 2, backend="numpy")
    with pytest.raises(ValueError, match=r"hidden_size_list\[1\] must be a positive integer"):
        MultiLayerNetExtend(4, [3, 2.5], 2, backend="numpy")
