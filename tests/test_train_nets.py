"""``xpnet-train --net``: the book's conv nets trained, saved, resumed and evaluated."""

from __future__ import annotations

import argparse
import json
import re

import numpy as np
import pytest
from test_cli import SAMPLE, exit_code, one_error_line

import xpnet
from xpnet.cli import evaluate_main, train_main
from xpnet.cli.train_nets import fill_net_defaults, net_inputs

pytestmark = pytest.mark.usefixtures("no_download")


def _args(**kw):
    base = dict(net=None, iters=None, lr=None, optimizer=None, hidden_size=None,
                weight_init_std=None, activation=None, eval_sample=None, hidden_sizes=None,
                weight_decay=0.0, batch_size=100)  # fmt: skip
    return argparse.Namespace(**{**base, **kw})


def test_each_net_gets_its_chapters_defaults():
    mlp = _args()
    fill_net_defaults(mlp, set())
    net_inputs(mlp, np.zeros((600, 28, 28), np.uint8))
    assert (mlp.net, mlp.iters, mlp.lr, mlp.optimizer, mlp.hidden_size) == (
        "mlp", 10_000, 0.1, "sgd", 50)  # fmt: skip
    assert (mlp.activation, mlp.eval_sample, mlp.weight_init_std) == ("sigmoid", None, 0.01)
    conv = _args(net="simple-convnet", lr=0.01)
    fill_net_defaults(conv, {"lr"})
    x = net_inputs(conv, np.zeros((1050, 28, 28), np.uint8))
    assert x.shape == (1050, 1, 28, 28)
    # train_convnet.py: 20 epochs of 100-image batches, Adam; a given flag wins
    assert (conv.iters, conv.lr, conv.optimizer, conv.hidden_size, conv.eval_sample) == (
        200, 0.01, "adam", 100, 1000)  # fmt: skip
    deep = _args(net="deep-convnet", iters=7)
    fill_net_defaults(deep, {"iters"})
    net_inputs(deep, np.zeros((10, 28, 28), np.uint8))
    assert (deep.iters, deep.hidden_size, deep.weight_init_std) == (7, 50, None)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--net", "deep-convnet", "--weight-init-std", "0.1"],
         "--weight-init-std does not apply to --net deep-convnet; drop it"),
        (["--net", "simple-convnet", "--hidden-sizes", "10,10", "--activation", "relu"],
         "--hidden-sizes, --activation do not apply to --net simple-convnet; drop them"),
        (["--net", "simple-convnet", "--weight-decay", "0.1"],
         "--weight-decay does not apply to --net simple-convnet"),
        (["--net", "deep-convnet", "--compile", "on"],
         "--compile on compiles the MLPs' step; --net deep-convnet trains with its own"),
    ],
)  # fmt: skip
def test_flags_a_conv_net_lacks_are_refused(argv, message, capsys):
    assert exit_code(train_main, [*SAMPLE, *argv]) == 2
    assert message in one_error_line(capsys)


def test_a_conv_net_too_big_for_the_machine_is_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(xpnet._memory, "physical_memory", lambda: 64 * 2**20)
    weights = tmp_path / "w.npz"
    argv = [*SAMPLE, "--net", "simple-convnet", "--hidden-size", "10000", "--save", str(weights)]
    assert exit_code(train_main, argv) == 1
    line = one_error_line(capsys)
    assert "out of memory while building the net (W2 of shape (4320, 10000) needs about " in line
    assert "more than this machine's 64.0 MiB); use a smaller --hidden-size" in line
    assert not weights.exists()


def test_simple_convnet_trains_saves_and_evaluates(tmp_path, capsys):
    """Accuracies per evaluation on --eval-sample rows, the final test accuracy on the
    whole test set, and the checkpoint evaluates to that same accuracy."""
    metrics, weights = tmp_path / "m.json", tmp_path / "w.npz"
    argv = [*SAMPLE, "--net", "simple-convnet", "--iters", "6", "--batch-size", "20",
            "--eval-sample", "50", "--metrics-out", str(metrics),
            "--save", str(weights)]  # fmt: skip
    assert train_main(argv) == 0
    m = json.loads(metrics.read_text())
    c = m["config"]
    assert (c["net"], c["optimizer"], c["lr"], c["hidden_size"]) == (
        "simple-convnet", "adam", 0.001, 100)  # fmt: skip
    assert len(m["loss"]) == 6 and m["loss"][-1] < m["loss"][0]
    net = xpnet.load_checkpoint(weights).to_net()
    assert type(net) is xpnet.SimpleConvNet
    (x, t), (xt, tt) = xpnet.load_mnist(normalize=False, flatten=False, dataset="mnist-sample")
    assert m["train_acc"][-1] == net.accuracy(x[:50], t[:50], scale=1 / 255)
    assert m["test_acc"][-1] == net.accuracy(xt[:50], tt[:50], scale=1 / 255)
    assert m["final_test_acc"] == net.accuracy(xt, tt, scale=1 / 255)  # all 1000 images
    capsys.readouterr()
    assert evaluate_main([str(weights), "--dataset", "mnist-sample"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"test accuracy on mnist-sample: ([0-9.]+) \(1000 images\)", out).group(
        1) == f"{m['final_test_acc']:.4f}"  # fmt: skip


@pytest.mark.parametrize("net", ["simple-convnet", "deep-convnet"])
def test_resumed_conv_run_equals_the_uninterrupted_one(net, tmp_path):
    """float64: the same losses and accuracies, dropout masks included (DeepConvNet)."""
    common = [*SAMPLE, "--net", net, "--batch-size", "10", "--eval-sample", "20"]
    full, part, resumed = tmp_path / "full.json", tmp_path / "part.npz", tmp_path / "res.json"
    assert train_main([*common, "--dtype", "float64", "--iters", "4",
                       "--metrics-out", str(full)]) == 0  # fmt: skip
    assert train_main([*common, "--dtype", "float64", "--iters", "2", "--save", str(part)]) == 0
    # --resume takes the net, dtype and every setting from the checkpoint
    assert train_main([*SAMPLE, "--resume", str(part), "--iters", "4",
                       "--metrics-out", str(resumed)]) == 0  # fmt: skip
    a, b = json.loads(full.read_text()), json.loads(resumed.read_text())
    assert b["dtype"] == "float64" and b["config"]["net"] == net
    assert b["loss"] == a["loss"]
    assert b["final_test_acc"] == a["final_test_acc"]


def test_resume_refuses_another_net(tmp_path, capsys):
    part = tmp_path / "part.npz"
    argv = [*SAMPLE, "--net", "simple-convnet", "--iters", "1", "--batch-size", "5"]
    assert train_main([*argv, "--eval-sample", "5", "--save", str(part)]) == 0
    capsys.readouterr()
    code = exit_code(train_main, [*SAMPLE, "--resume", str(part), "--iters", "3", "--net", "mlp"])
    assert code == 2
    assert "--net mlp (it has simple-convnet)" in one_error_line(capsys)
