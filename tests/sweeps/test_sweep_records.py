"""Sweep records round-trip through plain dicts, old lines included."""

from __future__ import annotations

import xpnet
from xpnet import sweeps as sweep_module


def test_stopped_at_round_trips_and_old_records_load():
    rec = sweep_module.SweepRecord({"lr": 0.1}, xpnet.TrainHistory(loss=[2.3]), stopped_at=600)
    again = sweep_module.SweepRecord.from_dict(rec.as_dict())
    assert again == rec and again.stopped_at == 600
    old = {"config": {"lr": 0.1}, "history": {"loss": [1.0]}, "diverged": False}
    assert sweep_module.SweepRecord.from_dict(old).stopped_at is None


def test_validation_fields_round_trip_and_lines_without_them_load():
    h = xpnet.TrainHistory(loss=[2.3, 2.0], eval_steps=[0, 1], train_acc=[0.1, 0.2],
                           val_acc=[0.1, 0.3], val_loss=[2.2, 2.1], best_step=1,
                           final_test_acc=0.25)  # fmt: skip
    rec = sweep_module.SweepRecord({"lr": 0.1}, h, params={"W1": [[1.0]]})
    d = rec.as_dict()
    assert "params" not in d  # the arrays stay out of results.jsonl
    again = sweep_module.SweepRecord.from_dict(d)
    assert again.history == h and again.params is None
    old = {"config": {"lr": 0.1}, "history": {"loss": [1.0], "eval_steps": [0],
           "train_acc": [0.1], "test_acc": [0.1]}, "diverged": False}  # fmt: skip
    hist = sweep_module.SweepRecord.from_dict(old).history
    assert hist.val_acc == hist.val_loss == [] and hist.final_test_acc is None
