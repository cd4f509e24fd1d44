"""Batches of a real Optuna study's trials trained as stacks, reported and pruned."""

from __future__ import annotations

import pytest
from _sweep_runs import KW, alone

optuna = pytest.importorskip("optuna")

import xpnet  # noqa: E402
from xpnet.sweeps.ask_tell import optimize_stacked  # noqa: E402


def test_a_study_gets_each_trials_own_run_and_prunes_at_evaluations(data):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    b = xpnet.get_backend("numpy", dtype="float64")
    pruner = optuna.pruners.MedianPruner(n_startup_trials=3)
    study = optuna.create_study(direction="maximize", pruner=pruner,
                                sampler=optuna.samplers.RandomSampler(seed=0))  # fmt: skip

    def suggest(trial):
        return {"lr": trial.suggest_float("lr", 0.01, 3.0, log=True), "activation": "relu",
                "weight_init_std": "he"}  # fmt: skip

    out = optimize_stacked(study, suggest, *data, n_trials=10, batch=5, backend=b,
                           validation=0.25, **KW)  # fmt: skip
    assert len(out) == len(study.trials) == 10
    states = [t.state for t, _ in out]
    pruned = [i for i, s in enumerate(states) if s == optuna.trial.TrialState.PRUNED]
    # the first batch has no finished trials to compare with; the second is pruned
    assert pruned and min(pruned) >= 5
    for trial, rec in out:
        ref = alone(rec.config, data, b, validation=0.25)
        steps = rec.history.eval_steps
        assert rec.history.val_acc == ref.val_acc[: len(steps)]
        reported = {s: v for s, v in zip(steps, rec.history.val_acc, strict=False) if s < 39}
        assert trial.intermediate_values == reported
        if trial.state == optuna.trial.TrialState.PRUNED:
            assert rec.stopped_at == steps[-1] < 39
        else:
            assert trial.value == ref.val_acc[-1] and rec.stopped_at is None


def test_a_minimizing_study_needs_the_validation_loss(data):
    study = optuna.create_study(direction="minimize")
    with pytest.raises(ValueError, match="validation loss: give validation="):
        optimize_stacked(study, lambda t: {}, *data, n_trials=1, backend="numpy", **KW)
