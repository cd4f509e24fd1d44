"""The book's Trainer and shuffle_dataset: epochs, evaluation samples, read-backs, output."""

from __future__ import annotations

import numpy as np
import pytest

import xpnet
import xpnet.trainer as trainer_module
from tests._data import blobs
from xpnet import MultiLayerNetExtend, Trainer, shuffle_dataset
from xpnet.layers import Affine, Relu, SoftmaxWithLoss
from xpnet.testing import assert_close


def _data(n=150, seed=0):
    x, t = blobs(n + 50, d=12, classes=3, seed=seed)
    x = x / 255.0
    return x[:n], t[:n], x[n:], t[n:]


def _net(backend, seed=0):
    return MultiLayerNetExtend(12, [8], 3, backend=backend, seed=seed)


def test_epochs_evaluations_and_losses_as_the_books(backend):
    x, t, xt, tt = _data()
    tr = Trainer(_net(backend), x, t, xt, tt, epochs=4, mini_batch_size=30, optimizer="Adam",
                 optimizer_param={"lr": 0.01}, evaluate_sample_num_per_epoch=40,
                 verbose=False)  # fmt: skip
    tr.train()
    assert tr.iter_per_epoch == 5 and tr.max_iter == 20
    assert len(tr.train_loss_list) == 20 and all(isinstance(v, float) for v in tr.train_loss_list)
    assert len(tr.train_acc_list) == len(tr.test_acc_list) == 4  # after steps 0, 5, 10, 15
    assert tr.test_acc == pytest.approx(tr.network.accuracy(xt, tt))
    assert tr.train_loss_list[-1] < tr.train_loss_list[0]


def test_evaluation_uses_the_first_rows_only(backend):
    x, t, xt, tt = _data()
    net = _net(backend)
    seen = []
    accuracy = net.accuracy
    net.accuracy = lambda xs, ts, *a, **k: seen.append(int(xs.shape[0])) or accuracy(xs, ts)
    Trainer(net, x, t, xt, tt, epochs=1, mini_batch_size=50, evaluate_sample_num_per_epoch=7,
            verbose=False).train()  # fmt: skip
    assert seen == [7, 7, 50]  # train and test samples once, then the whole test set


def test_losses_come_back_once_per_epoch(backend, monkeypatch):
    x, t, xt, tt = _data()
    reads = []
    real = trainer_module.to_numpy
    monkeypatch.setattr(trainer_module, "to_numpy", lambda v: reads.append(len(v)) or real(v))
    Trainer(_net(backend), x, t, xt, tt, epochs=3, mini_batch_size=50, verbose=False).train()
    assert reads == [1, 3, 3, 2]  # step 0, then every epoch, then the last steps


def test_the_same_batches_and_losses_on_every_backend(backend):
    x, t, xt, tt = _data()
    runs = []
    for b in (backend, xpnet.get_backend("numpy", dtype="float64")):
        tr = Trainer(_net(b), x, t, xt, tt, epochs=2, mini_batch_size=25, optimizer="momentum",
                     optimizer_param={"lr": 0.1}, verbose=False, seed=5)  # fmt: skip
        tr.train()
        runs.append(tr.train_loss_list)
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-10)


def test_verbose_prints_the_books_lines(capsys):
    x, t, xt, tt = _data()
    Trainer(_net("numpy"), x, t, xt, tt, epochs=1, mini_batch_size=75).train()
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("train loss:")
    assert out[1].startswith("=== epoch:1, train acc:") and ", test acc:" in out[1]
    assert out[-2:][0] == "=============== Final Test Accuracy ==============="
    assert out[-1].startswith("test acc:")
    assert sum(line.startswith("train loss:") for line in out) == 2


class _BookStyleNet:
    """Built as the book builds its nets: NumPy parameters, layers holding them."""

    def __init__(self):
        rng = np.random.default_rng(0)
        self.params = {"W1": 0.1 * rng.standard_normal((12, 3)), "b1": np.zeros(3)}
        self.layers = [Affine(self.params["W1"], self.params["b1"]), Relu()]
        self.last = SoftmaxWithLoss()

    def loss(self, x, t):
        for layer in self.layers:
            x = layer.forward(x)
        return self.last.forward(x, t)

    def gradient(self, x, t):
        self.loss(x, t)
        dout = self.last.backward(1)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return {"W1": self.layers[0].dW, "b1": self.layers[0].db}

    def accuracy(self, x, t):
        y = x @ self.params["W1"] + self.params["b1"]
        return float(np.mean(np.argmax(y, axis=1) == t))


def test_a_book_style_net_trains_on_its_own_arrays():
    x, t, xt, tt = _data()
    net = _BookStyleNet()
    w = net.params["W1"]
    tr = Trainer(net, x, t, xt, tt, epochs=3, mini_batch_size=30, optimizer="SGD",
                 optimizer_param={"lr": 0.5}, verbose=False)  # fmt: skip
    tr.train()
    assert net.params["W1"] is w  # updated in place, so the layers see it
    assert len(tr.train_loss_list) == 15 and tr.train_loss_list[-1] < tr.train_loss_list[0]


def test_unknown_optimizers_and_bad_sizes_are_named():
    x, t, xt, tt = _data()
    with pytest.raises(ValueError, match="unknown optimizer 'Adamax'"):
        Trainer(_net("numpy"), x, t, xt, tt, optimizer="Adamax")
    with pytest.raises(ValueError, match="mini_batch_size must be a positive integer"):
        Trainer(_net("numpy"), x, t, xt, tt, mini_batch_size=0)
    with pytest.raises(ValueError, match="same, non-zero number of rows"):
        Trainer(_net("numpy"), x, t[:3], xt, tt)


def test_shuffle_dataset_keeps_pairs_on_their_device(backend):
    x = np.arange(20.0).reshape(10, 2)
    t = np.arange(10)
    xs, ts = shuffle_dataset(backend.asarray(x), backend.asarray(t), seed=4)
    perm = np.random.default_rng(4).permutation(10)
    assert_close(xs, x[perm], rtol=0, atol=0, xp=backend.xp, device=backend.device)
    np.testing.assert_array_equal(backend.to_numpy(ts), perm)
    images = np.arange(40.0).reshape(10, 1, 2, 2)
    assert_close(shuffle_dataset(backend.asarray(images), backend.asarray(t), seed=4)[0],
                 images[perm], rtol=0, atol=0)  # fmt: skip
    with pytest.raises(ValueError, match="x has 10 rows but t has 3"):
        shuffle_dataset(x, t[:3])
