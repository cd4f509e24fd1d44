"""The chapter's mini-batch training loop, without host syncs inside it.

The data goes to the device once. Batch indices come from a seeded host RNG (the same on
every backend), one epoch's worth at a time. Per-step losses stay on the device and are
read back once per epoch, together with the train and test accuracies.
"""

from __future__ import annotations

import math
import numbers
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from ._array import one_hot
from .backends import dtype_name, to_numpy
from .nets import TwoLayerNet, sgd_update
from .numerical import PrecisionWarning

__all__ = ["TrainHistory", "TrainingDivergedError", "train"]


class TrainingDivergedError(FloatingPointError):
    """The loss became NaN or infinite; the message names the first bad step."""


@dataclass
class TrainHistory:
    """What a training run recorded.

    Attributes
    ----------
    loss : list of float
        Mini-batch loss of every step (before that step's update).
    train_acc, test_acc : list of float
        Accuracy on the whole train / test set at each evaluation.
    eval_steps : list of int
        The step (0-based) after which each evaluation ran.
    loop_seconds : float
        Wall time of the loop, evaluations included, device synchronized at the end.
    """

    loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    loop_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def train(
    net: TwoLayerNet,
    x_train: Any,
    t_train: Any,
    x_test: Any = None,
    t_test: Any = None,
    *,
    iters: int = 10_000,
    batch_size: int = 100,
    lr: float = 0.1,
    seed: int | None = 0,
    gradient: str = "backprop",
    eval_interval: int | None = None,
    progress: bool = False,
    on_epoch: Callable[[TrainHistory], None] | None = None,
) -> TrainHistory:
    """Mini-batch SGD as in the chapter's train_neuralnet.py.

    Parameters
    ----------
    net : TwoLayerNet
        Trained in place (``net.params`` are updated).
    x_train : array, shape (N, D)
        Host or device array. ``uint8`` pixels are kept as bytes on the device and scaled
        by 1/255 per batch, which keeps memory small; floating data is used as it is.
    t_train : array, shape (N,) integer labels or (N, C) one-hot
    x_test, t_test : arrays, optional
        Evaluated with the train set at every evaluation.
    iters, batch_size, lr : int, int, float
        The chapter's 10000, 100, 0.1.
    seed : int, optional
        Seed of the host RNG that draws the batches (with replacement, as the chapter's
        ``np.random.choice``).
    gradient : {"backprop", "numerical"}
        ``"numerical"`` is the chapter's commented-out line: slow, and only meaningful in
        float64 (a :class:`PrecisionWarning` is given once otherwise).
    eval_interval : int, optional
        Steps between evaluations; default one epoch, ``max(N // batch_size, 1)``. The
        first evaluation follows step 0, as in the chapter.
    progress : bool
        Show a progress bar (tqdm) with the loss and latest accuracies.
    on_epoch : callable, optional
        Called with the history after every evaluation.

    Returns
    -------
    TrainHistory

    Raises
    ------
    TrainingDivergedError
        At the first read-back after the loss became NaN or infinite.
    """
    _check_args(x_train, t_train, x_test, t_test, iters, batch_size, lr, gradient)
    _check_labels(net, t_train, "t_train")
    if t_test is not None:
        _check_labels(net, t_test, "t_test")
    if eval_interval is not None and (int(eval_interval) != eval_interval or eval_interval < 1):
        raise ValueError(f"eval_interval must be a positive integer, got {eval_interval!r}")
    b = net.backend
    xp = b.xp
    n_train = int(x_train.shape[0])
    interval = eval_interval or max(n_train // batch_size, 1)
    if gradient == "numerical" and dtype_name(net.dtype) != "float64":
        warnings.warn(
            f"training with numerical gradients in {dtype_name(net.dtype)}: use float64",
            PrecisionWarning,
            stacklevel=2,
        )

    # Data to the device once; uint8 pixels stay uint8 (4x less memory than float32).
    x_dev = b.asarray(x_train)
    t_dev = b.asarray(t_train)
    # One-hot training targets once, so no step has to build them.
    if t_dev.ndim == 2:
        t_hot = xp.astype(t_dev, net.dtype) if t_dev.dtype != net.dtype else t_dev
    else:
        t_hot = one_hot(t_dev, net.sizes[2], net.dtype, xp)
    test = None if x_test is None else (b.asarray(x_test), b.asarray(t_test))
    scale = 1.0 / 255.0 if _is_uint8(x_train) else None
    rng = np.random.default_rng(seed)
    history = TrainHistory()
    pending: list[Any] = []  # per-step losses still on the device

    def batch_of(rows: Any) -> tuple[Any, Any]:
        xb = xp.take(x_dev, rows, axis=0)
        xb = xp.astype(xb, net.dtype) if xb.dtype != net.dtype else xb
        return xb, xp.take(t_hot, rows, axis=0)

    from ._progress import progress as bar_factory

    bar = bar_factory(total=iters, disable=not progress, unit="step", desc="train")
    start = time.perf_counter()
    with bar, warnings.catch_warnings():
        warnings.simplefilter("ignore", PrecisionWarning)  # warned once above
        step = 0
        while step < iters:
            # One host->device copy of the next chunk of batch indices (at most an epoch).
            chunk = min(interval - step % interval, iters - step)
            idx = b.asarray(rng.integers(0, n_train, size=(chunk, batch_size)))
            for i in range(chunk):
                xb, tb = batch_of(idx[i, ...])
                if gradient == "backprop":
                    loss = net.sgd_step(xb, tb, lr, scale=scale)
                else:
                    xb = xb * scale if scale is not None else xb
                    loss = net.loss(xb, tb)
                    sgd_update(net.params, net.numerical_gradient(xb, tb), lr)
                pending.append(loss)
                if (step + i) % interval == 0:
                    _evaluate(net, history, step + i, pending, x_dev, t_dev, test, scale)
                    bar.set_postfix_str(_postfix(history), refresh=False)
                    if on_epoch is not None:
                        on_epoch(history)
            step += chunk
            bar.update(chunk)
        _read_losses(history, pending)
        b.synchronize()
    history.loop_seconds = time.perf_counter() - start
    return history


def _evaluate(
    net: TwoLayerNet,
    history: TrainHistory,
    step: int,
    pending: list[Any],
    x_dev: Any,
    t_dev: Any,
    test: tuple[Any, Any] | None,
    scale: float | None,
) -> None:
    _read_losses(history, pending)
    history.eval_steps.append(step)
    history.train_acc.append(_accuracy(net, x_dev, t_dev, scale))
    if test is not None:
        history.test_acc.append(_accuracy(net, *test, scale))


def _read_losses(history: TrainHistory, pending: list[Any]) -> None:
    """The one device->host read of the losses since the last evaluation."""
    if not pending:
        return
    values = _host(array_namespace(pending[0]).stack(pending))
    first = len(history.loss)
    history.loss.extend(float(v) for v in values)
    pending.clear()
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        where = first + int(bad[0])
        raise TrainingDivergedError(
            f"loss became {values[bad[0]]} at step {where}; "
            "the learning rate is probably too large: try a smaller --lr"
        )


def _accuracy(net: TwoLayerNet, x: Any, t: Any, scale: float | None) -> float:
    """Accuracy over a whole set: chunks on the device, one read-back."""
    return int(_host(net.correct_total(x, t, scale=scale))) / int(x.shape[0])


def _postfix(h: TrainHistory) -> str:
    parts = [f"loss={h.loss[-1]:.4f}"] if h.loss else []
    if h.train_acc:
        parts.append(f"train={h.train_acc[-1]:.4f}")
    if h.test_acc:
        parts.append(f"test={h.test_acc[-1]:.4f}")
    return " ".join(parts)


def _host(x: Any) -> np.ndarray:
    """Every device->host read of the loop goes through here (tests count them)."""
    return to_numpy(x)


def _is_uint8(x: Any) -> bool:
    return "uint8" in str(x.dtype)


def _check_args(x_train, t_train, x_test, t_test, iters, batch_size, lr, gradient) -> None:
    if gradient not in ("backprop", "numerical"):
        raise ValueError(f"gradient must be 'backprop' or 'numerical', got {gradient!r}")
    if int(iters) != iters or iters < 1:
        raise ValueError(f"iters must be a positive integer, got {iters!r}")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not (isinstance(lr, numbers.Real) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    if int(x_train.shape[0]) == 0:
        raise ValueError("the training set is empty")
    if int(x_train.shape[0]) != int(t_train.shape[0]):
        raise ValueError(f"x_train has {x_train.shape[0]} rows but t_train has {t_train.shape[0]}")
    if (x_test is None) != (t_test is None):
        raise ValueError("give both x_test and t_test, or neither")
    if x_test is not None and int(x_test.shape[0]) != int(t_test.shape[0]):
        raise ValueError(f"x_test has {x_test.shape[0]} rows but t_test has {t_test.shape[0]}")


def _check_labels(net: TwoLayerNet, t: Any, name: str) -> None:
    """Labels outside 0..C-1 would become all-zero one-hot rows and a silently wrong loss.

    Checked once, before the loop (a single read-back when the labels are on a device).
    """
    if t.ndim != 1:
        return
    host = to_numpy(t)
    classes = net.sizes[2]
    if not np.issubdtype(host.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class labels, got dtype {host.dtype}")
    if host.size and (host.min() < 0 or host.max() >= classes):
        raise ValueError(
            f"{name} has labels from {host.min()} to {host.max()}, but the net has "
            f"{classes} outputs: labels must be 0..{classes - 1}"
        )
