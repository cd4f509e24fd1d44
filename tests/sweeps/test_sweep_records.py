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
