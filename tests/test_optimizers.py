"""Optimizers: the book's formulas on every backend, torch.optim as an oracle, state."""

from __future__ import annotations

import numpy as np
import pytest

import xpnet
from xpnet.optimizers import OPTIMIZERS, get_optimizer


def _book(name, hyper):
    """The book's common/optimizer.py update rules, written out in NumPy float64."""
    lr = hyper.get("lr")
    state = {"v": None, "h": None, "m": None, "iter": 0}

    def update(params, grads):
        for key in params:
            g = grads[key]
            if name == "sgd":
                params[key] = params[key] - lr * g
            elif name == "momentum":
                v = state.setdefault(key + "v", np.zeros_like(g))
                v = hyper["momentum"] * v - lr * g
                state[key + "v"] = v
                params[key] = params[key] + v
            elif name == "nesterov":
                m = hyper["momentum"]
                v = state.setdefault(key + "v", np.zeros_like(g))
                v = v * m - lr * g
                state[key + "v"] = v
                params[key] = params[key] + m * m * v - (1 + m) * lr * g
            elif name == "adagrad":
                h = state.setdefault(key + "h", np.zeros_like(g)) + g * g
                state[key + "h"] = h
                params[key] = params[key] - lr * g / (np.sqrt(h) + 1e-7)
            elif name == "rmsprop":
                d = hyper["decay_rate"]
                h = state.setdefault(key + "h", np.zeros_like(g)) * d + (1 - d) * g * g
                state[key + "h"] = h
                params[key] = params[key] - lr * g / (np.sqrt(h) + 1e-7)
            elif name == "adam":
                b1, b2 = hyper["beta1"], hyper["beta2"]
                it = state["iter"] + 1
                lr_t = lr * np.sqrt(1.0 - b2**it) / (1.0 - b1**it)
                m = state.setdefault(key + "m", np.zeros_like(g))
                v = state.setdefault(key + "v", np.zeros_like(g))
                m = m + (1 - b1) * (g - m)
                v = v + (1 - b2) * (g**2 - v)
                state[key + "m"], state[key + "v"] = m, v
                params[key] = params[key] - lr_t * m / (np.sqrt(v) + 1e-7)
        if name == "adam":
            state["iter"] += 1

    return update


HYPER = {
    "sgd": {"lr": 0.1},
    "momentum": {"lr": 0.05, "momentum": 0.8},
    "nesterov": {"lr": 0.05, "momentum": 0.8},
    "adagrad": {"lr": 0.1},
    "rmsprop": {"lr": 0.01, "decay_rate": 0.9},
    "adam": {"lr": 0.01, "beta1": 0.8, "beta2": 0.99},
}


def _problem(seed=0, steps=100):
    rng = np.random.default_rng(seed)
    params = {"W1": rng.standard_normal((4, 3)), "b1": rng.standard_normal(3)}
    grads = [{k: rng.standard_normal(v.shape) for k, v in params.items()} for _ in range(steps)]
    return params, grads


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_100_updates_match_the_book_formulas(backend, name):
    params, grads = _problem()
    ref = dict(params)
    book = _book(name, HYPER[name])
    for g in grads:
        book(ref, g)
    opt = get_optimizer(name, **HYPER[name])
    dev = {k: backend.asarray(v) for k, v in params.items()}
    for g in grads:
        opt.update(dev, {k: backend.asarray(v) for k, v in g.items()})
    for k in ref:
        got = backend.to_numpy(dev[k])
        rel = np.abs(got - ref[k]).max() / np.abs(ref[k]).max()
        assert rel <= 1e-12, (k, rel)
        assert dev[k].dtype == backend.float_dtype


def test_defaults_are_the_books():
    assert get_optimizer("sgd").hyper == {"lr": 0.01}
    assert get_optimizer("momentum").hyper == {"lr": 0.01, "momentum": 0.9}
    assert get_optimizer("nesterov").hyper == {"lr": 0.01, "momentum": 0.9}
    assert get_optimizer("adagrad").hyper == {"lr": 0.01}
    assert get_optimizer("rmsprop").hyper == {"lr": 0.01, "decay_rate": 0.99}
    assert get_optimizer("adam").hyper == {"lr": 0.001, "beta1": 0.9, "beta2": 0.999}


@pytest.mark.parametrize(
    ("name", "torch_kw"),
    [
        ("sgd", {}),
        ("momentum", {"momentum": 0.8}),
        ("adagrad", {"eps": 1e-7}),
        ("rmsprop", {"alpha": 0.9, "eps": 1e-7}),
    ],
)
def test_torch_optim_is_an_independent_oracle(name, torch_kw):
    torch = pytest.importorskip("torch")
    params, grads = _problem(seed=1)
    cls = {"sgd": "SGD", "momentum": "SGD", "adagrad": "Adagrad", "rmsprop": "RMSprop"}[name]
    tensors = [torch.tensor(params[k], dtype=torch.float64, requires_grad=True) for k in params]
    topt = getattr(torch.optim, cls)(tensors, lr=HYPER[name]["lr"], **torch_kw)
    opt = get_optimizer(name, **HYPER[name])
    mine = {k: np.array(v) for k, v in params.items()}
    for g in grads:
        for tensor, k in zip(tensors, params, strict=True):
            tensor.grad = torch.tensor(g[k], dtype=torch.float64)
        topt.step()
        opt.update(mine, g)
    for tensor, k in zip(tensors, params, strict=True):
        np.testing.assert_allclose(mine[k], tensor.detach().numpy(), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_per_model_hyperparameters_over_a_model_axis(backend, name):
    """One update of K stacked models with K learning rates equals K separate updates."""
    rng = np.random.default_rng(3)
    k = 3
    params = {"W1": rng.standard_normal((k, 4, 3)), "b1": rng.standard_normal((k, 1, 3))}
    grads = [{n: rng.standard_normal(v.shape) for n, v in params.items()} for _ in range(5)]
    lrs = np.array([0.1, 0.01, 0.001])
    opt = get_optimizer(name, **{**HYPER[name], "lr": lrs.reshape(k, 1, 1)})
    dev = {n: backend.asarray(v) for n, v in params.items()}
    for g in grads:
        opt.update(dev, {n: backend.asarray(v) for n, v in g.items()})
    for i in range(k):
        single = {n: v[i] for n, v in params.items()}
        one = get_optimizer(name, **{**HYPER[name], "lr": float(lrs[i])})
        for g in grads:
            one.update(single, {n: v[i] for n, v in g.items()})
        for n in params:
            np.testing.assert_allclose(backend.to_numpy(dev[n])[i], single[n], rtol=1e-12)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_state_dict_round_trip_through_npz_resumes_exactly(tmp_path, backend, name):
    params, grads = _problem(seed=2, steps=10)
    a = get_optimizer(name, **HYPER[name])
    pa = {k: backend.asarray(v) for k, v in params.items()}
    for g in grads[:5]:
        a.update(pa, {k: backend.asarray(v) for k, v in g.items()})
    np.savez(tmp_path / "s.npz", **a.state_dict())
    with np.load(tmp_path / "s.npz", allow_pickle=False) as f:
        state = {k: f[k] for k in f.files}
    b = get_optimizer(name)
    pb = {k: backend.asarray(backend.to_numpy(v)) for k, v in pa.items()}
    b.load_state_dict(state, pb)
    for g in grads[5:]:
        a.update(pa, {k: backend.asarray(v) for k, v in g.items()})
        b.update(pb, {k: backend.asarray(v) for k, v in g.items()})
    for k in params:
        np.testing.assert_array_equal(backend.to_numpy(pa[k]), backend.to_numpy(pb[k]))


def test_bad_optimizer_arguments_name_what_to_do():
    with pytest.raises(ValueError, match="unknown optimizer 'adamw'; choose one of: sgd, "):
        get_optimizer("adamw")
    with pytest.raises(ValueError, match="optimizer 'sgd' takes lr; not momentum"):
        get_optimizer("sgd", momentum=0.9)
    with pytest.raises(ValueError, match="lr must be a positive finite number"):
        xpnet.Adam(lr=-1.0)
    with pytest.raises(ValueError, match=r"beta1 must be in \[0, 1\), got 1.0"):
        xpnet.Adam(beta1=1.0)
    with pytest.raises(ValueError, match="not a sgd state .it has beta1, beta2 extra"):
        xpnet.SGD().load_state_dict(xpnet.Adam().state_dict(), {"W1": np.zeros(2)})


def test_state_dict_is_a_snapshot_and_loading_copies(backend):
    params, grads = _problem(seed=4, steps=3)
    dev = {k: backend.asarray(v) for k, v in params.items()}
    opt = get_optimizer("momentum", lr=0.1)
    opt.update(dev, {k: backend.asarray(v) for k, v in grads[0].items()})
    state = opt.state_dict()
    before = {k: v.copy() for k, v in state.items()}
    opt.update(dev, {k: backend.asarray(v) for k, v in grads[1].items()})
    for k in state:
        np.testing.assert_array_equal(state[k], before[k])
    other = get_optimizer("momentum", lr=0.1)
    other.load_state_dict(state, dev)
    other.update(dev, {k: backend.asarray(v) for k, v in grads[2].items()})
    for k in state:
        np.testing.assert_array_equal(state[k], before[k])


def test_changing_lr_between_updates_takes_effect():
    p = {"W1": np.ones(3)}
    opt = xpnet.SGD(lr=0.1)
    opt.update(p, {"W1": np.ones(3)})
    opt.lr = 0.5  # a schedule
    opt.update(p, {"W1": np.ones(3)})
    np.testing.assert_allclose(p["W1"], 1 - 0.1 - 0.5, rtol=1e-15)
    assert opt.hyper["lr"] == 0.5
    with pytest.raises(ValueError, match="lr must be a positive finite number"):
        opt.lr = -1.0


# --- the book's optimizer_compare_naive.py: scalar parameters -------------------------


def _df(x, y):
    return x / 10.0, 2.0 * y


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_0d_parameters_with_numpy_float_gradients(backend, name):
    """0-d backend arrays as parameters, NumPy float64 gradients, as the naive comparison."""
    ref = {"x": -7.0, "y": 2.0}
    book = _book(name, HYPER[name])
    opt = get_optimizer(name, **HYPER[name])
    params = {k: backend.asarray(np.float64(v)) for k, v in ref.items()}
    for _ in range(30):
        gx, gy = _df(ref["x"], ref["y"])
        book(ref, {"x": gx, "y": gy})
        px, py = (float(backend.to_numpy(params[k])) for k in ("x", "y"))
        gx, gy = _df(np.float64(px), np.float64(py))
        opt.update(params, {"x": gx, "y": gy})
    for k in ref:
        assert params[k].ndim == 0 and params[k].dtype == backend.float_dtype
        assert float(backend.to_numpy(params[k])) == pytest.approx(float(ref[k]), rel=1e-12)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("kind", [float, np.float64])
def test_python_and_numpy_scalar_parameters_get_new_values(name, kind):
    """Python floats and NumPy scalars (the book's) become new NumPy scalars each update,
    so a history list keeps the earlier values."""
    ref = {"x": -7.0, "y": 2.0}
    book = _book(name, HYPER[name])
    opt = get_optimizer(name, **HYPER[name])
    params = {k: kind(v) for k, v in ref.items()}
    history = []
    for _ in range(30):
        history.append(params["x"])
        gx, gy = _df(params["x"], params["y"])
        opt.update(params, {"x": gx, "y": gy})
        gx, gy = _df(ref["x"], ref["y"])
        book(ref, {"x": gx, "y": gy})
    assert isinstance(params["x"], np.float64)
    assert params["x"] == pytest.approx(float(ref["x"]), rel=1e-12)
    assert params["y"] == pytest.approx(float(ref["y"]), rel=1e-12, abs=1e-300)
    assert history[0] == -7.0 and len({float(h) for h in history}) > 20


def test_host_gradients_move_to_the_parameters_device(backend):
    params = {"W": backend.asarray(np.ones((2, 3))), "b": backend.asarray(np.zeros(3))}
    opt = xpnet.Momentum(lr=0.5, momentum=0.5)
    for _ in range(2):
        opt.update(params, {"W": np.full((2, 3), 2.0), "b": np.float64(1.0)})
    # W: v = -1, -1.5; p = 0, -1.5.  b: v = -0.5, -0.75; p = -0.5, -1.25
    assert np.allclose(backend.to_numpy(params["W"]), -1.5)
    assert np.allclose(backend.to_numpy(params["b"]), -1.25)
    assert type(params["W"]) is type(backend.asarray(np.ones(1)))
    assert params["W"].dtype == backend.float_dtype
