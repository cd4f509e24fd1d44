"""The sweep driver: output size and labels checked before any group trains."""

from __future__ import annotations

import pytest
from _sweep_runs import blobs_for_sweeps

import xpnet
from xpnet.sweeps import sweep


def test_output_size_follows_the_labels_and_labels_are_checked():
    x, t = blobs_for_sweeps(120, classes=3)
    rec = sweep([{"lr": 0.5}], x, t, iters=5, batch_size=20, backend="numpy", dtype="float64")[0]
    ref = xpnet.train(xpnet.TwoLayerNet(32, 50, 3, backend="numpy", dtype="float64", seed=0),
                      x, t, iters=5, batch_size=20, lr=0.5, seed=0)  # fmt: skip
    assert rec.history.loss == pytest.approx(ref.loss, rel=1e-12)
    with pytest.raises(ValueError, match="t_train has labels from -1"):
        sweep([{}], x, t - 1, iters=2, batch_size=20, backend="numpy", output_size=3)
    with pytest.raises(ValueError, match="eval_interval must be a positive integer, got 0"):
        sweep([{}], x, t, iters=2, batch_size=20, backend="numpy", eval_interval=0)
