"""The training loop: same results on every backend, no per-step host sync, divergence."""

from __future__ import annotations

import numpy as np
import pytest
from _data import blobs

import xpnet
from xpnet import TrainingDivergedError, TwoLayerNet, train
from xpnet import batches as batches_module
from xpnet import training as training_module
from xpnet.testing import tolerance


def _blobs(n, seed=0, d=64, classes=10):
    return blobs(n, seed=seed, d=d, classes=classes, noise=60, label_dtype=np.uint8)


@pytest.fixture(scope="module")
def data():
    x, t = _blobs(700)
    return x[:500], t[:500], x[500:], t[500:]


@pytest.fixture(scope="module")
def numpy_reference(data):
    net = TwoLayerNet(64, 16, 10, backend=xpnet.get_backend("numpy", dtype="float64"), seed=0)
    return train(net, *data, iters=150, batch_size=50, lr=1.0, seed=7)


def test_same_results_on_every_backend(backend, data, numpy_reference):
    net = TwoLayerNet(64, 16, 10, backend=backend, seed=0)
    h = train(net, *data, iters=150, batch_size=50, lr=1.0, seed=7)
    ref = numpy_reference
    assert h.eval_steps == ref.eval_steps == [*range(0, 150, 10), 149]
    rtol, atol = tolerance("float64", training=True)
    np.testing.assert_allclose(h.loss, ref.loss, rtol=rtol, atol=atol)
    # Accuracies may differ by a tie in argmax; allow one sample of 500 / 200.
    np.testing.assert_allclose(h.train_acc, ref.train_acc, atol=1 / 500 + 1e-12)
    np.testing.assert_allclose(h.test_acc, ref.test_acc, atol=1 / 200 + 1e-12)
    assert ref.test_acc[-1] > 0.9 and ref.loss[-1] < 0.3 * ref.loss[0]


def test_seed_fixes_the_batches(data):
    runs = []
    for seed in (1, 1, 2):
        net = TwoLayerNet(64, 16, 10, backend="numpy", seed=0)
        runs.append(train(net, *data, iters=30, batch_size=20, lr=0.1, seed=seed).loss)
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_losses_are_read_back_once_per_evaluation(data, monkeypatch):
    reads = []
    real = training_module._host
    monkeypatch.setattr(training_module, "_host", lambda x: reads.append(1) or real(x))
    net = TwoLayerNet(64, 16, 10, backend="numpy", seed=0)
    h = train(net, *data, iters=100, batch_size=50, lr=0.1, eval_interval=25)
    assert len(h.loss) == 100 and h.eval_steps == [0, 25, 50, 75, 99]
    # per evaluation: losses, train accuracy, test accuracy (the last follows the last step)
    assert len(reads) == 5 * 3


def test_divergence_names_the_first_bad_step(data):
    net = TwoLayerNet(64, 16, 10, backend=xpnet.get_backend("numpy", dtype="float32"), seed=0)
    seen = []
    with np.errstate(all="ignore"), pytest.raises(TrainingDivergedError) as info:
        train(net, *data[:2], iters=50, batch_size=50, lr=1e37, eval_interval=20,
              on_epoch=lambda h: seen.append(list(h.loss)))  # fmt: skip
    message = str(info.value)
    step = int(message.split("at step ")[1].split(";")[0])
    assert message.startswith(("loss became nan", "loss became inf"))
    assert "try a smaller lr" in message
    assert seen and all(np.isfinite(seen[-1])) and len(seen[-1]) <= step < 50


def test_numerical_gradient_training_matches_backprop(data):
    b = xpnet.get_backend("numpy", dtype="float64")
    x, t = data[0][:100], data[1][:100]
    h1 = train(TwoLayerNet(64, 8, 10, backend=b, seed=0), x, t, iters=5, batch_size=10, seed=3)
    h2 = train(TwoLayerNet(64, 8, 10, backend=b, seed=0), x, t, iters=5, batch_size=10,
               seed=3, gradient="numerical")  # fmt: skip
    np.testing.assert_allclose(h2.loss, h1.loss, rtol=1e-8)


def test_numerical_gradient_in_float32_warns_once(data):
    net = TwoLayerNet(64, 8, 10, backend=xpnet.get_backend("numpy", dtype="float32"), seed=0)
    with pytest.warns(xpnet.PrecisionWarning) as record:
        train(net, data[0][:50], data[1][:50], iters=3, batch_size=10, gradient="numerical")
    assert len(record) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"iters": 0}, "iters must be a positive integer"),
        ({"batch_size": -1}, "batch_size must be a positive integer"),
        ({"lr": float("nan")}, "lr must be a positive finite number"),
        ({"gradient": "autograd"}, r"gradient must be one of \('backprop', 'numerical'\)"),
    ],
)
def test_bad_arguments(data, kwargs, message):
    net = TwoLayerNet(64, 8, 10, backend="numpy", seed=0)
    with pytest.raises(ValueError, match=message):
        train(net, data[0], data[1], **kwargs)


def test_integer_one_hot_targets_train_like_labels(backend32, data):
    x, labels = data[0][:200], data[1][:200]
    runs = []
    for t in (labels, np.eye(10, dtype=np.int64)[labels]):
        net = TwoLayerNet(64, 8, 10, backend=backend32, seed=0)
        runs.append(train(net, x, t, iters=20, batch_size=20, lr=0.5, seed=1).loss)
        assert net.params["W1"].dtype == backend32.xp.float32
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-6)


@pytest.mark.parametrize("bad", [np.array([0, 10]), np.array([-1, 3])])
def test_labels_out_of_range_are_rejected(bad):
    net = TwoLayerNet(4, 3, 10, backend="numpy", seed=0)
    with pytest.raises(ValueError, match=r"t_train has labels from -?\d+ to \d+, .* 0\.\.9"):
        train(net, np.ones((2, 4)), bad, iters=1, batch_size=1)


def test_eval_interval_must_be_positive(data):
    net = TwoLayerNet(64, 8, 10, backend="numpy", seed=0)
    with pytest.raises(ValueError, match="eval_interval must be a positive integer, got 0"):
        train(net, data[0], data[1], iters=2, eval_interval=0)


def test_jax_default_int32_trains_without_warnings(tmp_path):
    """JAX without x64: accuracy counts use the default integer dtype, no int64 request."""
    pytest.importorskip("jax")
    code = (
        "import warnings, numpy as np, xpnet; warnings.simplefilter('error'); "
        "b = xpnet.get_backend('jax', 'cpu', 'float32'); "
        "net = xpnet.TwoLayerNet(6, 4, 3, backend=b, seed=0); "
        "x = np.random.default_rng(0).random((30, 6)); t = np.arange(30) % 3; "
        "h = xpnet.train(net, x, t, x, t, iters=6, batch_size=5, eval_interval=3); "
        "print(len(h.loss), h.eval_steps)"
    )
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "6 [0, 3, 5]"


def test_final_accuracies_are_of_the_final_parameters(data):
    net = TwoLayerNet(64, 16, 10, backend="numpy", seed=0)
    h = train(net, *data, iters=37, batch_size=50, lr=1.0, eval_interval=10)
    assert h.eval_steps == [0, 10, 20, 30, 36]
    assert h.train_acc[-1] == net.accuracy(data[0], data[1], scale=1 / 255)
    assert h.test_acc[-1] == net.accuracy(data[2], data[3], scale=1 / 255)


def test_runaway_loss_is_reported_once_and_training_goes_on(data):
    net = TwoLayerNet(64, 16, 10, backend="numpy", seed=0)
    with np.errstate(all="ignore"), pytest.warns(xpnet.DivergenceWarning, match="lr") as rec:
        h = train(net, *data, iters=60, batch_size=50, lr=100.0, eval_interval=10)
    assert len(rec) == 1 and h.diverged and len(h.loss) == 60
    assert np.mean(h.loss[1:]) > training_module.RUNAWAY_FACTOR * h.loss[0]
    ok = train(TwoLayerNet(64, 16, 10, backend="numpy", seed=0), *data, iters=60, batch_size=50)
    assert not ok.diverged


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_resumed_run_equals_an_uninterrupted_one(data, name):
    b = xpnet.get_backend("numpy", dtype="float64")
    kw = {"iters": 45, "batch_size": 30, "eval_interval": 10, "seed": 5}
    whole_net = xpnet.MultiLayerNet(64, [12, 8], 10, backend=b, seed=1)
    whole = train(whole_net, *data, optimizer=xpnet.get_optimizer(name, lr=0.05), **kw)

    net = xpnet.MultiLayerNet(64, [12, 8], 10, backend=b, seed=1)
    opt = xpnet.get_optimizer(name, lr=0.05)
    part = train(net, *data, optimizer=opt, **{**kw, "iters": 23})
    # what a checkpoint holds: params, optimizer state, history (a fresh copy of each)
    params = {k: np.array(v) for k, v in net.params.items()}
    state = opt.state_dict()
    net2 = xpnet.MultiLayerNet(64, [12, 8], 10, backend=b, seed=99)
    net2.params = {k: b.asarray(v) for k, v in params.items()}
    opt2 = xpnet.get_optimizer(name, lr=1.0)
    opt2.load_state_dict(state, net2.params)
    rest = train(net2, *data, optimizer=opt2, history=part, **kw)
    assert rest.loss == whole.loss
    # the first part's last evaluation (after step 22) stays in the history
    assert rest.eval_steps == [0, 10, 20, 22, 30, 40, 44] and whole.eval_steps == [
        0,
        10,
        20,
        30,
        40,
        44,
    ]
    assert rest.test_acc[:3] + rest.test_acc[4:] == whole.test_acc
    for k in params:
        np.testing.assert_array_equal(net2.params[k], whole_net.params[k])


def test_any_optimizer_trains_the_chapter_net_on_every_backend(backend, data):
    net = TwoLayerNet(64, 16, 10, backend=backend, seed=0)
    h = train(net, *data, iters=60, batch_size=50, optimizer=xpnet.Adam(lr=0.01), seed=2)
    ref_net = TwoLayerNet(64, 16, 10, backend="numpy", dtype="float64", seed=0)
    ref = train(ref_net, *data, iters=60, batch_size=50, optimizer=xpnet.Adam(lr=0.01), seed=2)
    rtol, atol = tolerance("float64", training=True)
    np.testing.assert_allclose(h.loss, ref.loss, rtol=rtol, atol=atol)
    assert h.test_acc[-1] > 0.9


def test_array_operations_per_training_step_on_torch():
    """Each torch operation that computes (makes a new tensor, or writes one in place) is a
    kernel launch on a GPU. The chapter's step makes 33 (29 with relu: its zero is a cached
    0-d array, made before the first count); the batches are gathered once per block of
    steps, 9 more operations per block."""
    torch = pytest.importorskip("torch")
    from torch.overrides import TorchFunctionMode

    def storages(obj):
        if isinstance(obj, torch.Tensor):
            yield obj.untyped_storage().data_ptr()
        elif isinstance(obj, list | tuple):
            for o in obj:
                yield from storages(o)

    class Count(TorchFunctionMode):
        calls = 0

        def __torch_function__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            name = getattr(func, "__qualname__", getattr(func, "__name__", ""))
            seen = set(storages(args)) | set(storages(list((kwargs or {}).values())))
            in_place = name.endswith("_") and not name.endswith("__")
            # views and no-op conversions share their input's storage
            Count.calls += in_place or any(p not in seen for p in storages(out))
            return out

    b = xpnet.get_backend("torch", "cpu", "float32")
    x, t = _blobs(400, d=784)
    block = batches_module.steps_per_block(x, np.eye(10, dtype=np.float32), 100, np.float32)
    assert block == 26  # uint8 pixels, float32 batches: (784 * (4 + 1) + 10 * 4) * 100 bytes

    def calls(iters, activation):
        Count.calls = 0
        net = xpnet.MultiLayerNet(784, [50], 10, activation=activation, backend=b, seed=0)
        with Count():
            train(net, x, t, iters=iters, batch_size=100, eval_interval=10**6)
        return Count.calls

    for activation, expected in (("sigmoid", 33), ("relu", 29)):
        calls(1, activation)  # the cached 0-d constants are made here, once per process
        per_step = calls(4, activation) - calls(3, activation)  # one block: no gather
        per_block = calls(3 + block, activation) - calls(3, activation) - block * per_step
        assert (per_step, per_block) == (expected, 9), (activation, per_step, per_block)


@pytest.mark.parametrize("shape", [(7,), (3, 7)])
def test_batch_blocks_yield_each_steps_rows_in_order(backend, shape):
    """Gathered in blocks (here 2 steps' worth of bytes, so 5 steps make blocks of 2, 2, 1)
    or not, every step gets exactly its rows, cast to the float dtype."""
    xp = backend.xp
    x_host = np.arange(40 * 3, dtype=np.uint8).reshape(40, 3)
    t_host = np.eye(4)[np.arange(40) % 4]
    rows = np.random.default_rng(0).integers(0, 40, size=(5, *shape))
    x, t = backend.asarray(x_host), backend.asarray(t_host, dtype=backend.float_dtype)
    per_step = int(np.prod(shape)) * (3 + 4) * xp.finfo(backend.float_dtype).bits // 8
    for max_bytes in (2 * per_step, 10**9):
        got = list(
            batches_module.batch_blocks(
                x, t, backend.asarray(rows), backend.float_dtype, max_bytes=max_bytes
            )
        )
        assert len(got) == 5
        for step, (xb, tb) in enumerate(got):
            assert xb.dtype == backend.float_dtype
            np.testing.assert_array_equal(xpnet.to_numpy(xb), x_host[rows[step]])
            np.testing.assert_array_equal(xpnet.to_numpy(tb), t_host[rows[step]])


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_no_tensor_is_built_from_a_python_scalar_inside_training(activation, optimizer):
    """A tensor made from a Python number is a host-to-device copy and a stream sync on a
    GPU: the loop's steps and evaluations build none (their constants are cached 0-d
    arrays, made by a first run)."""
    pytest.importorskip("torch")
    from _torch_count import scalar_tensors

    b = xpnet.get_backend("torch", "cpu", "float32")
    x, t = _blobs(300, d=20)

    def run():
        net = xpnet.MultiLayerNet(20, [8, 8], 10, activation=activation, backend=b, seed=0)
        opt = xpnet.optimizers.get_optimizer(optimizer, lr=0.1)
        return train(net, x[:200], t[:200], x[200:], t[200:], iters=6, batch_size=20,
                     eval_interval=3, optimizer=opt)  # fmt: skip

    run()
    with scalar_tensors() as built:
        h = run()
    assert built == [] and len(h.loss) == 6 and h.eval_steps == [0, 3, 5]


@pytest.mark.parametrize("name", ["numpy", "torch"])
@pytest.mark.parametrize("optimizer", [None, "adam"])
def test_warm_up_changes_no_number(name, optimizer, monkeypatch):
    """The untimed first step and evaluation chunk of compiling backends, forced on a CPU
    backend: the same losses, accuracies, parameters and optimizer state as without it,
    and its seconds recorded apart from the loop's."""
    from xpnet.backends._registry import SPECS

    if name == "torch":
        pytest.importorskip("torch")
    b = xpnet.get_backend(name, "cpu", "float64")
    x, t = _blobs(300, d=20)

    def run(warm):
        monkeypatch.setattr(SPECS[name], "warms_up", lambda dev: warm)
        net = xpnet.MultiLayerNet(20, [8], 10, activation="relu", backend=b, seed=0)
        opt = None if optimizer is None else xpnet.get_optimizer(optimizer, lr=0.01)
        h = train(net, x[:200], t[:200], x[200:], t[200:], iters=12, batch_size=20,
                  eval_interval=5, optimizer=opt, lr=0.3)  # fmt: skip
        state = {} if opt is None else opt.state_dict()
        return h, {k: b.to_numpy(v) for k, v in net.params.items()}, state

    (h0, p0, s0), (h1, p1, s1) = run(False), run(True)
    assert h0.warmup_seconds == 0 and h1.warmup_seconds > 0
    assert h1.as_dict()["warmup_seconds"] == h1.warmup_seconds
    assert (h1.loss, h1.train_acc, h1.test_acc) == (h0.loss, h0.train_acc, h0.test_acc)
    for k in p0:
        np.testing.assert_array_equal(p1[k], p0[k])
    assert s1.keys() == s0.keys()
    for k in s0:
        np.testing.assert_array_equal(s1[k], s0[k])


@pytest.mark.gpu
@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_torch_cuda_steps_never_wait_for_the_gpu(activation):
    """Steps of train() and of a stacked sweep under torch's sync debug mode "error": any
    host sync inside them (a tensor made from a Python number, a read-back) raises."""
    torch = pytest.importorskip("torch")
    try:
        b = xpnet.get_backend("torch", "cuda", "float32")
    except xpnet.BackendError as exc:
        pytest.skip(str(exc))
    from xpnet import sweeps

    x, t = _blobs(400, d=64)
    net = xpnet.MultiLayerNet(64, [32, 16], 10, activation=activation, backend=b, seed=0)
    x_dev, t_dev = b.asarray(x), b.asarray(t)
    t_hot = xpnet._array.one_hot(t_dev, 10, net.dtype, b.xp)
    rows = b.asarray(np.random.default_rng(0).integers(0, 400, size=(4, 50)))
    batches = list(batches_module.batch_blocks(x_dev, t_hot, rows, net.dtype))
    dev = sweeps.device_data(x[:300], t[:300], x[300:], t[300:], backend=b)
    configs = [{"lr": lr, "activation": activation, "hidden_sizes": [32, 16],
                "optimizer": "adam"} for lr in (1e-3, 3e-3)]  # fmt: skip
    group = sweeps.StackedGroup(configs, dev, iters=4, batch_size=50)
    adam = xpnet.get_optimizer("adam", lr=1e-3)

    def steps():
        for xb, tb in batches:
            loss, st = net.loss_and_gradient(xb, tb, scale=1 / 255, step=0.1)
            for k, g in st.items():
                net.params[k] -= g
            _, grads = net.loss_and_gradient(xb, tb, scale=1 / 255)
            adam.update(net.params, grads)
            group.step(xb, tb)
        return loss

    steps()  # the cached constants and optimizer state are made here
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        loss = steps()
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert np.isfinite(float(loss)) and len(group.pending) == 8


def test_eval_sample_scores_the_first_rows(data, backend):
    """The book's evaluate_sample_num_per_epoch: accuracies of the first N train and test
    rows at each evaluation; 0 or a fraction is refused."""
    x, t, xt, tt = data
    net = TwoLayerNet(64, 10, 10, backend=backend, seed=0)
    h = train(net, x, t, xt, tt, iters=5, batch_size=50, eval_interval=5, eval_sample=40)
    assert h.eval_steps == [0, 4]
    assert h.train_acc[-1] == net.accuracy(x[:40], t[:40], scale=h.input_scale)
    assert h.test_acc[-1] == net.accuracy(xt[:40], tt[:40], scale=h.input_scale)
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="eval_sample must be a positive integer"):
            train(net, x, t, iters=1, eval_sample=bad)


def test_validation_of_a_layer_net(backend):
    """A net of the book's layers scores its own validation rows: accuracy and mean loss
    equal its accuracy and test-mode loss on the held-out rows."""
    x, t = _blobs(200, d=16)
    net = xpnet.MultiLayerNetExtend(16, [8], 10, use_batchnorm=True, backend=backend, seed=0)
    h = train(net, x, t, iters=6, batch_size=20, eval_interval=3, validation=0.25)
    xv, tv = xpnet.validation.split_validation(x, t, 0.25)[2:]
    assert h.val_acc[-1] == net.accuracy(xv, tv, scale=h.input_scale)
    loss = backend.to_numpy(net.loss(xv * h.input_scale, tv, train_flg=False))
    assert h.val_loss[-1] == pytest.approx(float(loss), rel=tolerance(backend.dtype_name)[0])


def test_warm_up_leaves_dropout_and_running_stats_as_they_were(monkeypatch):
    """A forced warm-up on a net with dropout and batch norm: the same losses as without
    (its step drew no dropout mask the run draws, moved no running statistic)."""
    from xpnet.backends._registry import SPECS

    b = xpnet.get_backend("numpy", "cpu", "float64")
    x, t = _blobs(200, d=16)

    def run(warm):
        monkeypatch.setattr(SPECS["numpy"], "warms_up", lambda dev: warm)
        net = xpnet.MultiLayerNetExtend(16, [8, 8], 10, use_batchnorm=True, use_dropout=True,
                                        backend=b, seed=0)  # fmt: skip
        h = train(net, x[:150], t[:150], x[150:], t[150:], iters=8, batch_size=10,
                  eval_interval=4)  # fmt: skip
        return h, b.to_numpy(net.predict(x[150:] / 255.0))

    (h0, p0), (h1, p1) = run(False), run(True)
    assert h1.warmup_seconds > 0 and h1.loss == h0.loss and h1.test_acc == h0.test_acc
    np.testing.assert_array_equal(p1, p0)
