"""``xpnet-train --net``: which net a run trains, its flags' defaults and the net itself.

``mlp`` is the chapter's TwoLayerNet (a MultiLayerNet with ``--hidden-sizes``);
``simple-convnet`` and ``deep-convnet`` are the book's chapter 7 and 8 nets, with the
defaults of their training scripts (``train_convnet.py``, ``train_deepnet.py``): Adam at
lr 0.001, 20 epochs of 100-image batches, accuracies per epoch on 1000 sampled rows.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from ..backends import Backend
from ..convnets import DeepConvNet, SimpleConvNet
from ..nets import MultiLayerNet, TwoLayerNet
from .framework import UsageError

__all__ = ["NETS", "build_net", "fill_net_defaults", "net_inputs"]

#: ``--net`` choices and the defaults they give the flags left unset.
NETS: dict[str, dict[str, Any]] = {
    "mlp": {"iters": 10_000, "lr": 0.1, "optimizer": "sgd", "hidden_size": 50,
            "weight_init_std": 0.01, "activation": "sigmoid", "eval_sample": None},
    "simple-convnet": {"epochs": 20, "lr": 0.001, "optimizer": "adam", "hidden_size": 100,
                       "weight_init_std": 0.01, "eval_sample": 1000},
    "deep-convnet": {"epochs": 20, "lr": 0.001, "optimizer": "adam", "hidden_size": 50,
                     "eval_sample": 1000},
}  # fmt: skip

#: Flags that only the MLPs have (conv nets: ReLU, no weight decay, no layer list).
_MLP_ONLY = ("hidden_sizes", "activation", "weight_decay")


def fill_net_defaults(args: argparse.Namespace, given: set[str]) -> None:
    """Set the flags left unset to ``--net``'s defaults; refuse flags the net lacks.

    ``iters`` of a conv net stays None here: 20 epochs depend on the data
    (:func:`net_inputs` sets it).
    """
    args.net = args.net or "mlp"
    defaults = NETS[args.net]
    if args.net != "mlp":
        wrong = [k for k in _MLP_ONLY if k in given and getattr(args, k) not in (None, 0.0)]
        if args.net == "deep-convnet" and "weight_init_std" in given:
            wrong.append("weight_init_std")  # He initialization per layer, as the book's
        if wrong:
            flags = ", ".join("--" + k.replace("_", "-") for k in wrong)
            does, it = ("does", "it") if len(wrong) == 1 else ("do", "them")
            raise UsageError(f"{flags} {does} not apply to --net {args.net}; drop {it}")
    if args.net != "mlp" and getattr(args, "compile", None) == "on":
        raise UsageError(f"--compile on compiles the MLPs' step; --net {args.net} trains with "
                         "its own, eager step: use --compile auto or off")  # fmt: skip
    for key, value in defaults.items():
        if key != "epochs" and getattr(args, key, None) is None and key not in given:
            setattr(args, key, value)


def net_inputs(args: argparse.Namespace, x: np.ndarray) -> np.ndarray:
    """The images ``x`` (N, 28, 28) shaped as ``--net`` takes them; sets a conv net's
    default ``iters`` (20 epochs of these rows) when none was given."""
    if args.iters is None:
        epoch = max(len(x) // args.batch_size, 1)
        args.iters = NETS[args.net]["epochs"] * epoch
    if args.net == "mlp":
        return x.reshape(len(x), -1)
    return x.reshape(len(x), 1, *x.shape[1:])


def build_net(args: argparse.Namespace, backend: Backend, input_shape: tuple[int, ...]) -> Any:
    """A new net of ``--net`` with its flags, weights drawn from ``--seed``."""
    if args.net == "simple-convnet":
        return SimpleConvNet(input_shape, hidden_size=args.hidden_size,
                             weight_init_std=args.weight_init_std, backend=backend,
                             seed=args.seed)  # fmt: skip
    if args.net == "deep-convnet":
        return DeepConvNet(input_shape, hidden_size=args.hidden_size, backend=backend,
                           seed=args.seed)  # fmt: skip
    input_size = input_shape[0]
    if args.hidden_sizes and len(args.hidden_sizes) > 1:
        return MultiLayerNet(input_size, list(args.hidden_sizes), 10, activation=args.activation,
                             weight_init_std=args.weight_init_std,
                             weight_decay_lambda=args.weight_decay, backend=backend,
                             seed=args.seed)  # fmt: skip
    hidden = args.hidden_sizes[0] if args.hidden_sizes else args.hidden_size
    return TwoLayerNet(input_size, hidden, 10, args.weight_init_std, backend=backend,
                       seed=args.seed, activation=args.activation,
                       weight_decay_lambda=args.weight_decay)  # fmt: skip
