"""Losses: the chapter's figures, label/one-hot forms, stability, and shape errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import xpnet
from xpnet.testing import assert_close, tolerance


def test_mean_squared_error_chapter_example(backend):
    b = backend
    loss = xpnet.mean_squared_error(b.asarray(np.array([1, 2, 3])), b.asarray(np.array([3, 4, 7])))
    assert_close(loss, np.float64(12.0), xp=b.xp, device=b.device, dtype=b.xp.float64)
    assert float(b.to_numpy(loss)) == 12.0


def test_mean_squared_error_is_batch_mean_of_per_sample_sums(backend):
    y = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    t = np.array([[3.0, 4.0, 7.0], [0.0, 0.0, 2.0]])
    loss = xpnet.mean_squared_error(backend.asarray(y), backend.asarray(t))
    assert float(backend.to_numpy(loss)) == pytest.approx(
        (12.0 + 2.0) / 2, rel=tolerance("float64")[0]
    )


def test_cross_entropy_error_chapter_example(backend):
    b = backend
    y, t = b.asarray(np.array([0, 2, 3, 8, 9])), b.asarray(np.array([3, 4, 7, 8, 9]))
    loss = xpnet.cross_entropy_error(y, t)
    assert_close(loss, np.float64(1.4808580471604245), xp=b.xp, device=b.device)
    assert float(b.to_numpy(loss)) == pytest.approx(1.4808580471604245, rel=1e-14)


def test_cross_entropy_error_book_digits(backend):
    """The chapter's one-hot example: correct class 2 at 0.6, then at 0.1."""
    t = backend.asarray(np.array([0, 0, 1, 0, 0, 0, 0, 0, 0, 0], dtype=np.float64))
    y1 = np.array([0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0])
    y2 = np.array([0.1, 0.05, 0.1, 0.0, 0.05, 0.1, 0.0, 0.6, 0.0, 0.0])
    assert float(
        backend.to_numpy(xpnet.cross_entropy_error(backend.asarray(y1), t))
    ) == pytest.approx(0.510825457099338, rel=1e-12)  # noqa: E501
    assert float(
        backend.to_numpy(xpnet.cross_entropy_error(backend.asarray(y2), t))
    ) == pytest.approx(2.302584092994546, rel=1e-12)  # noqa: E501
    labels = backend.asarray(np.array(2))
    assert float(
        backend.to_numpy(xpnet.cross_entropy_error(backend.asarray(y1), labels))
    ) == pytest.approx(0.510825457099338, rel=1e-12)  # noqa: E501


def test_losses_batch_with_labels_equal_one_hot(backend):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 4))
    labels = rng.integers(0, 4, size=6)
    one_hot = np.eye(4)[labels]
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    ref_cee = -np.sum(one_hot * np.log(p + 1e-7)) / 6
    ref_sce = -np.sum(one_hot * np.log(p)) / 6
    b = backend
    for t in (b.asarray(labels), b.asarray(one_hot)):
        assert_close(xpnet.cross_entropy_error(b.asarray(p), t), ref_cee, xp=b.xp, device=b.device)
        assert_close(
            xpnet.softmax_cross_entropy(b.asarray(logits), t), ref_sce, xp=b.xp, device=b.device
        )  # noqa: E501


def test_softmax_cross_entropy_is_stable(backend32):
    b = backend32
    logits = b.asarray(np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]]))
    loss = xpnet.softmax_cross_entropy(logits, b.asarray(np.array([0, 2])))
    value = float(b.to_numpy(loss))
    assert np.isfinite(value)
    assert value == pytest.approx(np.log(3) / 2, rel=1e-6)


@pytest.mark.parametrize(
    "fn", ["mean_squared_error", "cross_entropy_error", "softmax_cross_entropy"]
)
def test_shape_mismatch_names_both_shapes(backend, fn):
    y = backend.asarray(np.ones((4, 3)))
    t = backend.asarray(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"\(4, 3\).*\(4, 5\)"):
        getattr(xpnet, fn)(y, t)


def test_integer_targets_take_the_outputs_dtype(backend32):
    y = backend32.asarray(np.array([[1.0, 2.0, 3.0]]))
    loss = xpnet.mean_squared_error(y, backend32.asarray(np.array([[3, 4, 7]])))
    assert loss.dtype == backend32.xp.float32
    assert float(backend32.to_numpy(loss)) == 12.0


def test_float_labels_are_rejected(backend):
    y = backend.asarray(np.full((2, 3), 1 / 3))
    with pytest.raises(
        ValueError, match=r"labels t of shape \(2,\) for y of shape \(2, 3\) must be integers"
    ):  # noqa: E501
        xpnet.cross_entropy_error(y, backend.asarray(np.array([0.0, 1.0])))


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(2, 6), st.integers(0, 2**31 - 1))
def test_cee_with_one_hot_equals_cee_with_labels(n, c, seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, c))
    y = xpnet.softmax(logits)
    labels = rng.integers(0, c, size=n)
    a = xpnet.cross_entropy_error(y, labels)
    b = xpnet.cross_entropy_error(y, np.eye(c)[labels])
    np.testing.assert_allclose(a, b, rtol=tolerance("float64")[0])


def test_chapter_calls_with_python_lists():
    """The chapter's section 4.2 figures, called with lists as the chapter does."""
    t = [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    y = [0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0]
    y_wrong = [0.1, 0.05, 0.1, 0.0, 0.05, 0.1, 0.0, 0.6, 0.0, 0.0]
    assert float(xpnet.mean_squared_error(y, t)) == 0.09750000000000003
    assert float(xpnet.mean_squared_error(y_wrong, t)) == 0.5975
    assert float(xpnet.cross_entropy_error(y, t)) == pytest.approx(
        0.510825457099338, rel=tolerance("float64")[0]
    )
    assert float(xpnet.cross_entropy_error(y_wrong, t)) == pytest.approx(
        2.302584092994546, rel=tolerance("float64")[0]
    )
    loss = xpnet.softmax_cross_entropy([[0.3, 2.9, 4.0]], [2])
    assert isinstance(loss, np.ndarray | np.generic)


def test_softmax_cross_entropy_of_one_1d_sample(backend):
    """One sample of shape (C,), with a one-hot or a 0-d label: the loss of a batch of one."""
    b = backend
    logits = np.array([0.3, 2.9, 4.0])
    want = np.log(np.exp(logits).sum()) - logits[2]
    one_hot = b.asarray(np.eye(3)[2])
    for t in (one_hot, b.asarray(np.asarray(2))):
        loss = xpnet.softmax_cross_entropy(b.asarray(logits), t)
        assert tuple(loss.shape) == ()
        assert float(b.to_numpy(loss)) == pytest.approx(want, rel=tolerance("float64")[0])


@pytest.mark.parametrize("name", ["numpy", "torch"])
def test_row_dot_without_vecdot_gives_the_same_training(name, monkeypatch):
    """The cross-entropy's row dot as sum(t * s), as on CuPy, forced on a CPU backend:
    the same losses to the last bit (one-hot targets pick one term)."""
    from xpnet.backends._registry import SPECS

    if name == "torch":
        pytest.importorskip("torch")
    b = xpnet.get_backend(name, "cpu", "float64")
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((120, 12)), rng.integers(0, 5, 120)
    runs = []
    for native in (True, False):
        monkeypatch.setattr(SPECS[name], "native_vecdot", native)
        net = xpnet.MultiLayerNet(12, [7], 5, backend=b, seed=0)
        runs.append(xpnet.train(net, x, t, iters=30, batch_size=20, lr=0.5).loss)
    assert runs[0] == runs[1] and runs[0][-1] < runs[0][0]
