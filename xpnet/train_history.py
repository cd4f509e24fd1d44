"""What a training run records: :class:`TrainHistory` (losses, evaluations, timings)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["TrainHistory"]


@dataclass
class TrainHistory:
    """What a training run recorded.

    Attributes
    ----------
    loss : list of float
        Mini-batch loss of every step (before that step's update).
    train_acc, test_acc : list of float
        Accuracy on the whole train / test set at each evaluation (the test set only
        without a validation set: with one, see ``final_test_acc``).
    val_acc, val_loss : list of float
        Accuracy and mean cross-entropy (no weight decay term) on the held-out
        validation rows at each evaluation; empty without ``validation``.
    eval_steps : list of int
        The step (0-based) after which each evaluation ran.
    loop_seconds : float
        Wall time of the loop, evaluations included, device synchronized at the end.
    warmup_seconds : float
        Wall time of the untimed first step and evaluation chunk on backends that compile
        kernels or with a compiled step (see :mod:`xpnet._warmup`); 0 elsewhere.
    compile_seconds : float
        Wall time of the compiled step's first call for each input shape (compilation
        included, :class:`xpnet.step.Stepper`), not part of ``loop_seconds``; 0 eager.
    compiles : int
        How many times the step was compiled (1 for a run; more means shapes changed).
    diverged : bool
        The loss became NaN/inf or ran far above where it started.
    input_scale : float or None
        What the inputs were multiplied by (1/255 for ``uint8`` pixels, see
        :mod:`xpnet.scaling`), None when they were used as they are.
    best_step : int or None
        With ``patience``: the evaluation of the best validation score, whose parameters
        the run hands over.
    stopped_step : int or None
        The evaluation where early stopping ended the run (``patience`` evaluations
        after ``best_step``); None when it ran to the last step.
    final_test_acc : float or None
        With a validation set: the test accuracy of the parameters the run hands over,
        evaluated once at the end (the test set chooses nothing).
    """

    loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    loop_seconds: float = 0.0
    warmup_seconds: float = 0.0
    compile_seconds: float = 0.0
    compiles: int = 0
    diverged: bool = False
    input_scale: float | None = None
    val_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_step: int | None = None
    stopped_step: int | None = None
    final_test_acc: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
