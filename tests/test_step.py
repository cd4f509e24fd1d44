"""The compiled training step gives the eager step's numbers; the backend decides how."""

from __future__ import annotations

import numpy as np
import pytest
from _data import blobs

import xpnet
from xpnet.optimizers import Adam
from xpnet.step import Stepper, compile_wanted
from xpnet.sweeps import grid, sweep

#: Compiled and eager steps run the same formulas; a compiler may only reorder or fuse
#: floating operations, so 300 float64 steps stay this close (the loss of a wrong update
#: differs in the first digits).
COMPILED_RTOL = 1e-9

#: Where a step compiles on the CPU; elsewhere compile=True is refused.
COMPILERS = pytest.mark.skip_backends(
    "numpy", "array_api_strict", "cupy", reason="the library has no compiler"
)

STEPS = {"iters": 300, "batch_size": 50, "eval_interval": 60}


@pytest.fixture(scope="module")
def data():
    x, t = blobs(600, d=24, classes=5, noise=70)
    xt, tt = blobs(200, seed=1, d=24, classes=5, noise=70)
    return x, t, xt, tt


def _net(kind, backend):
    if kind == "two":
        return xpnet.TwoLayerNet(24, 16, 5, backend=backend, seed=3), None
    net = xpnet.MultiLayerNet(24, [16, 12], 5, weight_decay_lambda=1e-3, backend=backend, seed=3)
    return net, Adam(0.01)


def _assert_same_run(compiled, eager):
    np.testing.assert_allclose(compiled.loss, eager.loss, rtol=COMPILED_RTOL, atol=0)
    assert compiled.train_acc == eager.train_acc and compiled.test_acc == eager.test_acc
    assert compiled.eval_steps == eager.eval_steps


def _train(kind, backend, data, compile):
    net, opt = _net(kind, backend)
    h = xpnet.train(net, *data, optimizer=opt, compile=compile, **STEPS)
    return h, {k: xpnet.to_numpy(v) for k, v in net.params.items()}, opt


@pytest.mark.slow
@COMPILERS
@pytest.mark.parametrize("kind", ["two", "adam"])
def test_compiled_run_equals_the_eager_run(backend, data, kind):
    eager, p_eager, opt_eager = _train(kind, backend, data, False)
    compiled, p_comp, opt_comp = _train(kind, backend, data, True)
    _assert_same_run(compiled, eager)
    for k, v in p_eager.items():
        np.testing.assert_allclose(p_comp[k], v, rtol=COMPILED_RTOL, atol=1e-15)
    if opt_eager is not None:  # the optimizer's own state is kept up to date
        assert opt_comp.iter == opt_eager.iter == STEPS["iters"]
        for k, v in opt_eager.state_dict().items():
            np.testing.assert_allclose(opt_comp.state_dict()[k], v, rtol=COMPILED_RTOL,
                                       atol=1e-15)  # fmt: skip
    # one compilation for the whole run (every batch has one shape), timed apart
    assert compiled.compiles >= 1 and compiled.compile_seconds > 0
    assert eager.compiles == 0 and eager.compile_seconds == 0
    assert 0 < compiled.loop_seconds


@pytest.mark.slow
@COMPILERS
def test_compiled_stack_equals_the_eager_stack(backend, data):
    configs = grid(lr=[0.05, 0.1, 0.2, 0.4], weight_decay=[0.0, 1e-3], seed=[0, 1])
    assert len(configs) == 16
    kw = {**STEPS, "backend": backend, "halving": [120]}
    eager = sweep(configs, *data, compile=False, **kw)
    compiled = sweep(configs, *data, compile=True, **kw)
    for a, b in zip(compiled, eager, strict=True):
        _assert_same_run(a.history, b.history)
        assert a.stopped_at == b.stopped_at
    # the halving cut changed the stack's size: compiled again, and counted
    cut = [r for r in compiled if r.stopped_at is None]
    assert cut and all(r.history.compiles == 2 for r in cut)
    assert all(r.history.compiles == 0 for r in eager)


@pytest.mark.skip_backends(
    "numpy", "array_api_strict", "cupy", "torch", reason="JAX jits in a second; torch: slow"
)
def test_a_short_jitted_run_equals_the_eager_one(backend, data):
    kw = {"iters": 30, "batch_size": 50, "eval_interval": 10}
    runs = []
    for compile in (False, "auto"):  # "auto" compiles on JAX
        net, opt = _net("adam", backend)
        runs.append(xpnet.train(net, *data, optimizer=opt, compile=compile, **kw))
    _assert_same_run(runs[1], runs[0])
    assert runs[1].compiles == 1 and runs[0].compiles == 0


def test_eager_steps_update_in_place_where_arrays_are_mutable(backend, data):
    net, _ = _net("two", backend)
    before = dict(net.params)
    h = xpnet.train(net, *data, iters=5, batch_size=50, compile=False)
    same = all(net.params[k] is before[k] for k in before)
    assert same == backend.mutable_arrays == backend.updates_in_place(False)
    assert not backend.updates_in_place(True)  # a traced step builds new arrays
    assert h.compiles == 0 and len(h.loss) == 5


def test_adam_update_with_a_traced_step_count_equals_the_counted_one():
    rng = np.random.default_rng(0)
    params = {"W1": rng.standard_normal((3, 4)), "b1": rng.standard_normal(4)}
    grads = {k: rng.standard_normal(v.shape) for k, v in params.items()}
    hyper = {"lr": 0.01, "beta1": 0.9, "beta2": 0.999}
    out = []
    for t in (7, np.asarray(7.0)):  # a number eagerly, a 0-d array under tracing
        p = {k: v.copy() for k, v in params.items()}
        state = {s: {k: np.full_like(v, 0.1) for k, v in params.items()} for s in "mv"}
        Adam().apply(p, grads, state, hyper, t, in_place=False, xp=np)
        out.append((p, state))
    for k in params:
        np.testing.assert_allclose(out[1][0][k], out[0][0][k], rtol=1e-15, atol=0)
        assert not np.allclose(out[0][0][k], params[k])


def test_compile_true_where_nothing_compiles_is_a_clear_error(data):
    b = xpnet.get_backend("numpy", dtype="float64")
    net, _ = _net("two", b)
    with pytest.raises(ValueError, match="backend 'numpy' on cpu cannot compile"):
        xpnet.train(net, *data, iters=2, compile=True)
    with pytest.raises(ValueError, match="compile must be True, False or 'auto', got 'yes'"):
        xpnet.train(net, *data, iters=2, compile="yes")
    with pytest.raises(ValueError, match="compile=True compiles the backprop step"):
        xpnet.train(net, *data, iters=2, gradient="numerical", compile=True)
    layered = xpnet.MultiLayerNetExtend(24, [8], 5, backend=b, seed=0)
    with pytest.raises(ValueError, match="MultiLayerNetExtend trains with its own step"):
        xpnet.train(layered, *data, iters=2, compile=True)
    # "auto" never refuses: these run eagerly
    assert xpnet.train(layered, *data, iters=2, compile="auto").compiles == 0
    assert xpnet.train(net, *data, iters=2, compile="auto").compiles == 0


def test_auto_compiles_only_where_it_was_measured_to_pay(backend):
    expected = backend.can_compile and backend.compile_pays
    assert compile_wanted("auto", backend) is expected
    assert compile_wanted(False, backend) is False
    # the measured rule (README, "Compiled steps"): JAX pays, torch on the CPU does not
    assert xpnet.backends.SPECS["jax"].compile_pays(None)
    assert not xpnet.backends.SPECS["torch"].compile_pays(None)


class _FakeCudaDevice:
    type = "cuda"


def test_torch_on_cuda_compiles_with_cuda_graphs_and_copies_what_it_returns(monkeypatch):
    torch = pytest.importorskip("torch")
    calls = []
    graph_out = torch.zeros(2)

    def fake_compile(fn, *, mode=None, dynamic=None):
        calls.append(("compile", mode, dynamic))
        return lambda *args: ({"W1": graph_out}, {"t": graph_out}, graph_out)

    monkeypatch.setattr(torch, "compile", fake_compile)
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin",
                        lambda: calls.append(("step",)))  # fmt: skip
    step = xpnet.backends.SPECS["torch"].compile_step(lambda *a: a, _FakeCudaDevice())
    params, state, loss = step({}, {}, None, None, {})
    assert calls == [("compile", "reduce-overhead", False), ("step",)]
    # the graph's output memory is replayed into: the caller holds copies
    assert loss is not graph_out and params["W1"] is not graph_out
    assert state["t"] is not graph_out and torch.equal(loss, graph_out)


def test_a_stepper_counts_no_compilation_when_eager():
    b = xpnet.get_backend("numpy", dtype="float64")
    net, _ = _net("two", b)
    stepper = Stepper(b, "sigmoid", xpnet.optimizers.SGD(0.1), scale=None)
    x = b.asarray(np.ones((4, 24)))
    t = b.asarray(np.eye(5)[[0, 1, 2, 3]])
    loss = stepper(net.params, x, t)
    assert np.isfinite(float(xpnet.to_numpy(loss)))
    assert (stepper.compiled, stepper.compiles, stepper.compile_seconds) == (False, 0, 0.0)


def test_stepper_counts_a_whole_set_as_the_net_does(backend, data):
    """The evaluations of a compiled run (JAX: each chunk's forward pass jitted, without
    consuming the parameters) count what the net's own correct_total counts, labels or
    one-hot, over chunks of 2048 rows and a last partial one."""
    rng = np.random.default_rng(0)
    x = backend.asarray(rng.integers(0, 256, (2100, 24), dtype=np.uint8))
    labels = rng.integers(0, 5, 2100)
    net = xpnet.TwoLayerNet(24, 16, 5, backend=backend, seed=3)
    stepper = Stepper(backend, net.activation, xpnet.optimizers.SGD(0.1), scale=1 / 255,
                      compile=backend.can_compile and backend.compile_pays)  # fmt: skip
    want = int(xpnet.to_numpy(net.correct_total(x, backend.asarray(labels), scale=1 / 255)))
    assert 0 < want < 2100
    for t in (labels, np.eye(5, dtype=np.float32)[labels]):
        got = stepper.correct_total(net.params, x, backend.asarray(t))
        assert int(xpnet.to_numpy(got)) == want
    before = {k: xpnet.to_numpy(v) for k, v in net.params.items()}
    stepper.correct_total(net.params, x, backend.asarray(labels))  # the params stay usable
    for k, v in before.items():
        np.testing.assert_array_equal(xpnet.to_numpy(net.params[k]), v)
    assert (stepper.compile_seconds > 0) == stepper.compiled
