"""A held-out part of the training set, and early stopping on it.

The split is drawn from a seeded host RNG and depends only on the number of rows, the
fraction and the seed, so every config of a sweep, every backend and a single
:func:`xpnet.train` run hold out the same rows. A run's *validation score* at an
evaluation is its accuracy on those rows, ties broken by the lower mean cross-entropy
on them: early stopping, successive halving and a sweep's summary all rank by it.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import replace
from typing import Any

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as device_of

__all__ = [
    "SPLIT_SEED",
    "EarlyStopping",
    "check_validation",
    "history_through",
    "restore",
    "snapshot",
    "split_validation",
    "validation_rows",
]

#: Seed of the host RNG that chooses the held-out rows.
SPLIT_SEED = 0


def check_validation(validation: float | None, patience: int | None, n_rows: int) -> None:
    """``validation`` a fraction leaving rows on both sides; ``patience`` a positive
    integer that comes with a validation set."""
    if validation is not None:
        ok = isinstance(validation, numbers.Real) and not isinstance(validation, bool)
        if not (ok and math.isfinite(validation) and 0 < validation < 1):
            raise ValueError(
                f"validation must be a fraction of the training set between 0 and 1 "
                f"(0.2 holds out a fifth), got {validation!r}"
            )
        held = _held_out(n_rows, validation)
        if held < 1 or held >= n_rows:
            raise ValueError(
                f"validation={validation} of {n_rows} training rows leaves "
                f"{held} to validate on and {n_rows - held} to train on; both need rows"
            )
    if patience is not None:
        if (
            isinstance(patience, bool)
            or not isinstance(patience, numbers.Integral)
            or patience < 1
        ):
            raise ValueError(
                f"patience must be a positive integer (evaluations), got {patience!r}"
            )
        if validation is None:
            raise ValueError(
                "patience counts evaluations without validation improvement: give a "
                "validation fraction too (validation=0.2, --validation 0.2)"
            )


def _held_out(n: int, fraction: float) -> int:
    return int(round(n * float(fraction)))


def validation_rows(
    n: int, fraction: float, *, seed: int = SPLIT_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(train, validation)`` of an ``n``-row set, each increasing.

    ``round(n * fraction)`` rows, chosen by a permutation of a seeded host RNG, are held
    out; the training rows keep their order.
    """
    check_validation(fraction, None, n)
    perm = np.random.default_rng(seed).permutation(n)
    held = _held_out(n, fraction)
    return np.sort(perm[held:]), np.sort(perm[:held])


def split_validation(
    x: Any, t: Any, fraction: float, *, seed: int = SPLIT_SEED
) -> tuple[Any, Any, Any, Any]:
    """``(x_train, t_train, x_val, t_val)``: :func:`validation_rows` taken from ``x`` and
    ``t`` (arrays of any backend, kept on their device; ``t`` labels or one-hot)."""
    train_rows, val_rows = validation_rows(int(x.shape[0]), fraction, seed=seed)
    out = []
    for a in (x, t):
        xp = array_namespace(a)
        for rows in (train_rows, val_rows):
            index = xp.asarray(rows, device=device_of(a))
            out.append(xp.take(a, index, axis=0))
    return out[0], out[2], out[1], out[3]


def better(acc: Any, loss: Any, best_acc: Any, best_loss: Any) -> Any:
    """Whether a validation score beats the best one so far (elementwise): a higher
    accuracy, or the same with a lower loss. NaN never beats anything."""
    acc, loss = np.asarray(acc), np.asarray(loss)
    return (acc > best_acc) | ((acc == best_acc) & (loss < best_loss))


class EarlyStopping:
    """The best validation score of each of K runs, and who ran out of patience.

    Host values only: the scores were read back with the evaluation.

    Parameters
    ----------
    k : int
        Runs tracked (a stack's rows, or 1).
    patience : int or None
        Evaluations without improvement after which a run stops; None: never stops (the
        best is still tracked).
    """

    def __init__(self, k: int, patience: int | None) -> None:
        self.patience = patience
        self.best_acc = np.full(k, -np.inf)
        self.best_loss = np.full(k, np.inf)
        self.best_step = np.full(k, -1, dtype=np.int64)
        self.waited = np.zeros(k, dtype=np.int64)

    @classmethod
    def from_history(cls, history: Any, patience: int | None) -> EarlyStopping:
        """The tracker of one run resumed from ``history`` (its evaluations so far)."""
        es = cls(1, patience)
        for step, acc, loss in zip(history.eval_steps, history.val_acc, history.val_loss,
                                   strict=False):  # fmt: skip
            es.update(np.array([0]), [acc], [loss], step)
        return es

    def update(
        self, rows: np.ndarray, acc: Any, loss: Any, step: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Record the scores of ``rows`` at evaluation ``step``.

        Returns
        -------
        improved, exhausted : bool arrays over ``rows``
            Who beat their best (their parameters are the new best), and who has now gone
            ``patience`` evaluations without doing so.
        """
        acc, loss = np.asarray(acc, dtype=np.float64), np.asarray(loss, dtype=np.float64)
        up = better(acc, loss, self.best_acc[rows], self.best_loss[rows])
        self.best_acc[rows] = np.where(up, acc, self.best_acc[rows])
        self.best_loss[rows] = np.where(up, loss, self.best_loss[rows])
        self.best_step[rows] = np.where(up, step, self.best_step[rows])
        self.waited[rows] = np.where(up, 0, self.waited[rows] + 1)
        if self.patience is None:
            return up, np.zeros_like(up)
        return up, self.waited[rows] >= self.patience

    def take(self, keep: list[int]) -> None:
        """Keep the runs ``keep`` (a stack cut to those rows)."""
        for name in ("best_acc", "best_loss", "best_step", "waited"):
            setattr(self, name, getattr(self, name)[keep])


def history_through(history: Any, step: int) -> Any:
    """``history`` as it stood after ``step``'s evaluation: what a checkpoint of the
    parameters of that evaluation carries, so that resuming from it continues the run
    from there (early stopping's best evaluation)."""
    n = sum(1 for s in history.eval_steps if s <= step)
    per_eval = {k: list(getattr(history, k)[:n])
                for k in ("eval_steps", "train_acc", "val_acc", "val_loss")}  # fmt: skip
    return replace(history, loss=list(history.loss[: step + 1]),
                   test_acc=list(history.test_acc[:n]), stopped_step=None, **per_eval)  # fmt: skip


def snapshot(params: dict[str, Any], optimizer: Any) -> dict[str, Any]:
    """Copies of a run's parameters and optimizer state (slots and step count), on their
    device: the state early stopping hands over."""
    xp = array_namespace(next(iter(params.values())))
    copy = {"params": {k: xp.asarray(v, copy=True) for k, v in params.items()}}
    if optimizer is not None:
        copy["iter"] = optimizer.iter
        copy["state"] = {s: {k: xp.asarray(v, copy=True) for k, v in slot.items()}
                         for s, slot in optimizer.state.items()}  # fmt: skip
    return copy


def restore(copy: dict[str, Any], params: dict[str, Any], optimizer: Any) -> None:
    """Put a :func:`snapshot` back (the dicts' entries are replaced)."""
    params.update(copy["params"])
    if optimizer is not None and "state" in copy:
        optimizer.iter = copy["iter"]
        for s, slot in copy["state"].items():
            optimizer.state[s] = dict(slot)
