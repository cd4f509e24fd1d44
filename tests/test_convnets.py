"""SimpleConvNet and DeepConvNet on every backend: against the book's code structure
(:mod:`benchmarks.convnet`), against central differences, and trained step for step."""

from __future__ import annotations

import functools
import re

import numpy as np
import pytest

import xpnet
from benchmarks.convnet import reference_of
from tests._data import blobs
from xpnet import DeepConvNet, SimpleConvNet
from xpnet.numerical import central
from xpnet.testing import assert_close, numerical_atol

SMALL_CONV = {"filter_num": 3, "filter_size": 3, "pad": 0, "stride": 1}
#: DeepConvNet with 2 filters per conv: its numerical gradient in a second.
TINY_DEEP = {f"conv_param_{i}": {"filter_num": 2, "filter_size": 3, "pad": 2 if i == 4 else 1,
                                 "stride": 1} for i in range(1, 7)}  # fmt: skip


def _images(n, side, seed=0):
    x, t = blobs(n, d=side * side, classes=3, seed=seed)
    return (x / 255.0).reshape(n, 1, side, side), t


def _noise(n, side, seed=0):
    """Continuous images: quantized pixels put relu and max kinks within a step's reach."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 1, side, side)), rng.integers(0, 3, n)


def _small(backend, side=8, **kw):
    return SimpleConvNet((1, side, side), SMALL_CONV, hidden_size=5, output_size=3,
                         weight_init_std=0.3, backend=backend, seed=0, **kw)  # fmt: skip


def _assert_gradient(analytic, numerical, name):
    a, n = np.asarray(analytic), np.asarray(numerical)
    err = np.abs(a - n).max()
    assert err <= 1e-7 * np.abs(n).max() + numerical_atol("float64"), f"{name}: {err:.2e}"


def test_simple_conv_net_is_the_books(backend):
    x, t = _images(6, 12)
    conv = {"filter_num": 4, "filter_size": 5, "pad": 1, "stride": 1}
    net = SimpleConvNet((1, 12, 12), conv, hidden_size=7, output_size=3, weight_init_std=0.1,
                        backend=backend)  # fmt: skip
    ref = reference_of(net)
    assert list(net.layers) == ["Conv1", "Relu1", "Pool1", "Affine1", "Relu2", "Affine2"]
    assert tuple(net.params["W2"].shape) == (4 * 5 * 5, 7)  # conv 10x10, pooled 5x5
    assert_close(net.predict(x), ref.predict(x), rtol=1e-10, atol=1e-13, xp=backend.xp,
                 device=backend.device)  # fmt: skip
    got, want = net.gradient(x, t), ref.gradient(x, t)
    for k in want:
        assert_close(got[k], want[k], rtol=1e-9, atol=1e-14, err_msg=k)


def test_deep_conv_net_is_the_books(backend):
    x, t = _images(3, 28)
    net = DeepConvNet(backend=backend, seed=1, dropout_ratio=0.0)
    ref = reference_of(net)
    assert DeepConvNet.PARAM_LAYERS == (0, 2, 5, 7, 10, 12, 15, 18)
    assert [type(net.layers[i]).__name__ for i in DeepConvNet.PARAM_LAYERS] == [
        "Convolution"] * 6 + ["Affine"] * 2  # fmt: skip
    assert tuple(net.params["W7"].shape) == (64 * 4 * 4, 50)
    assert_close(net.predict(x), ref.predict(x), rtol=1e-9, atol=1e-12)
    got, want = net.gradient(x, t), ref.gradient(x, t)
    for k in want:
        assert_close(got[k], want[k], rtol=1e-8, atol=1e-13, err_msg=k)


def _off_the_kinks(net, backend):
    """Biases away from 0: a padded border's output is its bias, on relu's kink at 0."""
    rng = np.random.default_rng(7)
    for k, v in net.params.items():
        if k.startswith("b"):
            net.params[k] = backend.asarray(rng.uniform(0.05, 0.2, tuple(v.shape)))


def test_simple_conv_net_backprop_equals_numerical_gradient(backend):
    x, t = _noise(4, 6)
    net = _small(backend, side=6)
    _off_the_kinks(net, backend)
    got, want = net.gradient(x, t), net.numerical_gradient(x, t)
    for k in net.params:
        _assert_gradient(backend.to_numpy(got[k]), backend.to_numpy(want[k]), k)


def test_deep_conv_net_backprop_equals_directional_differences(backend):
    """Along random unit directions through all 16 parameters at once (the element-by-element
    check of 20 layers is SimpleConvNet's test above, and each layer's)."""
    x, t = _noise(2, 8, seed=1)
    net = DeepConvNet((1, 8, 8), **TINY_DEEP, hidden_size=4, output_size=3, dropout_ratio=0.0,
                      backend=backend, seed=2)  # fmt: skip
    _off_the_kinks(net, backend)
    grads = {k: backend.to_numpy(v) for k, v in net.gradient(x, t).items()}
    start = {k: backend.to_numpy(v) for k, v in net.params.items()}
    rng, h = np.random.default_rng(3), 1e-4

    def loss_at(direction, sign):
        for k in start:
            net.params[k] = backend.asarray(start[k] + sign * h * direction[k])
        return float(backend.to_numpy(net.loss(x, t, train_flg=True)))

    for _ in range(4):
        d = {k: rng.standard_normal(v.shape) for k, v in start.items()}
        norm = np.sqrt(sum(float(np.sum(v * v)) for v in d.values()))
        d = {k: v / norm for k, v in d.items()}  # a unit step: h moves the loss as for one entry
        numerical = central(loss_at(d, 1), loss_at(d, -1), h)
        analytic = sum(float(np.sum(grads[k] * d[k])) for k in start)
        assert abs(analytic - numerical) <= 1e-7 * abs(numerical) + numerical_atol("float64")


def test_deep_conv_net_loss_trains_by_default(backend):
    x, t = _images(4, 8)
    net = DeepConvNet((1, 8, 8), **TINY_DEEP, hidden_size=6, output_size=3, backend=backend,
                      seed=0)  # fmt: skip
    test_mode = net.loss(x, t, train_flg=False)
    assert_close(net.loss(x, t, train_flg=False), test_mode, rtol=0, atol=0)
    dropped = [backend.to_numpy(net.loss(x, t)) for _ in range(3)]  # dropout: new masks
    assert len({float(v) for v in dropped}) > 1


STEPS = 300


def _digits():
    """200 training and 60 test images of 3 classes (one set of class centres)."""
    x, t = _images(260, 8)
    return x[:200], t[:200], x[200:], t[200:]


def _train_losses(backend, steps=STEPS):
    x, t, xt, tt = _digits()
    net = _small(backend)
    sgd = {"lr": 0.1}
    trainer = xpnet.Trainer(net, x, t, xt, tt, epochs=steps // 10, mini_batch_size=20,
                            optimizer="SGD", optimizer_param=sgd, verbose=False)  # fmt: skip
    trainer.train()
    return trainer


@functools.cache
def _numpy_run(steps=STEPS):
    return _train_losses(xpnet.get_backend("numpy", dtype="float64"), steps)


def test_300_steps_give_the_same_losses_on_every_backend(backend):
    got, want = _train_losses(backend), _numpy_run()
    assert len(got.train_loss_list) == STEPS
    np.testing.assert_allclose(got.train_loss_list, want.train_loss_list, rtol=1e-9)
    assert want.train_loss_list[-1] < 0.5 * want.train_loss_list[0]  # it learned
    np.testing.assert_allclose(got.test_acc_list, want.test_acc_list, atol=1e-12)
    assert want.test_acc > 0.8


def test_train_drives_a_conv_net(backend):
    """xpnet.train (checkpoints, resume, the CLI's loop) takes a conv net as it is."""
    x, t, xt, tt = _digits()
    net = _small(backend)
    history = xpnet.train(net, x, t, xt, tt, iters=30, batch_size=20, lr=0.1, seed=0)
    trainer = _numpy_run()  # the same batches: one seed, an epoch of 10 steps
    np.testing.assert_allclose(history.loss, trainer.train_loss_list[:30], rtol=1e-9)


def test_load_mnist_gives_images_for_conv_nets():
    (x, t), (xt, _) = xpnet.load_mnist(flatten=False, dataset="mnist-sample")
    assert x.shape[1:] == (1, 28, 28) and xt.shape[1:] == (1, 28, 28)
    assert x.dtype == np.float32 and len(t) == len(x)


def test_save_on_one_backend_load_on_another(backend, tmp_path):
    x, t = _images(5, 8)
    net = _small(backend)
    net.save_params(tmp_path / "params.npz")
    host = _small(xpnet.get_backend("numpy", dtype="float64"))
    host.params = {k: v * 0 for k, v in host.params.items()}
    host.load_params(tmp_path / "params.npz")
    assert_close(host.loss(x, t), backend.to_numpy(net.loss(x, t)), rtol=1e-12)


@pytest.mark.skip_backends("array_api_strict", "jax", reason="no float16 matmul")
def test_half_float_inference_as_in_chapter_8(backend):
    x, t = _images(100, 12)
    net = SimpleConvNet((1, 12, 12), SMALL_CONV, hidden_size=10, output_size=3, backend=backend,
                        seed=0, weight_init_std=0.3)  # fmt: skip
    xpnet.Trainer(net, x, t, x, t, epochs=5, mini_batch_size=20, optimizer="Adam",
                  optimizer_param={"lr": 0.01}, verbose=False).train()  # fmt: skip
    full = net.accuracy(x, t)
    net.astype("float16")
    assert net.predict(x).dtype == backend.xp.float16
    assert abs(net.accuracy(x, t) - full) <= 0.02


def test_conv_param_errors_are_named():
    with pytest.raises(ValueError, match="conv_param lacks stride"):
        SimpleConvNet(conv_param={"filter_num": 3, "filter_size": 3, "pad": 0}, backend="numpy")
    with pytest.raises(ValueError, match="does not fit a height of size 4"):
        SimpleConvNet((1, 4, 4), {"filter_num": 3, "filter_size": 5, "pad": 0, "stride": 1},
                      backend="numpy")  # fmt: skip


def test_gpu_rows_of_the_conv_bench(monkeypatch, capsys):
    """``python -m benchmarks.convnet --gpu-rows``: steps per second of each net on the GPU
    backends only (a CPU backend passed for a GPU here), exit 1 when there is none."""
    from benchmarks import convnet
    from xpnet.backends._registry import SPECS

    assert convnet.main(["--gpu-rows", "--backends", "numpy"]) == 1
    assert "no usable GPU backend" in capsys.readouterr().err
    monkeypatch.setattr(SPECS["numpy"], "on_cpu", lambda dev: False)
    argv = ["--gpu-rows", "--backends", "numpy", "--nets", "SimpleConvNet", "--seconds", "0.05"]
    assert convnet.main(argv) == 0
    out = capsys.readouterr().out
    rows = re.findall(r"^SimpleConvNet\s+xpnet numpy\s+([0-9.]+) ms\s+([0-9.]+) steps/s$", out,
                      flags=re.M)  # fmt: skip
    assert len(rows) == 1 and "reference" not in out
    ms, per_s = (float(v) for v in rows[0])
    assert per_s == pytest.approx(1000 / ms, rel=0.01)
