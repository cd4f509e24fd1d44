"""TensorBoard runs of a sweep, read back with TensorBoard's own event reader."""

from __future__ import annotations

import warnings

import pytest
from _sweep_runs import KW

pytest.importorskip("tensorboardX")
with warnings.catch_warnings():  # the reader's dependencies may warn at import
    warnings.simplefilter("ignore")
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator"
    )
    from tensorboard.plugins.hparams import plugin_data_pb2

import xpnet  # noqa: E402
from xpnet.sweeps import grid, sweep  # noqa: E402
from xpnet.sweeps.logs import TensorBoardLog  # noqa: E402


def _read(path):
    acc = event_accumulator.EventAccumulator(str(path), size_guidance={"scalars": 0})
    acc.Reload()
    return acc


def test_every_config_is_a_run_with_its_curves_and_hparams(data, tmp_path):
    b = xpnet.get_backend("numpy", dtype="float64")
    log = TensorBoardLog(tmp_path, name=lambda i, r: f"lr={r.config['lr']}")
    records = sweep(grid(lr=[0.3, 1.0]), *data, backend=b, on_result=log, validation=0.25,
                    **KW)  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lr=0.3", "lr=1.0"]
    for rec in records:
        run = _read(tmp_path / f"lr={rec.config['lr']}")
        tags = set(run.Tags()["scalars"])
        assert {"loss/step", "accuracy/train", "accuracy/val", "loss/val",
                "accuracy/test_final", "hparam/val_acc", "hparam/test_acc"} <= tags  # fmt: skip
        assert "accuracy/test" not in tags  # with a validation set, the test set once
        loss = run.Scalars("loss/step")
        assert [e.step for e in loss] == list(range(40))
        assert [e.value for e in loss] == pytest.approx(rec.history.loss, rel=1e-6)
        val = run.Scalars("accuracy/val")
        assert [e.step for e in val] == rec.history.eval_steps
        assert [e.value for e in val] == pytest.approx(rec.history.val_acc, rel=1e-6)
        [final] = run.Scalars("accuracy/test_final")
        assert final.value == pytest.approx(rec.history.final_test_acc, rel=1e-6)
        start = run.PluginTagToContent("hparams")["_hparams_/session_start_info"]
        info = plugin_data_pb2.HParamsPluginData.FromString(start).session_start_info
        assert info.hparams["lr"].number_value == rec.config["lr"]
        assert info.hparams["optimizer"].string_value == "sgd"


def test_a_missing_tensorboardx_names_the_extra(monkeypatch, tmp_path):
    import builtins

    real = builtins.__import__

    def no_tbx(name, *a, **k):
        if name.startswith("tensorboardX"):
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_tbx)
    with pytest.raises(ImportError, match=r"pip install 'xpnet\[tensorboard\]'"):
        TensorBoardLog(tmp_path)
