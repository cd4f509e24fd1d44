"""SimpleNet and TwoLayerNet on every backend: init, forward, backprop vs numerical."""

from __future__ import annotations

import numpy as np
import pytest

import xpnet
from xpnet import MultiLayerNet, SimpleNet, TwoLayerNet
from xpnet.testing import assert_close


def _relative_error(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


def test_simple_net_chapter_closure_style(backend):
    W = np.array([[0.47355232, 0.9977393, 0.84668094], [0.85557411, 0.03563661, 0.69422093]])
    net = SimpleNet(W, backend=backend)
    x, t = np.array([0.6, 0.9]), np.array([0, 0, 1])
    assert float(backend.to_numpy(net.loss(x, t))) == pytest.approx(0.9280682857864075, rel=1e-9)
    if not backend.mutable_arrays:
        pytest.skip("the closure style perturbs in place; this backend's arrays are immutable")
    dW = xpnet.numerical_gradient(lambda w: net.loss(x, t), net.W)
    # The chapter's printed result for these weights.
    expected = np.array(
        [[0.21924763, 0.14356247, -0.36281009], [0.32887144, 0.2153437, -0.54421514]]
    )
    assert_close(dW, expected, rtol=1e-6, atol=1e-7, xp=backend.xp, device=backend.device)


def test_simple_net_offers_only_what_it_can_do():
    # no backprop and no correct_count: no gradient or whole-set count that would fail
    net = SimpleNet(seed=0, backend="numpy")
    assert not hasattr(net, "gradient") and not hasattr(net, "correct_total")
    two = TwoLayerNet(2, 3, 2, backend="numpy", seed=0)
    x, t = np.array([[0.5, -1.0], [2.0, 0.25]]), np.array([1, 0])
    got, want = two.gradient(x, t), two.loss_and_gradient(x, t)[1]
    assert list(got) == ["W1", "b1", "W2", "b2"]
    assert all(np.array_equal(got[k], want[k]) for k in got)
    right = np.count_nonzero(np.argmax(two.predict(x), axis=1) == t)
    assert int(two.correct_total(x, t)) == right


def test_simple_net_seeded_weights_are_the_same_everywhere(backend):
    w = backend.to_numpy(SimpleNet(seed=3, backend=backend).W)
    np.testing.assert_array_equal(w, np.random.default_rng(3).standard_normal((2, 3)))


def test_two_layer_net_initial_weights_and_shapes(backend32):
    net = TwoLayerNet(784, 50, 10, backend=backend32, seed=42)
    rng = np.random.default_rng(42)
    w1 = 0.01 * rng.standard_normal((784, 50))
    w2 = 0.01 * rng.standard_normal((50, 10))
    for k, ref in (("W1", w1), ("b1", np.zeros(50)), ("W2", w2), ("b2", np.zeros(10))):
        assert_close(
            net.params[k],
            ref.astype(np.float32),
            xp=backend32.xp,
            device=backend32.device,
            dtype=backend32.xp.float32,
            rtol=0,
            atol=0,
        )
    y = net.predict(np.random.default_rng(0).random((5, 784)))
    assert tuple(y.shape) == (5, 10)
    np.testing.assert_allclose(backend32.to_numpy(y).sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_backprop_matches_numerical_gradient_784_50_10(backend, activation):
    net = TwoLayerNet(784, 50, 10, backend=backend, seed=0, activation=activation,
                      weight_init_std=0.1)  # fmt: skip
    rng = np.random.default_rng(1)
    x, t = rng.random((3, 784)), rng.integers(0, 10, size=3)
    grads = net.gradient(x, t)
    numeric = net.numerical_gradient(x, t)
    for k in ("W1", "b1", "W2", "b2"):
        assert grads[k].dtype == backend.xp.float64
        # Same namespace, device, dtype and shape as backprop's; values to 1e-8 relative.
        assert_close(numeric[k], grads[k], rtol=1e-5, atol=1e-9)
        err = _relative_error(backend.to_numpy(numeric[k]), backend.to_numpy(grads[k]))
        assert err < 1e-8, f"{k}: relative error {err:.2e}"


def test_structured_and_generic_numerical_gradients_agree(backend):
    net = TwoLayerNet(20, 6, 4, backend=backend, seed=5, weight_init_std=0.5)
    rng = np.random.default_rng(2)
    x, t = rng.random((7, 20)), np.eye(4)[rng.integers(0, 4, size=7)]
    fast = net.numerical_gradient(x, t, max_bytes=20_000)  # several W1 chunks
    slow = net.numerical_gradient(x, t, method="generic", max_bytes=20_000)
    for k in fast:
        np.testing.assert_allclose(backend.to_numpy(fast[k]), backend.to_numpy(slow[k]),
                                   rtol=1e-6, atol=1e-10)  # fmt: skip


def test_loss_gradient_and_accuracy_accept_labels_or_one_hot(backend):
    net = TwoLayerNet(6, 5, 3, backend=backend, seed=1, weight_init_std=1.0)
    rng = np.random.default_rng(0)
    x, labels = rng.random((8, 6)), rng.integers(0, 3, size=8)
    one_hot = np.eye(3)[labels]
    assert float(backend.to_numpy(net.loss(x, labels))) == pytest.approx(
        float(backend.to_numpy(net.loss(x, one_hot))), rel=1e-14
    )
    g1, g2 = net.gradient(x, labels), net.gradient(x, one_hot)
    for k in g1:
        np.testing.assert_allclose(backend.to_numpy(g1[k]), backend.to_numpy(g2[k]), rtol=1e-13)
    probs = backend.to_numpy(net.predict(x))
    expected = np.mean(probs.argmax(axis=1) == labels)
    assert net.accuracy(x, labels) == expected == net.accuracy(x, one_hot, batch_size=3)


def test_totals_are_the_right_rows_and_the_summed_data_loss(backend):
    # weight decay is left out: totals score a set, they are not the training loss
    net = MultiLayerNet(6, [5, 4], 3, weight_decay_lambda=0.5, backend=backend, seed=2,
                        weight_init_std=1.0)  # fmt: skip
    rng = np.random.default_rng(3)
    x, labels = rng.random((4100, 6)), rng.integers(0, 3, size=4100)  # 3 chunks of 2048
    logits = backend.to_numpy(net.logits(x))
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    mean_ce = -np.mean(log_p[np.arange(4100), labels])
    for t in (labels, np.eye(3)[labels]):
        correct, loss_sum = net.totals(x, t)
        assert int(backend.to_numpy(correct)) == np.count_nonzero(logits.argmax(1) == labels)
        assert float(backend.to_numpy(loss_sum)) / 4100 == pytest.approx(mean_ce, rel=1e-12)


def test_totals_cast_raw_pixels_a_chunk_at_a_time(monkeypatch):
    # uint8 rows stay bytes until set_totals casts each chunk (memory of one chunk)
    seen = []
    real = xpnet.nets.set_totals
    monkeypatch.setattr(xpnet.nets, "set_totals", lambda p, x, *a, **k: seen.append(x.dtype)
                        or real(p, x, *a, **k))  # fmt: skip
    net = MultiLayerNet(4, [3], 2, backend="numpy", dtype="float64", seed=0)
    x = np.arange(24, dtype=np.uint8).reshape(6, 4)
    correct, loss_sum = net.totals(x, np.array([0, 1, 0, 1, 0, 1]), scale=1 / 255)
    assert seen == [np.uint8]
    want = net.accuracy(x.astype(np.float64) / 255, np.array([0, 1, 0, 1, 0, 1]))
    assert int(correct) == round(want * 6)


def test_gradient_is_the_exact_gradient_of_the_reported_loss(backend):
    """loss_and_gradient's loss is the loss() value, bit for bit up to rounding."""
    net = TwoLayerNet(6, 5, 3, backend=backend, seed=1)
    x, t = np.random.default_rng(0).random((4, 6)), np.array([0, 2, 1, 1])
    loss, _ = net.loss_and_gradient(x, t)
    assert float(backend.to_numpy(loss)) == pytest.approx(
        float(backend.to_numpy(net.loss(x, t))), rel=1e-14
    )


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="hidden_size must be a positive integer, got 0"):
        TwoLayerNet(784, 0, 10)
    with pytest.raises(ValueError, match="activation must be one of"):
        TwoLayerNet(784, 50, 10, activation="tanh")


def test_chapter_training_loop_runs_unchanged(backend):
    """train_neuralnet.py, written the chapter's way, with only TwoLayerNet swapped.

    On JAX ``params[key] -= ...`` rebinds the dict entry to a new array: it works too.
    """
    rng = np.random.default_rng(0)
    centers = rng.random((10, 784))
    labels = rng.integers(0, 10, size=600)
    x_train = centers[labels] + 0.3 * rng.random((600, 784))
    t_train = np.eye(10)[labels]
    network = TwoLayerNet(input_size=784, hidden_size=50, output_size=10, backend=backend,
                          seed=0)  # fmt: skip
    iters_num, train_size, batch_size, learning_rate = 300, x_train.shape[0], 100, 0.1
    train_loss_list, train_acc_list = [], []
    iter_per_epoch = max(train_size / batch_size, 1)
    np.random.seed(0)  # noqa: NPY002 - the chapter's own global RNG, on purpose
    for i in range(iters_num):
        batch_mask = np.random.choice(train_size, batch_size)  # noqa: NPY002
        x_batch = x_train[batch_mask]
        t_batch = t_train[batch_mask]
        grad = network.gradient(x_batch, t_batch)
        for key in ("W1", "b1", "W2", "b2"):
            network.params[key] -= learning_rate * grad[key]
        loss = network.loss(x_batch, t_batch)
        train_loss_list.append(loss)
        if i % iter_per_epoch == 0:
            train_acc_list.append(network.accuracy(x_train, t_train))
    losses = [float(backend.to_numpy(v)) for v in train_loss_list]
    assert len(train_acc_list) == 50
    assert losses[-1] < 0.5 * losses[0]
    assert train_acc_list[-1] > 0.9


def test_structured_numerical_gradient_memory_is_bounded():
    import tracemalloc

    net = TwoLayerNet(30, 200, 10, backend=xpnet.get_backend("numpy", dtype="float64"), seed=0)
    rng = np.random.default_rng(0)
    x, t = rng.random((20, 30)), rng.integers(0, 10, size=20)
    reference = net.numerical_gradient(x, t, max_bytes=2**30)
    tracemalloc.start()
    bounded = net.numerical_gradient(x, t, max_bytes=2**20)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # one 1 MiB chunk plus the (H, N)-sized activations and the results
    assert peak < 4 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    for k in reference:
        np.testing.assert_allclose(bounded[k], reference[k], rtol=1e-12, atol=1e-15)


def test_whole_set_passes_choose_their_blas_threads(monkeypatch):
    """accuracy over a whole set, of an MLP or a net of layers, and the Trainer's epochs
    run inside blas_threads for their backend (outside it, OpenBLAS's thread per core on a
    busy machine made a DeepConvNet test-set pass 15x slower)."""
    from contextlib import contextmanager

    import xpnet.nets as nets_module
    import xpnet.trainer as trainer_module

    entered = []

    @contextmanager
    def recording(flops=None, backend=None):
        entered.append(backend)
        yield 1

    monkeypatch.setattr(nets_module, "blas_threads", recording)
    monkeypatch.setattr(trainer_module, "blas_threads", recording)
    x, t = np.zeros((6, 1, 6, 6)), np.arange(6) % 3
    conv = xpnet.SimpleConvNet((1, 6, 6), {"filter_num": 2, "filter_size": 3, "pad": 0,
                                           "stride": 1}, hidden_size=4, output_size=3)  # fmt: skip
    mlp = xpnet.TwoLayerNet(36, 4, 3)
    conv.accuracy(x, t)
    mlp.accuracy(x.reshape(6, -1), t)
    assert entered == [conv.backend, mlp.backend]
    xpnet.Trainer(conv, x, t, x, t, epochs=1, mini_batch_size=3, verbose=False).train()
    assert entered[2] is conv.backend and len(entered) >= 4
