"""A stack trains every member as its own train() run would; divergence stays isolated."""

from __future__ import annotations

import numpy as np
import pytest
from _sweep_runs import CONFIGS, EARLY_KW, KW, alone, alone_run
from array_api_compat import is_numpy_array

import xpnet
from xpnet import sweeps as sweep_module
from xpnet.sweeps import grid, sweep
from xpnet.testing import tolerance
from xpnet.validation import split_validation


def test_every_member_equals_its_own_train_run(backend, data):
    records = sweep(CONFIGS, *data, backend=backend, **KW)
    assert len(records) == len(CONFIGS)
    rtol = 1e-9
    for config, rec in zip(CONFIGS, records, strict=True):
        ref = alone(config, data, backend)
        assert rec.config == sweep_module.normalize(config) and not rec.diverged
        assert rec.history.eval_steps == ref.eval_steps == [0, 12, 24, 36, 39]
        assert rec.history.train_acc == ref.train_acc
        assert rec.history.test_acc == ref.test_acc
        np.testing.assert_allclose(rec.history.loss, ref.loss, rtol=rtol, atol=0)


def test_early_stopping_members_equal_their_own_train_runs(backend, data):
    records = sweep(CONFIGS, *data, backend=backend, keep_params=True, **KW, **EARLY_KW)
    stops = []
    for config, rec in zip(CONFIGS, records, strict=True):
        ref, params, state = alone_run(config, data, backend, **EARLY_KW)
        h = rec.history
        assert h.eval_steps == ref.eval_steps and h.train_acc == ref.train_acc
        assert h.val_acc == ref.val_acc and h.test_acc == ref.test_acc == []
        assert (h.best_step, h.stopped_step) == (ref.best_step, ref.stopped_step)
        assert h.final_test_acc == ref.final_test_acc is not None
        np.testing.assert_allclose(h.val_loss, ref.val_loss, rtol=1e-9, atol=0)
        np.testing.assert_allclose(h.loss, ref.loss, rtol=1e-9, atol=0)
        # the parameters and optimizer state its own run ends with: the best evaluation's
        assert rec.params.keys() == params.keys() and rec.optimizer_state.keys() == state.keys()
        for k, v in params.items():
            np.testing.assert_allclose(rec.params[k], v, rtol=1e-9, atol=1e-15)
        for k, v in state.items():
            np.testing.assert_allclose(rec.optimizer_state[k], v, rtol=1e-9, atol=1e-15)
        stops.append(h.stopped_step)
    # the test means something: members stop at different evaluations, one runs to the end
    assert stops == [36, 36, 24, 24, 36, 24, 24, 24, None, None, None, None, 24, 24]


def test_kept_parameters_are_the_final_ones_without_patience(data):
    b = xpnet.get_backend("numpy", dtype="float64")
    configs = grid(optimizer="momentum", lr=[0.05, 0.1], momentum=0.9)
    records = sweep(configs, *data, backend=b, keep_params=True, **KW)
    for config, rec in zip(configs, records, strict=True):
        _, params, state = alone_run(config, data, b)
        assert rec.params["W1"].shape == (32, 50) and rec.params["b1"].shape == (50,)
        for k, v in params.items():
            np.testing.assert_allclose(rec.params[k], v, rtol=1e-12, atol=1e-15)
        assert int(rec.optimizer_state["iter"]) == int(state["iter"]) == 40
        np.testing.assert_allclose(rec.optimizer_state["v.W2"], state["v.W2"], rtol=1e-12)
    assert sweep(configs, *data, backend=b, **KW)[0].params is None  # only on request


def test_float32_members_agree_within_the_training_tolerance(backend32, data):
    configs = grid(lr=[0.3, 1.0], seed=[0, 1])
    records = sweep(configs, *data, backend=backend32, **KW)
    rtol, atol = tolerance("float32", training=True)
    for config, rec in zip(configs, records, strict=True):
        ref = alone(config, data, backend32)
        np.testing.assert_allclose(rec.history.loss, ref.loss, rtol=rtol, atol=atol)
        np.testing.assert_allclose(rec.history.test_acc, ref.test_acc, atol=2 / 100)


def test_a_diverging_member_is_frozen_and_the_others_are_unchanged(data):
    b = xpnet.get_backend("numpy", dtype="float64")
    lrs = [0.1, 0.2, 0.3, 1e6, 0.5, 0.7, 1.0, 1.5]
    records = sweep(grid(lr=lrs), *data, backend=b, **KW)
    for lr, rec in zip(lrs, records, strict=True):
        if lr == 1e6:
            assert rec.diverged and rec.history.diverged
            assert rec.history.eval_steps[-1] < 39  # frozen where it was seen
            continue
        ref = alone({"lr": lr}, data, b)
        assert not rec.diverged
        assert rec.history.loss == pytest.approx(ref.loss, rel=1e-12)
        assert rec.history.test_acc == ref.test_acc


def _group(configs, data, **kw):
    b = xpnet.get_backend("numpy", dtype="float64")
    dev = sweep_module.device_data(*data, backend=b)
    group = sweep_module.StackedGroup(configs, dev, **{**KW, **kw})
    xb = np.asarray(dev.x[:25], dtype=np.float64)
    return group, xb, dev.t_hot[:25]


def test_a_frozen_row_keeps_its_parameters_while_the_others_step(data):
    group, xb, tb = _group(grid(lr=[0.3, 1.0, 0.5]), data)
    before = {n: np.array(v) for n, v in group.params.items()}
    group.freeze([1])
    group.step(xb, tb)
    for n, v in group.params.items():
        np.testing.assert_array_equal(v[1], before[n][1])
        assert not np.array_equal(v[0], before[n][0]) and not np.array_equal(v[2], before[n][2])
    assert [r.diverged for r in group.records] == [False, True, False]
    assert group.alive.tolist() == [True, False, True] and len(group.pending) == 1


def test_cut_keeps_the_chosen_rows_with_their_optimizer_state(data):
    group, xb, tb = _group(grid(optimizer="adam", lr=[0.01, 0.003, 0.001]), data)
    group.step(xb, tb)
    params = {n: np.array(v) for n, v in group.params.items()}
    state = {
        s: {n: np.array(v) for n, v in slot.items()} for s, slot in group.optimizer.state.items()
    }
    assert set(state) == {"m", "v"} and all(len(slot) == 4 for slot in state.values())
    group.cut([0, 2], step=12)
    assert group.members == [0, 2] and [r.stopped_at for r in group.records] == [None, 12, None]
    for n, v in group.params.items():
        np.testing.assert_array_equal(v, params[n][[0, 2]])
    for s, slot in group.optimizer.state.items():
        for n, v in slot.items():
            np.testing.assert_array_equal(v, state[s][n][[0, 2]])
    np.testing.assert_array_equal(np.ravel(group.optimizer.hyper["lr"]), [0.01, 0.001])
    group.cut([0, 2], step=24)  # every row kept: nothing to cut
    assert group.members == [0, 2] and group.records[2].stopped_at is None


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_no_tensor_is_built_from_a_python_scalar_inside_a_stacked_step(data, activation):
    """As for train(): a stack's steps and evaluations build no tensor from a number, also
    with per-member hyperparameters, weight decay and a frozen member."""
    pytest.importorskip("torch")
    from _torch_count import scalar_tensors

    b = xpnet.get_backend("torch", "cpu", "float64")
    dev = sweep_module.device_data(*data, backend=b)
    configs = [{"lr": lr, "activation": activation, "weight_decay": 1e-3, "hidden_sizes": [8, 8],
                "optimizer": "momentum"} for lr in (0.1, 0.2, 0.3)]  # fmt: skip

    def run():
        group = sweep_module.StackedGroup(configs, dev, iters=6, batch_size=20, eval_interval=3)
        group.freeze([1])
        return group.train()

    run()
    with scalar_tensors() as built:
        records = run()
    assert built == [] and [r.history.eval_steps for r in records] == [[0, 3, 5], [], [0, 3, 5]]
    # validation, early stopping and handing the parameters over build none either
    x, t, x_val, t_val = split_validation(data[0], data[1], 0.25)
    held = sweep_module.device_data(x, t, data[2], data[3], backend=b, x_val=x_val, t_val=t_val)

    def run_held():
        group = sweep_module.StackedGroup(configs, held, iters=9, batch_size=20, eval_interval=1,
                                          patience=1, keep_params=True)  # fmt: skip
        return group.train()

    run_held()
    with scalar_tensors() as built:
        records = run_held()
    assert built == [] and all(r.history.stopped_step is not None for r in records)


@pytest.mark.skip_backends(
    "jax", "array_api_strict:device1", reason="XLA arrays have no strides; one strict device"
)
def test_contiguous_stacked_weights_give_the_same_records(backend, data, monkeypatch):
    """The layout CuPy stores layers 2.. in (C-contiguous), forced on a CPU backend: the
    same losses and accuracies as the default layout, shared-batch and per-seed stacks,
    and parking on the host and cutting the stack keep each layout."""
    from xpnet.backends._registry import SPECS

    configs = grid(lr=[0.3, 1.0], seed=[0, 1], hidden_sizes=[[8, 6]], optimizer=["momentum"])

    def run(contiguous):
        monkeypatch.setattr(SPECS[backend.name], "contiguous_stacked_weights", contiguous)
        dev = sweep_module.device_data(*data, backend=backend)
        group = sweep_module.StackedGroup(configs, dev, **KW)
        layouts = _layouts(group.params, backend)
        group.train_to(12)
        group.park()  # to the host and back, as between halving rungs
        group.cut([0, 3], 12)
        records = group.train()
        return records, layouts, _layouts(group.params, backend)

    plain, contiguous = run(False), run(True)
    assert plain[1] == plain[2] == {"W1": False, "W2": False, "W3": False}
    assert contiguous[1] == contiguous[2] == {"W1": False, "W2": True, "W3": True}
    for a, b in zip(plain[0], contiguous[0], strict=True):
        assert a.stopped_at == b.stopped_at
        assert a.history.loss == b.history.loss
        assert a.history.train_acc == b.history.train_acc


def _layouts(params, backend):
    """Per weight: C-contiguous (True) or model axis second (False), from the strides."""
    out = {}
    for name, w in params.items():
        if name[0] == "W":
            host = w if is_numpy_array(w) else np.asarray(backend.to_numpy(w))
            strides = _strides(w, host)
            out[name] = strides[0] > strides[1]
    return out


def _strides(w, host):
    stride = getattr(w, "stride", None)  # torch: element strides
    if callable(stride):
        return stride()
    return getattr(w, "strides", host.strides)
