"""Configs: grids, samples, and bad configs named before any group trains."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet.sweeps import grid, sample, sweep


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
