"""What a sweep keeps of each config: its history, divergence and halving stop."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
        The successive-halving rung (a step) where it was dropped; None when it trained
        to the last step.
    """

    config: dict[str, Any]
    history: TrainHistory = field(default_factory=TrainHistory)
    diverged: bool = False
    stopped_at: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "history": self.history.as_dict(),
            "diverged": self.diverged,
            "stopped_at": self.stopped_at,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SweepRecord:
        # lines written before halving existed have no "stopped_at": they ran to the end
        stopped = d.get("stopped_at")
        return cls(
            dict(d["config"]),
            TrainHistory(**d["history"]),
            bool(d["diverged"]),
            None if stopped is None else int(stopped),
        )
