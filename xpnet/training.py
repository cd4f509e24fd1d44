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
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from array_api_compat import array_namespace, is_writeable_array

from ._array import itemsize, one_hot
from ._progress import progress as progress_bar
from ._threads import blas_threads
from .backends import to_numpy
from .numerical import PrecisionWarning, resolve_step
from .optimizers import SGD, Optimizer, hyper_on_device
from .scaling import input_scale

__all__ = [
    "GRADIENT_MODES",
    "DivergenceWarning",
    "TrainHistory",
    "TrainingDivergedError",
    "train",
]


#: A run "diverged" when its mean loss since the last evaluation is this many times the
#: loss of its first step (a working run's loss falls from there).
RUNAWAY_FACTOR = 3.0

#: Options of :func:`train`'s ``gradient``.
GRADIENT_MODES = ("backprop", "numerical")

#: Bytes of input batches gathered at once: one gather (and cast) serves a block of steps,
#: which on a GPU is one kernel launch where one per step would be 9 (the chapter's recipe,
#: uint8 pixels cast to float32: 26 steps per block).
BATCH_BLOCK_BYTES = 10 * 2**20


class TrainingDivergedError(FloatingPointError):
    """The loss became NaN or infinite; the message names the first bad step."""


class DivergenceWarning(RuntimeWarning):
    """The loss climbed far above where it started (the run goes on)."""


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
    diverged : bool
        The loss became NaN/inf or ran far above where it started.
    input_scale : float or None
        What the inputs were multiplied by (1/255 for ``uint8`` pixels, see
        :mod:`xpnet.scaling`), None when they were used as they are.
    """

    loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    loop_seconds: float = 0.0
    diverged: bool = False
    input_scale: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def train(
    net: Any,
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
    optimizer: Optimizer | None = None,
    history: TrainHistory | None = None,
) -> TrainHistory:
    """Mini-batch training as in the chapter's train_neuralnet.py.

    Parameters
    ----------
    net : TwoLayerNet, MultiLayerNet or any net with ``params``, ``backend``, ``dtype``,
        ``output_size``, ``loss_and_gradient(x, t, scale=, step=)``,
        ``correct_total(x, t, scale=)`` (and ``loss``/``numerical_gradient`` for
        ``gradient="numerical"``). Trained in place (``net.params`` are updated).
    x_train : array, shape (N, D)
        Host or device array. ``uint8`` pixels are kept as bytes on the device and scaled
        where they meet the first layer (:mod:`xpnet.scaling`); floating data is used as
        it is.
    t_train : array, shape (N,) integer labels or (N, C) one-hot
    x_test, t_test : arrays, optional
        Evaluated with the train set at every evaluation.
    iters, batch_size, lr : int, int, float
        The chapter's 10000, 100, 0.1. ``lr`` is the learning rate of the default
        optimizer (SGD) and ignored when ``optimizer`` is given.
    seed : int, optional
        Seed of the host RNG that draws the batches (with replacement, as the chapter's
        ``np.random.choice``).
    gradient : {"backprop", "numerical"}
        ``"numerical"`` is the chapter's commented-out line: slow, and only meaningful in
        float64 (a :class:`PrecisionWarning` is given once otherwise).
    eval_interval : int, optional
        Steps between evaluations; default one epoch, ``max(N // batch_size, 1)``. The
        first evaluation follows step 0, as in the chapter, and the last follows the last
        step, so the final accuracies are of the final parameters.
    progress : bool
        Show a progress bar (tqdm) with the loss and latest accuracies.
    on_epoch : callable, optional
        Called with the history after every evaluation.
    optimizer : xpnet.optimizers.Optimizer, optional
        Default ``SGD(lr)``, whose update is folded into the backward pass.
    history : TrainHistory, optional
        The history of an earlier part of this run (same seed, data and
        ``eval_interval``; net and optimizer restored to where it stopped): training
        resumes at step ``len(history.loss)``, draws the same batches an uninterrupted
        run would, and extends ``history``.

    Returns
    -------
    TrainHistory

    Raises
    ------
    TrainingDivergedError
        At the first read-back after the loss became NaN or infinite.

    Warns
    -----
    DivergenceWarning
        Once, at the evaluation where the mean loss since the previous one is more than
        :data:`RUNAWAY_FACTOR` times the first step's (``history.diverged`` is set).
    """
    _check_args(x_train, t_train, x_test, t_test, iters, batch_size, lr, gradient)
    _check_labels(net, t_train, "t_train")
    if t_test is not None:
        _check_labels(net, t_test, "t_test")
    if eval_interval is not None and (int(eval_interval) != eval_interval or eval_interval < 1):
        raise ValueError(f"eval_interval must be a positive integer, got {eval_interval!r}")
    history = TrainHistory() if history is None else history
    start_step = len(history.loss)
    if start_step > iters:
        raise ValueError(f"history already has {start_step} steps, more than iters={iters}")
    b = net.backend
    xp = b.xp
    n_train = int(x_train.shape[0])
    interval = eval_interval or max(n_train // batch_size, 1)
    if gradient == "numerical":
        resolve_step(next(iter(net.params.values())))  # the precision warning, once, here
    sgd_lr = _folded_lr(optimizer, lr, net.params)
    if optimizer is None and sgd_lr is None:
        optimizer = SGD(lr)

    # Data to the device once; uint8 pixels stay uint8 (4x less memory than float32).
    x_dev = b.asarray(x_train)
    t_dev = b.asarray(t_train)
    # One-hot training targets once, so no step has to build them.
    if t_dev.ndim == 2:
        t_hot = xp.astype(t_dev, net.dtype) if t_dev.dtype != net.dtype else t_dev
    else:
        t_hot = one_hot(t_dev, net.output_size, net.dtype, xp)
    test = None if x_test is None else (b.asarray(x_test), b.asarray(t_test))
    scale = history.input_scale = input_scale(x_dev)
    pending: list[Any] = []  # per-step losses still on the device
    in_place = is_writeable_array(next(iter(net.params.values())))

    def one_step(xb: Any, tb: Any) -> Any:
        if gradient == "numerical":
            xf = xb * scale if scale is not None else xb
            loss = net.loss(xf, tb)
            grads = net.numerical_gradient(xf, tb)
            (optimizer or SGD(sgd_lr)).update(net.params, grads)
            return loss
        if sgd_lr is not None:  # SGD: lr folded into backprop, one subtraction each
            loss, steps = net.loss_and_gradient(xb, tb, scale=scale, step=sgd_lr)
            for k, g in steps.items():
                if in_place:
                    net.params[k] -= g
                else:
                    net.params[k] = net.params[k] - g
            return loss
        loss, grads = net.loss_and_gradient(xb, tb, scale=scale)
        optimizer.update(net.params, grads)
        return loss

    bar = progress_bar(total=iters, initial=start_step, disable=not progress, unit="step",
                       desc="train")  # fmt: skip
    start = time.perf_counter()
    with bar, warnings.catch_warnings():
        warnings.simplefilter("ignore", PrecisionWarning)  # warned once above
        for first, idx_host in batch_chunks(seed, n_train, batch_size, interval, iters,
                                            start_step):  # fmt: skip
            batches = batch_blocks(x_dev, t_hot, b.asarray(idx_host), net.dtype)
            # BLAS threads decided per epoch by what else the machine is doing: every core
            # when it is idle, one when another process competes (see xpnet._threads)
            with blas_threads():
                for i, (xb, tb) in enumerate(batches):
                    step = first + i
                    pending.append(one_step(xb, tb))
                    if step % interval == 0 or step == iters - 1:
                        _evaluate(net, history, step, pending, x_dev, t_dev, test, scale)
                        bar.set_postfix_str(_postfix(history), refresh=False)
                        if on_epoch is not None:
                            on_epoch(history)
            bar.update(idx_host.shape[0])
        _read_losses(history, pending)
        b.synchronize()
    history.loop_seconds += time.perf_counter() - start
    return history


def batch_chunks(
    seed: int | None, n_train: int, batch_size: int, interval: int, iters: int, start: int = 0
) -> Iterator[tuple[int, np.ndarray]]:
    """The batch indices of every step, one host draw per evaluation interval.

    Yields ``(first_step, indices)`` with ``indices`` of shape (steps, batch_size). The
    draws depend only on the arguments (not on ``start``): steps before ``start`` are
    drawn and dropped, so a resumed run sees the batches of an uninterrupted one.
    """
    rng = np.random.default_rng(seed)
    step = 0
    while step < iters:
        chunk = min(interval - step % interval, iters - step)
        idx = rng.integers(0, n_train, size=(chunk, batch_size))
        if step + chunk > start:
            skip = max(0, start - step)
            yield step + skip, idx[skip:, ...]
        step += chunk


def batch_blocks(
    x: Any, t: Any, rows: Any, dtype: Any, *, max_bytes: int = BATCH_BLOCK_BYTES
) -> Iterator[tuple[Any, Any]]:
    """Each step's batch, gathered a block of steps at a time.

    Parameters
    ----------
    x : array (N, D) or (N, C, H, W)
        The inputs on the device, any dtype (``uint8`` pixels stay bytes until here).
    t : array (N, C)
        One-hot targets on the device.
    rows : integer array (S, B) or (S, K, B), on the device
        The rows of each of S steps: one batch, or one per model.
    dtype
        The floating dtype of the batches.
    max_bytes : int
        Bytes of batches gathered at once, the copy before the cast included (at least
        one step's).

    Yields
    ------
    (xb, tb) : arrays (B, D) and (B, C), or (K, B, D) and (K, B, C), per step
        Views of the block's one gathered copy.
    """
    xp = array_namespace(x)
    steps, shape = int(rows.shape[0]), tuple(int(v) for v in rows.shape[1:])
    block = min(steps, steps_per_block(x, t, math.prod(shape), dtype, max_bytes))
    for start in range(0, steps, block):
        n = min(block, steps - start)
        r = xp.reshape(rows[start : start + n, ...], (-1,))
        xb = xp.take(x, r, axis=0)
        xb = xp.astype(xb, dtype) if xb.dtype != dtype else xb
        xb = xp.reshape(xb, (n, *shape, *(int(v) for v in x.shape[1:])))
        tb = xp.reshape(xp.take(t, r, axis=0), (n, *shape, int(t.shape[1])))
        for i in range(n):
            yield xb[i, ...], tb[i, ...]


def steps_per_block(
    x: Any, t: Any, rows: int, dtype: Any, max_bytes: int = BATCH_BLOCK_BYTES
) -> int:
    """How many steps of ``rows`` rows :func:`batch_blocks` gathers at once (at least 1):
    as many as fit ``max_bytes`` with the batches in ``dtype``, their targets, and the
    gathered copy before the cast when ``x`` is of another dtype."""
    xp = array_namespace(x)
    row = math.prod(int(v) for v in x.shape[1:]) * (
        itemsize(dtype, xp) + (itemsize(x.dtype, xp) if x.dtype != dtype else 0)
    )
    per_step = rows * (row + int(t.shape[1]) * itemsize(t.dtype, xp))
    return max(1, int(max_bytes) // per_step)


def _folded_lr(optimizer: Optimizer | None, lr: float, params: dict[str, Any]) -> Any:
    """The learning rate to fold into backprop when the update is plain SGD, else None."""
    if optimizer is None:
        return lr
    if type(optimizer) is SGD:
        return hyper_on_device(optimizer.hyper["lr"], next(iter(params.values())))
    return None


def _evaluate(
    net: Any,
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
    _check_runaway(history)


def _check_runaway(history: TrainHistory) -> None:
    """Warn once when the loss since the last evaluation runs far above the first one."""
    if history.diverged or len(history.loss) < 2:
        return
    since = history.eval_steps[-2] + 1 if len(history.eval_steps) > 1 else 0
    recent = float(np.mean(history.loss[since:]))
    if is_runaway(history.loss[0], recent):
        history.diverged = True
        warnings.warn(
            f"the loss ran away: mean {recent:.3g} since the last evaluation against "
            f"{history.loss[0]:.3g} at the first step (step {history.eval_steps[-1]}); "
            "the learning rate is probably too large: try a smaller lr",
            DivergenceWarning,
            stacklevel=4,
        )


def is_runaway(first: Any, recent: Any) -> Any:
    """Whether a mean loss ``recent`` is far above the first step's loss (elementwise)."""
    return recent > RUNAWAY_FACTOR * first


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
        history.diverged = True
        raise TrainingDivergedError(
            f"loss became {values[bad[0]]} at step {where}; "
            "the learning rate is probably too large: try a smaller lr"
        )


def _accuracy(net: Any, x: Any, t: Any, scale: float | None) -> float:
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


def _check_args(x_train, t_train, x_test, t_test, iters, batch_size, lr, gradient) -> None:
    if gradient not in GRADIENT_MODES:
        raise ValueError(f"gradient must be one of {GRADIENT_MODES}, got {gradient!r}")
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


def _check_labels(net: Any, t: Any, name: str) -> None:
    """Labels outside 0..C-1 would become all-zero one-hot rows and a silently wrong loss.

    Checked once, before the loop (a single read-back when the labels are on a device).
    """
    if t.ndim != 1:
        return
    host = to_numpy(t)
    classes = net.output_size
    if not np.issubdtype(host.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class labels, got dtype {host.dtype}")
    if host.size and (host.min() < 0 or host.max() >= classes):
        raise ValueError(
            f"{name} has labels from {host.min()} to {host.max()}, but the net has "
            f"{classes} outputs: labels must be 0..{classes - 1}"
        )
