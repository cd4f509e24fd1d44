"""A training history read back from a file (a checkpoint's meta, a results line): each
field checked for its type, so a hand-edited or foreign file is one clear error."""

from __future__ import annotations

from typing import Any

from ..training import TrainHistory

__all__ = ["history_from_dict"]

_NUMBER_LISTS = ("loss", "train_acc", "test_acc", "val_acc", "val_loss")


def history_from_dict(h: Any) -> TrainHistory:
    """``TrainHistory(**h)`` when every field has its type; else a ValueError naming them."""
    fields = set(TrainHistory.__dataclass_fields__)
    if not isinstance(h, dict) or not set(h) <= fields:
        raise ValueError(f"its history is not an object of {', '.join(sorted(fields))}")
    wrong = [k for k in _NUMBER_LISTS if not _all(h.get(k, []), is_number)]
    wrong += [] if _all(h.get("eval_steps", []), is_int) else ["eval_steps"]
    wrong += [] if is_number(h.get("loop_seconds", 0.0)) else ["loop_seconds"]
    wrong += [] if h.get("input_scale") is None or is_number(h["input_scale"]) else ["input_scale"]
    wrong += [] if isinstance(h.get("diverged", False), bool) else ["diverged"]
    steps = ("best_step", "stopped_step")
    wrong += [k for k in steps if h.get(k) is not None and not is_int(h[k])]
    final = h.get("final_test_acc")
    wrong += [] if final is None or is_number(final) else ["final_test_acc"]
    if wrong:
        raise ValueError(f"wrong types in history {', '.join(wrong)}")
    return TrainHistory(**h)


def _all(values: Any, test: Any) -> bool:
    return isinstance(values, list) and all(test(v) for v in values)


def is_number(v: Any) -> bool:
    """An int or float from JSON (not a bool)."""
    return isinstance(v, int | float) and not isinstance(v, bool)


def is_int(v: Any) -> bool:
    """An int from JSON (not a bool)."""
    return isinstance(v, int) and not isinstance(v, bool)
