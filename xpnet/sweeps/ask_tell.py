"""Batches of Optuna trials trained as stacked models (``pip install 'xpnet[optuna]'``).

Optuna's ask-and-tell interface hands out trials one at a time; a batch of them (the
configs its sampler suggests) trains as one or a few stacks (:func:`xpnet.sweeps.plan_groups`),
each trial's value is reported to its trial at every evaluation, and the study's pruner
stops a trial there (its row is cut from the stack). Each trial's numbers are those of
:func:`xpnet.train` for its config alone, as in :func:`xpnet.sweeps.sweep`.

The value is the validation accuracy (with ``validation``; else the train accuracy) for a
study that maximizes, the validation loss for one that minimizes. The test set is never
reported. Runs in this process (the pruner's decisions come at every evaluation).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._array import itemsize
from .._checks import check_labels, check_run_args
from ..backends import Backend, as_backend
from ..validation import check_validation, split_validation
from .configs import normalize
from .device import device_data, output_size_of
from .plan import plan_groups, stack_budget
from .ranking import final_scores
from .records import SweepRecord
from .stacked import StackedGroup

__all__ = ["EXTRA_HINT", "optimize_stacked"]

#: What to install when Optuna is missing.
EXTRA_HINT = "pip install 'xpnet[optuna]'"


def optimize_stacked(
    study: Any,
    suggest: Callable[[Any], dict[str, Any]],
    x_train: Any,
    t_train: Any,
    x_test: Any = None,
    t_test: Any = None,
    *,
    n_trials: int,
    batch: int = 16,
    iters: int = 10_000,
    batch_size: int = 100,
    eval_interval: int | None = None,
    validation: float | None = None,
    patience: int | None = None,
    backend: Backend | str | None = None,
    dtype: str | None = None,
    max_bytes: int | None = None,
    keep_params: bool = False,
) -> list[tuple[Any, SweepRecord]]:
    """Run ``n_trials`` trials of ``study``, ``batch`` at a time, each batch as stacks.

    Parameters
    ----------
    study : optuna.Study
        A single-objective study; its sampler suggests, its pruner prunes.
    suggest : callable
        ``suggest(trial) -> config``: a sweep config (see :func:`xpnet.sweeps.sweep`)
        from the trial's ``suggest_*`` calls.
    x_train, t_train, x_test, t_test, iters, batch_size, eval_interval
        As for :func:`xpnet.train` (the test set is evaluated, never reported).
    validation, patience, backend, dtype, max_bytes, keep_params
        As for :func:`xpnet.sweeps.sweep`.

    Returns
    -------
    list of (optuna.trial.FrozenTrial, SweepRecord), in the order the trials were asked.
    A pruned trial's record has ``stopped_at``, the evaluation where it was pruned.
    """
    try:
        from optuna.trial import TrialState
    except ImportError:
        raise ImportError(f"optimize_stacked needs Optuna; {EXTRA_HINT}") from None
    if len(study.directions) != 1:
        raise ValueError("optimize_stacked reports one value per trial: give a study with "
                         "one direction")  # fmt: skip
    maximize = study.direction.name == "MAXIMIZE"
    if not maximize and validation is None:
        raise ValueError("a study that minimizes gets the validation loss: give validation=")
    check_run_args(x_train, t_train, x_test, t_test, iters=iters, batch_size=batch_size)
    check_validation(validation, patience, int(x_train.shape[0]))
    b = as_backend(backend, dtype)
    classes = output_size_of(t_train)
    check_labels(t_train, "t_train", classes)
    x_val = t_val = None
    if validation is not None:
        x_train, t_train, x_val, t_val = split_validation(x_train, t_train, validation)
    data = device_data(x_train, t_train, x_test, t_test, backend=b, output_size=classes,
                       x_val=x_val, t_val=t_val)  # fmt: skip
    interval = eval_interval or max(int(x_train.shape[0]) // batch_size, 1)
    stops = list(range(0, iters - 1, interval))
    budget = stack_budget(b) if max_bytes is None else max_bytes

    def value(record: SweepRecord, last: bool) -> float:
        h = record.history
        if last:
            s = final_scores(record)
            return s["val_acc" if validation is not None else "train_acc"] if maximize else s[
                "val_loss"]  # fmt: skip
        if not maximize:
            return h.val_loss[-1]
        return h.val_acc[-1] if validation is not None else h.train_acc[-1]

    out: list[tuple[Any, SweepRecord]] = []
    while len(out) < n_trials:
        trials = [study.ask() for _ in range(min(int(batch), n_trials - len(out)))]
        configs = [normalize(suggest(t)) for t in trials]
        records: list[SweepRecord | None] = [None] * len(trials)
        groups = plan_groups(configs, input_size=int(x_train.shape[1]), output_size=classes,
                             batch_size=batch_size, itemsize=itemsize(b.float_dtype, b.xp),
                             max_bytes=budget, best=patience is not None)  # fmt: skip
        for members in groups:
            group = StackedGroup([configs[i] for i in members], data, iters=iters,
                                 batch_size=batch_size, eval_interval=eval_interval,
                                 patience=patience, keep_params=keep_params)  # fmt: skip
            for stop in stops:
                if group.train_to(stop):
                    break
                going = []
                for m in group.live():
                    trial = trials[members[m]]
                    trial.report(value(group.records[m], last=False), stop)
                    if not trial.should_prune():
                        going.append(m)
                group.cut(going, stop)
            group.train_to(None)
            for m, rec in enumerate(group.records):
                records[members[m]] = rec
        for trial, rec in zip(trials, records, strict=True):
            if rec.stopped_at is not None:
                frozen = study.tell(trial, state=TrialState.PRUNED)
            else:
                frozen = study.tell(trial, value(rec, last=True))
            out.append((frozen, rec))
    return out
