"""The held-out split, the validation score and early stopping in train()."""

from __future__ import annotations

import numpy as np
import pytest
from _data import blobs

import xpnet
from xpnet.validation import EarlyStopping, history_through, split_validation, validation_rows


def test_the_split_depends_only_on_rows_fraction_and_seed(backend):
    train_rows, val_rows = validation_rows(10, 0.3)
    assert len(val_rows) == 3 and sorted([*train_rows, *val_rows]) == list(range(10))
    assert np.all(np.diff(train_rows) > 0) and np.all(np.diff(val_rows) > 0)
    assert not np.array_equal(validation_rows(10, 0.3, seed=1)[1], val_rows)
    x, t = blobs(10, d=4)
    parts = split_validation(backend.asarray(x), backend.asarray(t), 0.3)
    np.testing.assert_array_equal(xpnet.to_numpy(parts[2]), x[val_rows])
    np.testing.assert_array_equal(xpnet.to_numpy(parts[1]), t[train_rows])


@pytest.mark.parametrize(("fraction", "patience", "message"), [
    (1.0, None, "validation must be a fraction of the training set between 0 and 1"),
    (0.01, None, "leaves 0 to validate on"),
    (None, 2, "give a validation fraction too"),
    (0.2, 0, "patience must be a positive integer"),
])  # fmt: skip
def test_bad_validation_or_patience_is_named(fraction, patience, message):
    x, t = blobs(20, d=4)
    net = xpnet.TwoLayerNet(4, 5, 10, backend="numpy")
    with pytest.raises(ValueError, match=message):
        xpnet.train(net, x, t, iters=2, batch_size=5, validation=fraction, patience=patience)


def test_early_stopping_counts_evaluations_without_a_better_score():
    es = EarlyStopping(2, patience=2)
    rows = np.array([0, 1])
    up, out = es.update(rows, [0.5, 0.5], [1.0, 1.0], 0)
    assert up.tolist() == [True, True] and not out.any()
    up, out = es.update(rows, [0.5, 0.4], [0.9, 0.8], 1)  # a lower loss breaks the tie
    assert up.tolist() == [True, False] and not out.any()
    up, out = es.update(rows, [0.5, 0.5], [0.9, np.nan], 2)  # a NaN loss never beats one
    assert up.tolist() == [False, False] and out.tolist() == [False, True]
    assert es.best_step.tolist() == [1, 0]


def test_train_hands_over_its_best_evaluation_and_resumes_from_it():
    x, t = blobs(400, d=32, noise=70)
    data = x[:300], t[:300], x[300:], t[300:]
    kw = {"iters": 60, "batch_size": 25, "eval_interval": 6, "lr": 0.3, "validation": 0.25}
    b = xpnet.get_backend("numpy", dtype="float64")
    net = xpnet.TwoLayerNet(32, 50, 10, backend=b, seed=0)
    h = xpnet.train(net, *data, patience=2, **kw)
    assert h.stopped_step is not None and h.best_step < h.stopped_step < 59
    assert h.test_acc == [] and len(h.val_acc) == len(h.eval_steps)
    # the net holds the best evaluation's parameters: those of a run that stops there
    short = xpnet.TwoLayerNet(32, 50, 10, backend=b, seed=0)
    hs = xpnet.train(short, *data, **{**kw, "iters": h.best_step + 1})
    for k, v in short.params.items():
        np.testing.assert_array_equal(net.params[k], v)
    assert h.final_test_acc == net.accuracy(data[2], data[3], scale=1 / 255)
    assert hs.val_acc[-1] == h.val_acc[h.eval_steps.index(h.best_step)]
    # resumed from that evaluation (history and state), it stops where it stopped
    again = xpnet.train(short, *data, patience=2, history=history_through(hs, h.best_step),
                        **kw)  # fmt: skip
    assert again.eval_steps == h.eval_steps and again.stopped_step == h.stopped_step
    assert again.loss == h.loss
