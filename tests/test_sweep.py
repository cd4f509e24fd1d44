"""Stacked sweeps: every member equals its own train() run; divergence stays isolated."""

from __future__ import annotations

import numpy as np
import pytest
from _data import blobs

import xpnet
from xpnet import sweeps as sweep_module
from xpnet.sweeps import grid, plan_groups, sample, sweep
from xpnet.testing import tolerance


def _blobs(n, seed=0, d=32, classes=10):
    return blobs(n, seed=seed, d=d, classes=classes, noise=70)


@pytest.fixture(scope="module")
def data():
    x, t = _blobs(400)
    return x[:300], t[:300], x[300:], t[300:]


KW = {"iters": 40, "batch_size": 25, "eval_interval": 12}


def _alone(config, data, backend):
    c = sweep_module.normalize(config)
    net = xpnet.MultiLayerNet(
        int(data[0].shape[1]),
        list(c["hidden_sizes"]),
        10,
        activation=c["activation"],
        weight_init_std=c["weight_init_std"],
        weight_decay_lambda=c["weight_decay"],
        backend=backend,
        seed=c["seed"],
    )
    hyper = {h: c[h] for h in xpnet.optimizers.OPTIMIZERS[c["optimizer"]].HYPER}
    opt = xpnet.get_optimizer(c["optimizer"], **hyper)
    return xpnet.train(net, *data, seed=c["seed"], optimizer=opt, **KW)


CONFIGS = (
    grid(lr=[0.3, 1.0], seed=[0, 1], weight_decay=[0.0, 0.01])
    + grid(
        optimizer="adam",
        lr=[0.01, 0.003],
        beta1=[0.9, 0.8],
        hidden_sizes=[(12, 8)],
        activation="relu",
        weight_init_std="he",
    )
    + grid(optimizer="momentum", lr=0.05, momentum=[0.5, 0.9], seed=3)
)


def test_every_member_equals_its_own_train_run(backend, data):
    records = sweep(CONFIGS, *data, backend=backend, **KW)
    assert len(records) == len(CONFIGS)
    rtol = 1e-9
    for config, rec in zip(CONFIGS, records, strict=True):
        ref = _alone(config, data, backend)
        assert rec.config == sweep_module.normalize(config) and not rec.diverged
        assert rec.history.eval_steps == ref.eval_steps == [0, 12, 24, 36, 39]
        assert rec.history.train_acc == ref.train_acc
        assert rec.history.test_acc == ref.test_acc
        np.testing.assert_allclose(rec.history.loss, ref.loss, rtol=rtol, atol=0)


def test_float32_members_agree_within_the_training_tolerance(backend32, data):
    configs = grid(lr=[0.3, 1.0], seed=[0, 1])
    records = sweep(configs, *data, backend=backend32, **KW)
    rtol, atol = tolerance("float32", training=True)
    for config, rec in zip(configs, records, strict=True):
        ref = _alone(config, data, backend32)
        np.testing.assert_allclose(rec.history.loss, ref.loss, rtol=rtol, atol=atol)
        np.testing.assert_allclose(rec.history.test_acc, ref.test_acc, atol=2 / 100)


def test_a_diverging_member_is_frozen_and_the_others_are_unchanged(data):
    b = xpnet.get_backend("numpy", dtype="float64")
    lrs = [0.1, 0.2, 0.3, 1e6, 0.5, 0.7, 1.0, 1.5]
    records = sweep(grid(lr=lrs), *data, backend=b, **KW)
    for lr, rec in zip(lrs, records, strict=True):
        if lr == 1e6:
            assert rec.diverged and rec.history.diverged
            assert rec.history.eval_steps[-1] < 39  # frozen where it was seen
            continue
        ref = _alone({"lr": lr}, data, b)
        assert not rec.diverged
        assert rec.history.loss == pytest.approx(ref.loss, rel=1e-12)
        assert rec.history.test_acc == ref.test_acc


def test_groups_are_split_by_shape_optimizer_and_bounds():
    configs = grid(lr=[0.1, 0.2, 0.3], hidden_size=[10, 20]) + [{"optimizer": "adam"}]
    groups = plan_groups(configs, input_size=784, output_size=10)
    assert groups == [[0, 2, 4], [1, 3, 5], [6]]
    assert plan_groups(configs, input_size=784, output_size=10, max_models=2) == [
        [0, 2],
        [4],
        [1, 3],
        [5],
        [6],
    ]
    one = sweep_module._model_bytes(sweep_module.normalize({}), 784, 10, 100, 4)
    assert plan_groups(
        grid(lr=[0.1, 0.2, 0.3]), input_size=784, output_size=10, max_bytes=2 * one
    ) == [[0, 1], [2]]


def test_grid_and_sample():
    relu = {"activation": "relu"}
    assert grid(lr=[0.1, 1], seed=[0, 1], activation="relu") == [
        {"lr": 0.1, "seed": 0, **relu},
        {"lr": 0.1, "seed": 1, **relu},
        {"lr": 1, "seed": 0, **relu},
        {"lr": 1, "seed": 1, **relu},
    ]
    s = sample(50, seed=3, lr=(1e-3, 1.0), optimizer=["sgd", "adam"])
    assert s == sample(50, seed=3, lr=(1e-3, 1.0), optimizer=["sgd", "adam"])
    lrs = np.array([c["lr"] for c in s])
    assert lrs.min() >= 1e-3 and lrs.max() <= 1.0 and np.median(lrs) < 0.1
    assert {c["optimizer"] for c in s} == {"sgd", "adam"}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"learning_rate": 0.1}, "unknown config key"),
        ({"optimizer": "lbfgs"}, "unknown optimizer 'lbfgs'"),
        ({"optimizer": "sgd", "momentum": 0.9}, "optimizer 'sgd' takes lr; not momentum"),
        ({"lr": -1.0}, "lr must be a positive finite number"),
        ({"activation": "tanh"}, "activation must be one of"),
    ],
)
def test_bad_configs_are_named(config, message, data):
    with pytest.raises(ValueError, match=message):
        sweep([config], *data, backend="numpy", iters=1)


def test_output_size_follows_the_labels_and_labels_are_checked():
    x, t = _blobs(120, classes=3)
    rec = sweep([{"lr": 0.5}], x, t, iters=5, batch_size=20, backend="numpy", dtype="float64")[0]
    ref = xpnet.train(xpnet.TwoLayerNet(32, 50, 3, backend="numpy", dtype="float64", seed=0),
                      x, t, iters=5, batch_size=20, lr=0.5, seed=0)  # fmt: skip
    assert rec.history.loss == pytest.approx(ref.loss, rel=1e-12)
    with pytest.raises(ValueError, match="t_train has labels from -1"):
        sweep([{}], x, t - 1, iters=2, batch_size=20, backend="numpy", output_size=3)
    with pytest.raises(ValueError, match="eval_interval must be a positive integer, got 0"):
        sweep([{}], x, t, iters=2, batch_size=20, backend="numpy", eval_interval=0)


@pytest.mark.parametrize(("config", "message"), [
    ({"weight_decay": -5.0}, "weight_decay must be a number >= 0"),
    ({"weight_init_std": "hee"}, "weight_init_std must be a positive number or one of"),
    ({"hidden_sizes": (10, 0)}, "hidden sizes must be positive integers"),
])  # fmt: skip
def test_configs_are_checked_before_any_group_trains(config, message, data):
    with pytest.raises(ValueError, match=message):
        sweep([{"lr": 0.1}, config], *data, backend="numpy", iters=1)


def test_sample_keeps_layer_tuples_fixed():
    s = sample(3, seed=0, hidden_sizes=(100, 100), lr=(0.01, 0.1))
    assert all(c["hidden_sizes"] == (100, 100) for c in s)
    assert all(0.01 <= c["lr"] <= 0.1 for c in s)
