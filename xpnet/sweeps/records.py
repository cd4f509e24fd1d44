"""What a sweep keeps of each config: its history, divergence, halving stop and, on
request, its parameters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..training import TrainHistory


@dataclass
class SweepRecord:
    """One config's result.

    Attributes
    ----------
    config : dict
        The config as given, with defaults filled in.
    history : TrainHistory
        Exactly what :func:`xpnet.train` records for that config alone (up to the
        evaluation where it diverged, if it did, or the rung where it was stopped).
    diverged : bool
        Its loss became NaN/inf or ran far above where it started; its parameters were
        frozen there while the rest of its stack trained on.
    stopped_at : int or None
        The step where the sweep stopped it (a successive-halving rung, or a pruner's
        decision); None when it trained to the last step or stopped early by itself
        (``history.stopped_step``).
    params : dict of str to numpy.ndarray, or None
        With ``keep_params``: the parameters its own :func:`xpnet.train` run would end
        with (``W1`` (D, H1), ``b1`` (H1,), ...; the best evaluation's with
        ``patience``), as host arrays. Not part of :meth:`as_dict`.
    optimizer_state : dict of str to numpy.ndarray, or None
        With ``keep_params``: the matching ``optimizer.state_dict()``, for resuming.
    """

    config: dict[str, Any]
    history: TrainHistory = field(default_factory=TrainHistory)
    diverged: bool = False
    stopped_at: int | None = None
    params: dict[str, np.ndarray] | None = field(default=None, repr=False, compare=False)
    optimizer_state: dict[str, np.ndarray] | None = field(default=None, repr=False,
                                                           compare=False)  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        """The JSON-able part (everything but the arrays)."""
        return {
            "config": self.config,
            "history": self.history.as_dict(),
            "diverged": self.diverged,
            "stopped_at": self.stopped_at,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SweepRecord:
        # lines written before halving existed have no "stopped_at": they ran to the end;
        # histories written before validation existed lack its fields: they default
        stopped = d.get("stopped_at")
        return cls(
            dict(d["config"]),
            TrainHistory(**d["history"]),
            bool(d["diverged"]),
            None if stopped is None else int(stopped),
        )
