"""The layers on every backend: backward against central differences, convolution and
pooling against the book's im2col structure (the NumPy reference of
:mod:`benchmarks.convnet`), train/test modes, masks, devices."""

from __future__ import annotations

import numpy as np
import pytest
from array_api_compat import array_namespace
from array_api_compat import device as device_of

import xpnet
from benchmarks.convnet import RefConvolution, RefPooling, ref_col2im, ref_im2col
from xpnet.layers import (
    Affine,
    BatchNormalization,
    Convolution,
    Dropout,
    Pooling,
    Relu,
    Sigmoid,
    SoftmaxWithLoss,
    col2im,
    conv_output_size,
    im2col,
    overlap_add,
)
from xpnet.numerical import stacked
from xpnet.testing import assert_close

#: Backward against central differences, float64, as a fraction of the largest entry.
GRAD_RTOL = 1e-7
#: Against the NumPy reference of the same arithmetic.
ORACLE_RTOL = 1e-10


def _away_from_kinks(rng, shape, gap=0.05):
    """Values at least ``gap`` from 0 and from each other's neighbours in a pool window:
    a central difference with h = 1e-4 never crosses a kink of relu or max."""
    x = rng.uniform(gap, 1.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    flat = x.reshape(-1)
    order = rng.permutation(flat.size)
    flat[order] = np.sign(flat[order]) * (gap + np.arange(flat.size) * (1.0 / flat.size))
    return x


def _numerical(b, f, x):
    """Central differences of the scalar ``f`` at ``x`` (a host array), on backend ``b``."""
    xp = b.xp
    return b.to_numpy(xpnet.numerical_gradient(stacked(f, xp), b.asarray(x), batched=True))


def _check_grad(analytic, numerical, name=""):
    a, n = np.asarray(analytic), np.asarray(numerical)
    assert a.shape == n.shape, name
    err = np.abs(a - n).max() / np.abs(n).max()
    assert err <= GRAD_RTOL, f"{name}: relative error {err:.2e}"


def _layer_case(kind, rng):
    """``(make(params) -> layer, x, params, forward kwargs)`` for each kind of layer."""
    if kind == "affine":
        return (
            lambda p: Affine(p["W"], p["b"]),
            rng.standard_normal((4, 2, 3, 2)),
            {"W": rng.standard_normal((12, 5)), "b": rng.standard_normal(5)},
            {},
        )
    if kind == "relu":
        return lambda p: Relu(), _away_from_kinks(rng, (3, 7)), {}, {}
    if kind == "sigmoid":
        return lambda p: Sigmoid(), 3 * rng.standard_normal((3, 7)), {}, {}
    if kind in ("batchnorm", "batchnorm4d"):
        shape = (6, 5) if kind == "batchnorm" else (5, 2, 2, 3)
        d = int(np.prod(shape[1:]))
        return (
            lambda p: BatchNormalization(p["gamma"], p["beta"]),
            rng.standard_normal(shape),
            {"gamma": 1 + 0.3 * rng.standard_normal(d), "beta": rng.standard_normal(d)},
            {"train_flg": True},
        )
    if kind == "dropout":
        return lambda p: Dropout(0.4, seed=5), rng.standard_normal((4, 6)), {}, {}
    if kind.startswith("conv"):
        stride, pad = {"conv": (1, 1), "conv_strided": (2, 0), "conv_wide": (3, 2)}[kind]
        return (
            lambda p: Convolution(p["W"], p["b"], stride, pad),
            rng.standard_normal((1, 2, 7, 6)),
            {"W": rng.standard_normal((3, 2, 3, 2)), "b": rng.standard_normal(3)},
            {},
        )
    stride, pad, size = {"pool": (2, 0, 2), "pool_overlap": (2, 1, 3), "pool_odd": (2, 0, 2)}[kind]
    shape = (1, 2, 7, 5) if kind == "pool_odd" else (2, 1, 6, 6)
    return lambda p: Pooling(size, size, stride, pad), _away_from_kinks(rng, shape), {}, {}


KINDS = ["affine", "relu", "sigmoid", "batchnorm", "batchnorm4d", "dropout", "conv",
         "conv_strided", "conv_wide", "pool", "pool_overlap", "pool_odd"]  # fmt: skip
GRAD_NAMES = {"W": "dW", "b": "db", "gamma": "dgamma", "beta": "dbeta"}


@pytest.mark.parametrize("kind", KINDS)
def test_backward_equals_central_differences(backend, kind):
    rng = np.random.default_rng(KINDS.index(kind))
    make, x, host, kw = _layer_case(kind, rng)
    params = {k: backend.asarray(v) for k, v in host.items()}
    layer = make(params)
    y = layer.forward(backend.asarray(x), **kw)
    g = rng.standard_normal(tuple(y.shape))  # the upstream gradient: L = sum(y * g)
    g_dev = backend.asarray(g)
    dx = layer.backward(g_dev)
    xp = backend.xp

    def loss_of(name):
        def f(v):
            p = dict(params)
            if name == "x":
                inp = v
            else:
                p[name], inp = v, backend.asarray(x)
            fresh = make(p)
            if kind == "dropout":  # the mask of the forward above, again
                fresh.rng = np.random.default_rng(5)
            return xp.sum(fresh.forward(inp, **kw) * g_dev)

        return f

    _check_grad(backend.to_numpy(dx), _numerical(backend, loss_of("x"), x), "dx")
    for name, v in host.items():
        got = backend.to_numpy(getattr(layer, GRAD_NAMES[name]))
        _check_grad(got, _numerical(backend, loss_of(name), v), name)


@pytest.mark.parametrize("labels", [True, False], ids=["labels", "one-hot"])
def test_softmax_with_loss_backward_equals_central_differences(backend, labels):
    rng = np.random.default_rng(1)
    x = 2 * rng.standard_normal((5, 4))
    t = rng.integers(0, 4, 5)
    t = t if labels else np.eye(4)[t]
    layer = SoftmaxWithLoss()
    loss = layer.forward(backend.asarray(x), backend.asarray(t))
    dx = layer.backward(1)
    xp = backend.xp
    probs = np.exp(x - x.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    hot = np.eye(4)[t] if labels else t
    assert_close(loss, -np.mean(np.sum(hot * np.log(probs), axis=1)), rtol=1e-12)

    def f(v):
        return SoftmaxWithLoss().forward(v, backend.asarray(t))

    _check_grad(backend.to_numpy(dx), _numerical(backend, f, x), "dx")
    # dout scales the gradient, as the chain rule says
    assert_close(layer.backward(0.5), backend.to_numpy(dx) * 0.5, rtol=1e-12, xp=xp,
                 device=backend.device)  # fmt: skip


CONV_CASES = [  # (N, C, H, W), (FN, FH, FW), stride, pad
    ((2, 3, 7, 7), (4, 3, 3), 1, 1),
    ((2, 2, 9, 8), (3, 3, 2), 2, 1),
    ((1, 1, 10, 11), (2, 4, 3), 3, 2),
    ((3, 1, 12, 12), (5, 5, 5), 1, 0),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "x".join(map(str, c[0] + c[1])))
def test_convolution_equals_the_books_im2col(backend, case):
    (n, c, h, w), (fn, fh, fw), stride, pad = case
    rng = np.random.default_rng(2)
    x, W, b = (
        rng.standard_normal((n, c, h, w)),
        rng.standard_normal((fn, c, fh, fw)),
        (rng.standard_normal(fn)),
    )
    ref = RefConvolution(W, b, stride, pad)
    ours = Convolution(backend.asarray(W), backend.asarray(b), stride, pad)
    out_ref = ref.forward(x)
    out = ours.forward(backend.asarray(x))
    assert_close(out, out_ref, rtol=ORACLE_RTOL, atol=1e-12, xp=backend.xp, device=backend.device)
    dout = rng.standard_normal(out_ref.shape)
    dx_ref = ref.backward(dout.copy())
    dx = ours.backward(backend.asarray(dout))
    for got, want in ((dx, dx_ref), (ours.dW, ref.dW), (ours.db, ref.db)):
        assert_close(got, want, rtol=ORACLE_RTOL, atol=1e-12, xp=backend.xp,
                     device=backend.device)  # fmt: skip


POOL_CASES = [((2, 3, 8, 8), 2, 2, 0), ((2, 2, 7, 9), 2, 2, 0), ((1, 2, 9, 9), 3, 2, 0),
              ((2, 1, 6, 6), 3, 3, 0)]  # fmt: skip


@pytest.mark.parametrize("case", POOL_CASES, ids=lambda c: f"{c[0][2]}x{c[0][3]}-p{c[1]}s{c[2]}")
def test_pooling_equals_the_books_im2col(backend, case):
    shape, size, stride, pad = case
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape)
    x[:, :, :2, :2] = 0.0  # ties: the first maximum of a window takes the gradient
    ref, ours = RefPooling(size, size, stride, pad), Pooling(size, size, stride, pad)
    out_ref = ref.forward(x)
    assert_close(ours.forward(backend.asarray(x)), out_ref, rtol=0, atol=0, xp=backend.xp,
                 device=backend.device)  # fmt: skip
    dout = rng.standard_normal(out_ref.shape)
    assert_close(ours.backward(backend.asarray(dout)), ref.backward(dout), rtol=ORACLE_RTOL,
                 atol=1e-12, xp=backend.xp, device=backend.device)  # fmt: skip


IM2COL_CASES = [  # N, C, H, W, FH, FW, stride, pad
    (2, 3, 7, 8, 3, 3, 1, 1),
    (2, 2, 9, 9, 3, 2, 2, 1),
    (2, 2, 7, 7, 2, 2, 2, 0),
    (2, 1, 10, 11, 3, 4, 3, 2),
    (1, 2, 5, 5, 5, 5, 1, 0),
    (1, 1, 5, 5, 1, 1, 2, 0),
]


@pytest.mark.parametrize("case", IM2COL_CASES, ids=lambda c: "-".join(map(str, c)))
def test_im2col_and_col2im_equal_the_books(backend, case):
    n, c, h, w, fh, fw, stride, pad = case
    rng = np.random.default_rng(4)
    x = rng.standard_normal((n, c, h, w))
    col = im2col(backend.asarray(x), fh, fw, stride, pad)
    ref = ref_im2col(x, fh, fw, stride, pad)
    assert_close(col, ref, rtol=0, atol=0, xp=backend.xp, device=backend.device)
    back = rng.standard_normal(ref.shape)
    assert_close(col2im(backend.asarray(back), x.shape, fh, fw, stride, pad),
                 ref_col2im(back, x.shape, fh, fw, stride, pad), rtol=ORACLE_RTOL, atol=1e-12,
                 xp=backend.xp, device=backend.device)  # fmt: skip


def test_conv_output_size_is_the_books_formula():
    assert conv_output_size(28, 5) == 24.0
    assert conv_output_size(28, 3, stride=1, pad=1) == 28.0
    assert conv_output_size(7, 3, stride=2) == 3.0


def test_batch_norm_train_and_test_modes(backend):
    rng = np.random.default_rng(5)
    x1, x2 = 3 + 2 * rng.standard_normal((8, 4)), -1 + rng.standard_normal((8, 4))
    gamma, beta = np.array([1.0, 2.0, 0.5, 1.0]), np.array([0.0, 1.0, -1.0, 0.5])
    bn = BatchNormalization(backend.asarray(gamma), backend.asarray(beta), momentum=0.8)
    out = backend.to_numpy(bn.forward(backend.asarray(x1), train_flg=True))
    normed = (out - beta) / gamma
    np.testing.assert_allclose(normed.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(normed.var(0), x1.var(0) / (x1.var(0) + 1e-6), rtol=1e-12)
    bn.forward(backend.asarray(x2), train_flg=True)
    mean = 0.8 * (0.2 * x1.mean(0)) + 0.2 * x2.mean(0)  # from zeros, two updates
    var = 0.8 * (0.2 * x1.var(0)) + 0.2 * x2.var(0)
    assert_close(bn.running_mean, mean, rtol=1e-12, xp=backend.xp, device=backend.device)
    assert_close(bn.running_var, var, rtol=1e-12, xp=backend.xp, device=backend.device)
    x3 = rng.standard_normal((3, 4))
    test = bn.forward(backend.asarray(x3), train_flg=False)
    assert_close(test, gamma * (x3 - mean) / np.sqrt(var + 1e-6) + beta, rtol=1e-12,
                 xp=backend.xp, device=backend.device)  # fmt: skip
    assert_close(bn.running_mean, mean, rtol=1e-12)  # testing leaves the statistics alone


def test_dropout_masks_are_the_hosts_on_every_backend(backend):
    x = np.ones((6, 50))
    drop = Dropout(0.3, seed=11)
    y = drop.forward(backend.asarray(x))
    keep = np.random.default_rng(11).random((6, 50)) > 0.3
    assert_close(y, keep.astype(np.float64), rtol=0, atol=0, xp=backend.xp, device=backend.device)
    assert backend.to_numpy(drop.mask).dtype == np.bool_
    assert_close(drop.backward(backend.asarray(2 * x)), 2 * keep, rtol=0, atol=0)
    assert_close(drop.forward(backend.asarray(x), train_flg=False), 0.7 * x, rtol=1e-15)
    shared = np.random.default_rng(2)
    a, b = Dropout(0.5, seed=shared), Dropout(0.5, seed=shared)
    a.forward(backend.asarray(x))
    b.forward(backend.asarray(x))  # one generator, two streams of draws
    assert not np.array_equal(backend.to_numpy(a.mask), backend.to_numpy(b.mask))


def test_relu_mask_and_a_new_gradient_array(backend):
    relu = Relu()
    y = relu.forward(backend.asarray(np.array([[-1.0, 0.0, 2.0]])))
    assert_close(y, np.array([[0.0, 0.0, 2.0]]), rtol=0, atol=0)
    np.testing.assert_array_equal(backend.to_numpy(relu.mask), [[True, True, False]])
    dout = backend.asarray(np.array([[5.0, 6.0, 7.0]]))
    assert_close(relu.backward(dout), np.array([[0.0, 0.0, 7.0]]), rtol=0, atol=0)
    assert_close(dout, np.array([[5.0, 6.0, 7.0]]), rtol=0, atol=0)  # not written into


@pytest.mark.parametrize("kind", ["affine", "conv", "batchnorm"])
def test_host_input_runs_where_the_parameters_are(backend, kind):
    rng = np.random.default_rng(6)
    make, x, host, kw = _layer_case(kind, rng)
    layer = make({k: backend.asarray(v) for k, v in host.items()})
    y = layer.forward(x.copy(), **kw)  # host NumPy data, as the book's scripts pass it
    assert array_namespace(y) is backend.xp
    assert device_of(y) == backend.device
    dx = layer.backward(backend.asarray(np.ones(tuple(y.shape))))
    assert device_of(dx) == backend.device


def test_the_books_numpy_parameters_run_on_numpy():
    W, b = np.ones((3, 2)), np.zeros(2)
    y = Affine(W, b).forward(np.ones((4, 3)))
    assert isinstance(y, np.ndarray)
    np.testing.assert_array_equal(y, 3.0)


def test_mixed_libraries_are_refused_in_one_line():
    torch = pytest.importorskip("torch")
    layer = Affine(np.ones((3, 2)), np.zeros(2))
    with pytest.raises(TypeError, match="parameters are numpy arrays but its input is a torch"):
        layer.forward(torch.ones((4, 3), dtype=torch.float64))


def test_bad_shapes_name_what_to_do():
    conv = Convolution(np.ones((2, 3, 3, 3)), np.zeros(2))
    with pytest.raises(ValueError, match=r"input must have shape \(N, 3, H, W\)"):
        conv.forward(np.ones((1, 1, 5, 5)))
    with pytest.raises(ValueError, match="does not fit a height of size 2"):
        conv.forward(np.ones((1, 3, 2, 5)))
    with pytest.raises(ValueError, match="dropout_ratio must be in"):
        Dropout(1.0)
    with pytest.raises(ValueError, match=r"col has shape \(5, 4\), expected \(9, 4\)"):
        col2im(np.ones((5, 4)), (1, 1, 4, 4), 2, 2)
    with pytest.raises(ValueError, match=r"col has shape \(1, 4, 5\), expected \(1, 4, 9\)"):
        overlap_add(np.ones((1, 4, 5)), (1, 1, 4, 4), 2, 2)
    with pytest.raises(RuntimeError, match="train_flg=True"):
        BatchNormalization(np.ones(2), np.zeros(2)).backward(np.ones((3, 2)))
