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


# ------------------------------------------------------------------ nets of the book's layers
TINY_DEEP = {f"conv_param_{i}": {"filter_num": 2, "filter_size": 3, "pad": 2 if i == 4 else 1,
                                 "stride": 1} for i in range(1, 7)}  # fmt: skip


def _tiny_deep(backend, seed=0):
    return xpnet.DeepConvNet((1, 8, 8), **TINY_DEEP, hidden_size=6, output_size=3,
                             backend=backend, seed=seed)  # fmt: skip


def test_layer_nets_round_trip_with_their_training_state(backend, tmp_path):
    """A DeepConvNet's dropout generators and a batch-norm net's running statistics travel
    with the parameters: the loaded net's next training step (new dropout masks) and
    test-mode scores are the saved net's."""
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((6, 1, 8, 8)), rng.integers(0, 3, 6)
    deep = _tiny_deep(backend)
    deep.loss_and_gradient(x, t)  # advance the dropout stream past the constructor's
    path = save_checkpoint(tmp_path / "deep.npz", deep)
    ckpt = load_checkpoint(path)
    assert (ckpt.net_class, ckpt.input_shape, ckpt.output_size) == ("DeepConvNet", (1, 8, 8), 3)
    again = ckpt.to_net(backend=backend)
    assert type(again) is xpnet.DeepConvNet and again.config == deep.config
    for k, v in deep.params.items():
        np.testing.assert_array_equal(backend.to_numpy(again.params[k]), backend.to_numpy(v))
    want, got = deep.loss_and_gradient(x, t)[0], again.loss_and_gradient(x, t)[0]
    assert float(backend.to_numpy(got)) == float(backend.to_numpy(want))

    bn = xpnet.MultiLayerNetExtend(64, [5, 4], 3, use_batchnorm=True, use_dropout=True,
                                   backend=backend, seed=1)  # fmt: skip
    bn.loss_and_gradient(x.reshape(6, -1), t)
    ckpt = load_checkpoint(save_checkpoint(tmp_path / "bn.npz", bn))
    assert sorted(ckpt.state) == ["running_mean1", "running_mean2", "running_var1",
                                  "running_var2"]  # fmt: skip
    again = ckpt.to_net(backend=backend)
    np.testing.assert_array_equal(backend.to_numpy(again.predict(x.reshape(6, -1))),
                                  backend.to_numpy(bn.predict(x.reshape(6, -1))))  # fmt: skip
    np.testing.assert_array_equal(
        backend.to_numpy(again.loss(x.reshape(6, -1), t, train_flg=True)),
        backend.to_numpy(bn.loss(x.reshape(6, -1), t, train_flg=True)),
    )


def _edit_meta(path, edit):
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(str(arrays["meta"]))
    edit(meta, arrays)
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m, a: m["net"].update({"class": "Foo"}), "holds a Foo, a net this version"),
        (lambda m, a: m["net"]["config"].update({"hidden_size": 7}),
         "does not fit its SimpleConvNet: W2 is"),
        (lambda m, a: m["net"]["config"].update({"hidden_siz": 7}), "its SimpleConvNet settings"),
        (lambda m, a: a.pop("b3"), "does not fit its SimpleConvNet: lacks b3"),
        (lambda m, a: a.update({"W3": a["W3"].astype(np.int64)}), "W3 has dtype int64"),
        (lambda m, a: a.update({"W1": a["W1"] * np.nan}), "W1 holds 54 NaN/inf values of 54"),
        (lambda m, a: m["net"].update({"rng": [{"bit": 1}]}), "dropout generator states"),
    ],
)  # fmt: skip
def test_edited_layer_net_checkpoints_are_refused(tmp_path, edit, message):
    net = xpnet.SimpleConvNet((1, 8, 8), {"filter_num": 6, "filter_size": 3, "pad": 0,
                                          "stride": 1}, hidden_size=5, output_size=3)  # fmt: skip
    path = save_checkpoint(tmp_path / "c.npz", net)
    _edit_meta(path, edit)
    with pytest.raises(CheckpointError, match=message.replace("(", r"\(")):
        load_checkpoint(path).to_net()
