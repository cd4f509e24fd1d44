"""A finished sweep's best records, and their parameters as checkpoints that evaluate and
resume as their own train() runs would."""

from __future__ import annotations

import math

import numpy as np
from _sweep_runs import KW

import xpnet
from xpnet.sweeps import SweepRecord, grid, sweep
from xpnet.sweeps.ranking import final_scores, rank_records, save_record


def test_records_rank_on_validation_and_diverged_ones_last():
    def rec(val, loss, diverged=False, best=None):
        h = xpnet.TrainHistory(eval_steps=[0, 9], train_acc=[0.1, 0.9], val_acc=[0.2, val],
                               val_loss=[2.0, loss], best_step=best,
                               final_test_acc=0.5)  # fmt: skip
        return SweepRecord({}, h, diverged=diverged)

    records = [rec(0.6, 0.9), rec(0.8, 0.7), rec(0.9, 0.1, diverged=True), rec(0.8, 0.6),
               rec(0.3, 1.0, best=0)]  # fmt: skip
    assert rank_records(records) == [3, 1, 0, 4, 2]
    assert final_scores(records[4]) == {"val_acc": 0.2, "val_loss": 2.0, "train_acc": 0.1,
                                        "test_acc": 0.5}  # fmt: skip
    plain = SweepRecord({}, xpnet.TrainHistory(eval_steps=[0], train_acc=[0.4]))
    assert final_scores(plain)["val_acc"] is None and math.isnan(final_scores(plain)["test_acc"])


def test_a_saved_best_record_evaluates_and_resumes_as_its_own_run(data, tmp_path):
    b = xpnet.get_backend("numpy", dtype="float64")
    kw = {**KW, "validation": 0.25, "patience": 2}
    configs = grid(optimizer="momentum", lr=0.05, momentum=[0.5, 0.9], seed=3)
    records = sweep(configs, *data, backend=b, keep_params=True, **kw)
    best = records[rank_records(records)[0]]
    assert best.history.stopped_step is not None  # stopped early: the best state is earlier
    path = save_record(tmp_path / "best.npz", best, meta={"dataset": "blobs"})
    ckpt = xpnet.load_checkpoint(path)
    assert ckpt.meta["config"]["lr"] == best.config["lr"] and ckpt.meta["dataset"] == "blobs"
    net = ckpt.to_net(backend=b)
    assert net.accuracy(data[2], data[3], scale=1 / 255) == best.history.final_test_acc
    # resumed from the best evaluation, it retraces its steps and stops where it stopped
    history = xpnet.TrainHistory(**ckpt.meta["history"])
    assert history.eval_steps[-1] == best.history.best_step
    opt = xpnet.get_optimizer("momentum", lr=0.05, momentum=best.config["momentum"])
    opt.load_state_dict(ckpt.optimizer_state, net.params)
    again = xpnet.train(net, *data, optimizer=opt, history=history, seed=3, **kw)
    assert again.eval_steps == best.history.eval_steps
    assert again.stopped_step == best.history.stopped_step
    np.testing.assert_allclose(again.loss, best.history.loss, rtol=1e-12)
    for k, v in best.params.items():
        np.testing.assert_allclose(xpnet.to_numpy(net.params[k]), v, rtol=1e-12, atol=1e-15)
