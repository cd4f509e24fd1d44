"""xpnet-train and xpnet-evaluate, in-process, on the bundled sample."""

from __future__ import annotations

import json

import numpy as np
import pytest

import xpnet
from xpnet.cli import evaluate_main, train_main


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    monkeypatch.setenv("XPNET_MNIST_MIRRORS", "")
    monkeypatch.setenv("XPNET_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XPNET_DATA_DIR", str(tmp_path / "nodata"))
    for var in ("XPNET_BACKEND", "XPNET_DEVICE", "XPNET_DTYPE"):
        monkeypatch.delenv(var, raising=False)


def test_train_writes_metrics_weights_and_evaluates(tmp_path, capsys):
    metrics, weights = tmp_path / "m.json", tmp_path / "w.npz"
    argv = ["--dataset", "mnist-sample", "--iters", "400", "--quiet",
            "--metrics-out", str(metrics), "--save", str(weights)]  # fmt: skip
    assert train_main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("final: test acc ")
    m = json.loads(metrics.read_text())
    for key in ("config", "backend", "device", "dtype", "train_acc", "test_acc",
                "final_test_acc", "final_loss", "loop_seconds", "samples_per_second"):  # fmt: skip
        assert key in m
    assert (m["backend"], m["device"], m["dtype"], m["dataset"]) == (
        "numpy",
        "cpu",
        "float32",
        "mnist-sample",
    )
    assert m["config"]["iters"] == 400 and len(m["loss"]) == 400
    assert len(m["train_acc"]) == len(m["test_acc"]) == 11  # every 40 steps, and the last
    assert m["final_loss"] == m["loss"][-1]
    assert 0.6 < m["final_test_acc"] <= 1.0  # 400 steps on real digits (chance: 0.1)
    assert m["samples_per_second"] == pytest.approx(400 * 100 / m["loop_seconds"])

    assert evaluate_main([str(weights), "--dataset", "mnist-sample"]) == 0
    report = capsys.readouterr().out
    assert f"test accuracy on mnist-sample: {m['final_test_acc']:.4f} (1000 images)" in report
    assert "confusion matrix" in report and report.count("(100 images)") == 10


def test_mnist_falls_back_to_the_sample_with_one_warning(tmp_path, capsys):
    assert train_main(["--iters", "2", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert err.count("xpnet-train: warning:") == 1


def test_same_weights_on_strict_device1(tmp_path):
    w_np, w_strict = tmp_path / "a.npz", tmp_path / "b.npz"
    base = ["--dataset", "mnist-sample", "--iters", "30", "--quiet", "--dtype", "float64"]
    assert train_main([*base, "--save", str(w_np)]) == 0
    assert train_main([*base, "--backend", "array_api_strict", "--device", "device1",
                       "--save", str(w_strict)]) == 0  # fmt: skip
    a, b = np.load(w_np), np.load(w_strict)
    for k in ("W1", "b1", "W2", "b2"):
        np.testing.assert_allclose(a[k], b[k], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--lr", "-1"], "argument --lr: expected a positive finite number, got '-1'"),
        (["--iters", "0"], "argument --iters: expected a positive integer, got '0'"),
        (["--dataset", "cifar"], "argument --dataset: invalid choice: 'cifar'"),
        (["--backend", "tensorflow"], "unknown backend 'tensorflow'"),
        (["--backend", "numpy", "--device", "cuda"], "unknown device 'cuda'"),
        (["--metrics-out", "/nonexistent/dir/m.json"], "folder /nonexistent/dir does not exist"),
    ],
)
def test_bad_values_are_rejected_before_any_work(argv, message, capsys, monkeypatch):
    def no_data(*a, **k):
        raise AssertionError("data was loaded before the arguments were checked")

    monkeypatch.setattr(xpnet.data, "load_mnist", no_data)
    with pytest.raises(SystemExit) as info:
        train_main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_save_to_a_directory_is_rejected(tmp_path, capsys):
    with pytest.raises(SystemExit):
        train_main(["--save", str(tmp_path)])
    assert "is a directory" in capsys.readouterr().err


def test_evaluate_rejects_bad_weights_files(tmp_path, capsys):
    missing = tmp_path / "none.npz"
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    shapes = tmp_path / "shapes.npz"
    np.savez(shapes, W1=np.zeros((784, 5)), b1=np.zeros(5), W2=np.zeros((6, 10)),
             b2=np.zeros(10))  # fmt: skip
    wrong_input = tmp_path / "in.npz"
    np.savez(wrong_input, W1=np.zeros((100, 5)), b1=np.zeros(5), W2=np.zeros((5, 10)),
             b2=np.zeros(10))  # fmt: skip
    objects = tmp_path / "obj.npz"
    np.savez(objects, W1=np.array([{"a": 1}], dtype=object))
    bare = tmp_path / "bare.npy"
    np.save(bare, np.zeros(3))
    tanh = tmp_path / "tanh.npz"
    np.savez(tanh, W1=np.zeros((784, 5)), b1=np.zeros(5), W2=np.zeros((5, 10)),
             b2=np.zeros(10), activation=np.array("tanh"))  # fmt: skip
    cases = [
        (missing, "does not exist"),
        (junk, "is not an xpnet weights file"),
        (shapes, "inconsistent TwoLayerNet shapes"),
        (wrong_input, "input size is 100, but mnist-sample images have 784 pixels"),
        (objects, "is not an xpnet weights file"),
        (bare, "holds a single array, not named parameters"),
        (tanh, "unknown activation 'tanh'"),
    ]
    for path, message in cases:
        with pytest.raises(SystemExit) as info:
            evaluate_main([str(path), "--dataset", "mnist-sample"])
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert message in err, err
        assert "\n" == err[-1] and err.count("\n") == 1
    assert junk.read_bytes() == b"not a zip"  # nothing the user had is changed


def test_weights_round_trip(backend, tmp_path):
    net = xpnet.TwoLayerNet(12, 5, 3, backend=backend, seed=4, activation="relu")
    path = xpnet.save_weights(net, tmp_path / "w.npz")
    again = xpnet.load_weights(path, backend=backend)
    assert again.activation == "relu" and again.sizes == (12, 5, 3)
    for k in net.params:
        np.testing.assert_array_equal(backend.to_numpy(again.params[k]),
                                      backend.to_numpy(net.params[k]))  # fmt: skip


def test_train_plot_draws_the_recorded_accuracies(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from xpnet import plots

    drawn = {}
    real = plots.plot_training_curves

    def spy(history, **kwargs):
        fig = real(history, **kwargs)
        drawn["fig"], drawn["history"] = fig, history
        return fig

    monkeypatch.setattr(plots, "plot_training_curves", spy)
    png, metrics = tmp_path / "curves.png", tmp_path / "m.json"
    argv = ["--dataset", "mnist-sample", "--iters", "80", "--quiet", "--plot", str(png),
            "--metrics-out", str(metrics)]  # fmt: skip
    assert train_main(argv) == 0
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    m = json.loads(metrics.read_text())
    acc_ax = drawn["fig"].axes[0]
    assert acc_ax.get_xlabel() == "epochs" and acc_ax.get_ylabel() == "accuracy"
    train_line, test_line = acc_ax.get_lines()[:2]
    np.testing.assert_allclose(train_line.get_ydata(), m["train_acc"])
    np.testing.assert_allclose(test_line.get_ydata(), m["test_acc"])
