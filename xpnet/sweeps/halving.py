"""Successive halving: the rungs, checked, and who goes on at a rung."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence

import numpy as np

from ..training import TrainHistory


def check_rungs(halving: Sequence[int] | None, *, iters: int, interval: int) -> tuple[int, ...]:
    """Successive-halving rungs, checked: increasing evaluation steps before the last step.

    Parameters
    ----------
    halving : sequence of int or None
        The rung steps (0-based).
    iters, interval : int
        Steps of the run and steps between evaluations (evaluations run at every multiple
        of ``interval`` and at step ``iters - 1``).

    Returns
    -------
    tuple of int, empty for None

    Raises
    ------
    ValueError
        A rung that is not an integer, not a multiple of ``interval``, not before step
        ``iters - 1``, or out of order; the message names it and what to give instead.
    """
    if halving is None:
        return ()
    if isinstance(halving, str | bytes) or not isinstance(halving, Iterable):
        raise ValueError(f"halving must be a sequence of rung steps, got {halving!r}")
    rungs = tuple(halving)
    last = int(iters) - 1
    hint = f"give multiples of {interval} below {last}"
    for r in rungs:
        if isinstance(r, bool) or not isinstance(r, int | np.integer) or r < 0:
            raise ValueError(f"halving rung {r!r} is not a step (an integer >= 0); {hint}")
        if r >= last:
            raise ValueError(
                f"halving rung {r} is not before the last step ({last}): nothing would "
                f"train after it; {hint}"
            )
        if r % interval:
            raise ValueError(
                f"halving rung {r} is not an evaluation step (evaluations run every "
                f"{interval} steps); {hint}, or set eval_interval to divide it"
            )
    if any(a >= b for a, b in itertools.pairwise(rungs)):
        raise ValueError(f"halving rungs must be increasing, got {list(rungs)}")
    return tuple(int(r) for r in rungs)


def survivors(
    histories: Sequence[TrainHistory], alive: np.ndarray, units: Sequence[str]
) -> list[int]:
    """The rows that go on at a rung, in order (rows of every stack of a sweep at once).

    A config trained with several seeds is one unit (``units[r]``: row r's config less its
    seed): its seeds go on or stop together, so a summary's mean over seeds never mixes
    steps. The better ``ceil(n / 2)`` of the n units with a live row go on, ranked by the
    score just evaluated, mean over the unit's live rows: the validation accuracy, then
    the lower validation loss, when the sweep holds out validation rows; else the train
    accuracy, then the lower mean training loss since the evaluation before. Ties go to
    the earlier row (config order). The test set is never used to choose, so a
    survivor's test accuracy stays an honest estimate. Rows not ``alive`` never go on.
    Host values only: they were read back for the evaluation.
    """
    rows: dict[str, list[int]] = {}
    for r, unit in enumerate(units):
        if alive[r]:
            rows.setdefault(unit, []).append(r)

    def rank(unit: str) -> tuple[float, float, int]:
        scores = [score(histories[r]) for r in rows[unit]]
        return (-float(np.mean([a for a, _ in scores])), float(np.mean([v for _, v in scores])),
                rows[unit][0])  # fmt: skip

    kept = sorted(rows, key=rank)[: math.ceil(len(rows) / 2)]
    return sorted(r for unit in kept for r in rows[unit])


def score(h: TrainHistory) -> tuple[float, float]:
    """(accuracy, loss) of a history's last evaluation, as :func:`survivors` ranks it."""
    if h.val_acc:
        return h.val_acc[-1], h.val_loss[-1]
    since = h.eval_steps[-2] + 1 if len(h.eval_steps) > 1 else 0
    return h.train_acc[-1], float(np.mean(h.loss[since:]))
