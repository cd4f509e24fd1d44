"""``xpnet-train --resume``: the run a checkpoint continues, read and checked before any work.

The checkpoint's settings are read back as if they were given as flags (so a hand-edited
or foreign file fails as a bad flag value would); a flag given on the command line that
disagrees with them is an error naming it, since a resumed run keeps its settings.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..backends import DTYPES
from ..checkpoint import Checkpoint, CheckpointError, load_checkpoint
from ..training import TrainHistory
from .framework import UsageError
from .history import history_from_dict

__all__ = ["RESUMED", "Resumed", "given_flags", "read_resume"]

#: Flags a resumed run takes from its checkpoint (everything that decides the numbers).
RESUMED = (
    "net",
    "eval_sample",
    "batch_size",
    "lr",
    "hidden_size",
    "hidden_sizes",
    "activation",
    "gradient",
    "seed",
    "weight_init_std",
    "weight_decay",
    "optimizer",
    "momentum",
    "beta1",
    "beta2",
    "decay_rate",
    "dataset",
    "validation",
    "patience",
)
_SIZES = ("hidden_size", "hidden_sizes")
#: Classes of every data set the command trains on (MNIST-format labels 0..9).
CLASSES = 10


@dataclass(frozen=True)
class Resumed:
    """A checkpoint to continue, and the history it holds (``len(history.loss)`` steps)."""

    ckpt: Checkpoint
    history: TrainHistory


def given_flags(make_parser: Callable[[], argparse.ArgumentParser], argv: Sequence[str] | None):
    """The destinations of the flags on the command line ``argv``, not those defaulted."""
    parser = make_parser()
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    namespace, _ = argparse.ArgumentParser.parse_known_args(parser, argv)
    return set(vars(namespace))


def read_resume(
    args: argparse.Namespace, given: set[str], parser: argparse.ArgumentParser
) -> Resumed | None:
    """Load ``args.resume`` and set ``args`` to the settings it holds; None without it.

    Raises
    ------
    UsageError
        The file is not a checkpoint of a run this version can continue (missing, foreign,
        edited: values of the wrong type, an unknown optimizer, an output layer that is not
        10 classes, a batch size of 0), or flags given disagree with it (named).
    """
    if args.resume is None:
        return None
    where = f"--resume {args.resume}"
    try:
        ckpt = load_checkpoint(args.resume)
    except CheckpointError as exc:
        raise UsageError(f"{where}: {exc}") from None
    meta = ckpt.meta
    config = meta.get("config")
    if (
        not isinstance(config, dict)
        or "history" not in meta
        or any(k not in config for k in ("optimizer", "seed"))
    ):
        raise UsageError(
            f"{where}: not a checkpoint of a run saved with --save by this version "
            "(no optimizer state or history)"
        )
    actions = {a.dest: a for a in parser._actions}
    values, bad = {}, []
    for k in RESUMED:
        if k in config:
            try:
                values[k] = _as_flag(actions[k], config[k])
            except (argparse.ArgumentTypeError, ValueError, TypeError):
                bad.append(f"{_flag(k)} {json.dumps(config[k])}")
    if bad:
        raise UsageError(
            f"{where}: its settings hold {', '.join(bad)}, values this version does not "
            "take; it was edited or written by another program"
        )
    try:
        history = history_from_dict(meta.get("history"))
    except ValueError as exc:
        raise UsageError(f"{where}: {exc}; it was edited or written by another program") from None
    if ckpt.output_size != CLASSES:
        raise UsageError(
            f"{where}: its output layer has {ckpt.output_size} units, but the data sets have "
            f"{CLASSES} classes; it is not a net this command trains"
        )
    differ = [
        f"{_flag(k)} {_show(getattr(args, k))} (it has {_show(values[k])})"
        for k in values
        if k in given and k not in _SIZES and _plain(getattr(args, k)) != _plain(values[k])
    ]
    differ += _size_conflicts(args, given, ckpt)  # against the net itself
    if differ:
        raise UsageError(
            f"{where}: {', '.join(differ)}: a resumed run keeps the settings it was saved "
            "with; drop these flags, or start a new run without --resume"
        )
    for k, v in values.items():
        setattr(args, k, v)
    if "dtype" not in given and meta.get("dtype") in DTYPES:  # float64 stays float64
        args.dtype = meta["dtype"]
    return Resumed(ckpt, history)


def _as_flag(action: argparse.Action, value: Any) -> Any:
    """``value`` read as the flag ``action`` would read it from the command line."""
    if value is None:
        if action.default is None:
            return None
        raise ValueError("no value")
    if isinstance(value, bool | dict):
        raise TypeError("not a flag value")
    if isinstance(value, list):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise TypeError("not a list of sizes")
        value = ",".join(map(str, value))
    if action.choices is not None:
        if value not in action.choices:
            raise ValueError(f"not one of {action.choices}")
        return value
    return action.type(str(value)) if action.type is not None else value


def _size_conflicts(args: argparse.Namespace, given: set[str], ckpt: Checkpoint) -> list[str]:
    """The layer-size flags given that are not the checkpoint's net."""
    layered = ckpt.net_class != "MultiLayerNet"
    hidden = (ckpt.net_config.get("hidden_size"),) if layered else tuple(ckpt.sizes[1:-1])
    shown = ",".join(map(str, hidden))
    out = []
    if "hidden_size" in given and (args.hidden_size,) != hidden:
        out.append(f"--hidden-size {args.hidden_size} (its hidden layers are {shown})")
    if "hidden_sizes" in given and tuple(args.hidden_sizes) != hidden:
        out.append(f"--hidden-sizes {_show(args.hidden_sizes)} (its hidden layers are {shown})")
    return out


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _plain(v: Any) -> str:
    return json.dumps(list(v) if isinstance(v, tuple) else v)


def _show(v: Any) -> str:
    return ",".join(map(str, v)) if isinstance(v, list | tuple) else str(v)
