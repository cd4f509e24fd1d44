"""Checkpoints: any W1..bn net, optimizer state and provenance in a plain .npz."""

from __future__ import annotations

import json
import os
import zipfile
from types import SimpleNamespace

import numpy as np
import pytest

import xpnet
from xpnet.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_weights,
    save_checkpoint,
    save_weights,
)


def three_layer(rng: np.random.Generator) -> SimpleNamespace:
    """A stand-in for any net with W1..bn parameters (784-[6, 5]-10 here)."""
    sizes = (784, 6, 5, 10)
    params = {}
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:], strict=False), start=1):
        params[f"W{i}"] = rng.standard_normal((n_in, n_out))
        params[f"b{i}"] = rng.standard_normal(n_out)
    return SimpleNamespace(params=params, activation="relu")


def test_generic_net_with_optimizer_state_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    net = three_layer(rng)
    state = {"m/W1": rng.standard_normal((784, 6)), "t": 7, "lr": 0.001}
    meta = {"dataset": "fashion-mnist", "step": 1200, "seed": 3, "config": {"lr": 0.001}}
    path = save_checkpoint(tmp_path / "c.npz", net, optimizer_state=state, meta=meta)
    ckpt = load_checkpoint(path)
    assert ckpt.layers == 3 and ckpt.sizes == (784, 6, 5, 10) and ckpt.activation == "relu"
    for k, v in net.params.items():
        np.testing.assert_array_equal(ckpt.params[k], v)
    np.testing.assert_array_equal(ckpt.optimizer_state["m/W1"], state["m/W1"])
    assert ckpt.optimizer_state["t"] == 7 and ckpt.optimizer_state["t"].dtype.kind == "i"
    assert float(ckpt.optimizer_state["lr"]) == 0.001
    assert ckpt.meta["step"] == 1200 and ckpt.meta["config"] == {"lr": 0.001}
    assert ckpt.meta["xpnet_version"] == xpnet.__version__ and ckpt.meta["dtype"] == "float64"
    assert ckpt.meta["sizes"] == [784, 6, 5, 10]
    again = load_weights(path, dtype="float64")
    assert isinstance(again, xpnet.MultiLayerNet) and again.sizes == (784, 6, 5, 10)
    for k, v in net.params.items():
        np.testing.assert_array_equal(again.backend.to_numpy(again.params[k]), v)


def test_file_is_plain_arrays_without_pickle(tmp_path):
    net = xpnet.TwoLayerNet(4, 3, 2, seed=0)
    path = save_weights(net, tmp_path / "w.npz", dataset="mnist")
    with zipfile.ZipFile(path) as zf:
        names = sorted(zf.namelist())
    assert names == ["W1.npy", "W2.npy", "activation.npy", "b1.npy", "b2.npy", "meta.npy"]
    with np.load(path, allow_pickle=False) as npz:
        meta = json.loads(str(npz["meta"]))
    assert meta["dataset"] == "mnist" and meta["activation"] == "sigmoid"


def test_files_without_provenance_still_load(tmp_path):
    old = tmp_path / "old.npz"
    rng = np.random.default_rng(1)
    arrays = {"W1": rng.random((4, 3)), "b1": rng.random(3), "W2": rng.random((3, 2)),
              "b2": rng.random(2)}  # fmt: skip
    np.savez(old, **arrays, activation=np.array("relu"))
    ckpt = load_checkpoint(old)
    assert ckpt.meta == {"activation": "relu"} and ckpt.optimizer_state == {}
    net = load_weights(old, dtype="float64")
    assert net.activation == "relu" and net.sizes == (4, 3, 2)
    np.testing.assert_array_equal(xpnet.to_numpy(net.params["W2"]), arrays["W2"])


def test_non_finite_weights_are_refused_on_load_not_on_save(tmp_path):
    net = three_layer(np.random.default_rng(2))
    net.params["b2"][1] = np.inf
    path = save_checkpoint(tmp_path / "c.npz", net)  # a diverged run may be kept to look at
    with pytest.raises(CheckpointError, match=r"b2 holds 1 NaN/inf values of 5; .* diverged"):
        load_checkpoint(path)


def test_gaps_and_objects_are_refused(tmp_path):
    gap = tmp_path / "gap.npz"
    np.savez(gap, W1=np.zeros((4, 3)), b1=np.zeros(3), W3=np.zeros((3, 2)), b3=np.zeros(2))
    with pytest.raises(CheckpointError, match="lacks W2, b2"):
        load_checkpoint(gap)
    state = {"step": np.array(["not a number"])}
    with pytest.raises(TypeError, match="numbers only"):
        save_checkpoint(tmp_path / "s.npz", three_layer(np.random.default_rng(3)),
                        optimizer_state=state)  # fmt: skip
    assert not (tmp_path / "s.npz").exists()


def test_written_file_follows_the_umask(tmp_path):
    previous = os.umask(0o027)
    try:
        path = save_weights(xpnet.TwoLayerNet(4, 3, 2, seed=0), tmp_path / "w.npz")
    finally:
        os.umask(previous)
    assert oct(path.stat().st_mode & 0o777) == oct(0o640)
