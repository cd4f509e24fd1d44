"""Sweep results as TensorBoard runs: one run (an event-file folder) per config.

Written with ``tensorboardX`` (``pip install 'xpnet[tensorboard]'``) as each config
finishes, so ``tensorboard --logdir DIR`` shows a sweep while it runs. Each run holds:

- ``loss/step``: every step's mini-batch loss;
- ``accuracy/train``, ``accuracy/val``, ``loss/val``, ``accuracy/test`` at each evaluation
  (what the history has), and ``accuracy/test_final`` (the test set, evaluated once,
  with a validation set);
- the config as text and as TensorBoard HParams (with the handed-over scores as the
  metrics ``hparam/val_acc``, ``hparam/val_loss``, ``hparam/test_acc``), so the HParams
  tab compares configs side by side.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .ranking import final_scores
from .records import SweepRecord

__all__ = ["EXTRA_HINT", "TensorBoardLog"]

#: What to install when tensorboardX is missing.
EXTRA_HINT = "pip install 'xpnet[tensorboard]'"


def _writer_class() -> Any:
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise ImportError(f"TensorBoard logs need tensorboardX; {EXTRA_HINT}") from None
    return SummaryWriter


class TensorBoardLog:
    """An ``on_result(index, record)`` callback writing each config as a TensorBoard run.

    Parameters
    ----------
    log_dir : path
        The runs go in subfolders here (created as needed).
    name : callable, optional
        ``name(index, record)``: the run's folder name; default ``config-0007``.
    """

    def __init__(
        self,
        log_dir: str | os.PathLike[str],
        *,
        name: Callable[[int, SweepRecord], str] | None = None,
    ) -> None:
        self.writer = _writer_class()
        self.log_dir = Path(log_dir)
        self.name = name or (lambda i, r: f"config-{i:04d}")

    def __call__(self, index: int, record: SweepRecord) -> Path:
        """Write ``record``'s run; returns its folder."""
        from tensorboardX.summary import hparams

        path = self.log_dir / self.name(index, record)
        h = record.history
        with self.writer(logdir=str(path)) as w:
            for step, loss in enumerate(h.loss):
                w.add_scalar("loss/step", loss, step)
            series = {"accuracy/train": h.train_acc, "accuracy/val": h.val_acc,
                      "loss/val": h.val_loss, "accuracy/test": h.test_acc}  # fmt: skip
            for tag, values in series.items():
                for step, v in zip(h.eval_steps, values, strict=False):
                    w.add_scalar(tag, v, step)
            last = h.eval_steps[-1] if h.eval_steps else 0
            if h.final_test_acc is not None:
                w.add_scalar("accuracy/test_final", h.final_test_acc, last)
            w.add_text("config", json.dumps(record.config, sort_keys=True, default=list))
            scores = final_scores(record)
            metrics = {f"hparam/{k}": float(v) for k, v in scores.items()
                       if k != "train_acc" and v is not None and not math.isnan(v)}  # fmt: skip
            for summary in hparams(_hparams(record), metrics):
                w.file_writer.add_summary(summary)
            for k, v in metrics.items():
                w.add_scalar(k, v, last)
        return path


def _hparams(record: SweepRecord) -> dict[str, bool | str | float | int]:
    """The config as HParams values (numbers and strings; a layer list as text)."""
    out: dict[str, bool | str | float | int] = {}
    for k, v in record.config.items():
        out[k] = v if isinstance(v, bool | str | int | float) else ",".join(map(str, v))
    out["diverged"] = record.diverged
    out["stopped_at"] = -1 if record.stopped_at is None else int(record.stopped_at)
    return out
