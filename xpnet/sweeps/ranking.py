"""A finished sweep's choice: each record's score, the best records, and a record's
parameters written as a checkpoint :func:`xpnet.train`'s command can evaluate or resume."""

from __future__ import annotations

import math
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ..checkpoint import save_checkpoint
from ..validation import history_through
from .records import SweepRecord

__all__ = ["final_scores", "rank_records", "save_record"]


def final_scores(record: SweepRecord) -> dict[str, float | None]:
    """The scores of the parameters a record hands over: its best evaluation's with
    early stopping, else its last one.

    Returns ``{"val_acc", "val_loss", "train_acc", "test_acc"}``; ``val_*`` None without a
    validation set; ``test_acc`` the once-evaluated ``final_test_acc`` with one, else the
    last per-evaluation test accuracy (NaN without a test set).
    """
    h = record.history
    at = h.eval_steps.index(h.best_step) if h.best_step in h.eval_steps else -1
    test = h.final_test_acc
    if test is None:
        test = h.test_acc[at] if h.test_acc else math.nan
    return {
        "val_acc": h.val_acc[at] if h.val_acc else None,
        "val_loss": h.val_loss[at] if h.val_loss else None,
        "train_acc": h.train_acc[at] if h.train_acc else math.nan,
        "test_acc": test,
    }


def rank_records(records: list[SweepRecord]) -> list[int]:
    """Indices of ``records``, best first: by validation accuracy, then lower validation
    loss, when the records have a validation set; else by test accuracy (what a sweep
    without held-out rows can report). Diverged records go last; ties keep config order."""

    def key(i: int) -> tuple:
        r, s = records[i], final_scores(records[i])
        if s["val_acc"] is not None:
            score = (-s["val_acc"], s["val_loss"])
        else:
            score = (-_number(s["test_acc"]), 0.0)
        return (bool(r.diverged), *score, i)

    return sorted(range(len(records)), key=key)


def _number(v: float | None) -> float:
    return -1.0 if v is None or math.isnan(v) else float(v)


def save_record(
    path: str | os.PathLike[str], record: SweepRecord, *, meta: dict[str, Any] | None = None
) -> Path:
    """Write a record's parameters and optimizer state (``sweep(..., keep_params=True)``)
    as the checkpoint its own training run would save (:func:`xpnet.save_checkpoint`).

    ``meta`` (dataset, data fingerprint, the run's steps and batch size...) is merged
    with the record's ``config`` (the config's keys as ``xpnet-train`` flags name them),
    ``seed``, ``step`` and ``history``: with early stopping the history through the best
    evaluation, whose state the file holds, so resuming from it goes on from there.

    Raises
    ------
    ValueError
        The record carries no parameters (the sweep ran without ``keep_params``).
    """
    if record.params is None:
        raise ValueError(
            "this record carries no parameters: run the sweep with keep_params=True (--save-best)"
        )
    h = record.history
    history = h if h.best_step is None else history_through(h, h.best_step)
    c = record.config
    config = {**(meta or {}).get("config", {}), **c, "hidden_sizes": list(c["hidden_sizes"]),
              "hidden_size": c["hidden_sizes"][0]}  # fmt: skip
    info = {**(meta or {}), "config": config, "seed": c["seed"], "step": len(history.loss),
            "history": history.as_dict()}  # fmt: skip
    net = SimpleNamespace(params=record.params, activation=c["activation"])
    return save_checkpoint(path, net, optimizer_state=record.optimizer_state, meta=info)
