"""The chapter's mini-batch training loop, without host syncs inside it.

The data goes to the device once. Batch indices come from a seeded host RNG (the same on
every backend), one epoch's worth at a time. Per-step losses stay on the device and are
read back once per epoch, together with the train and test accuracies.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from array_api_compat import array_namespace, is_writeable_array

from ._array import labels_of, one_hot
from ._checks import check_labels, check_run_args
from ._progress import progress as progress_bar
from ._threads import blas_threads
from ._warmup import warm_up
from .backends import to_numpy
from .batches import batch_blocks, batch_chunks
from .numerical import PrecisionWarning, resolve_step
from .optimizers import SGD, Optimizer, hyper_on_device
from .scaling import input_scale
from .step import net_stepper
from .train_history import TrainHistory
from .validation import EarlyStopping, check_validation, restore, snapshot, split_validation

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


class TrainingDivergedError(FloatingPointError):
    """The loss became NaN or infinite; the message names the first bad step."""


class DivergenceWarning(RuntimeWarning):
    """The loss climbed far above where it started (the run goes on)."""


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
    validation: float | None = None,
    patience: int | None = None,
    stop: Callable[[], bool] | None = None,
    eval_sample: int | None = None,
    compile: bool | str = False,
) -> TrainHistory:
    """Mini-batch training as in the chapter's train_neuralnet.py.

    Parameters
    ----------
    net : TwoLayerNet, MultiLayerNet or any net with ``params``, ``backend``, ``dtype``,
        ``output_size``, ``loss_and_gradient(x, t, scale=, step=)``,
        ``correct_total(x, t, scale=)``, ``totals(x, t, scale=)`` for ``validation``
        (and ``loss``/``numerical_gradient`` for ``gradient="numerical"``). Trained in
        place (``net.params`` are updated).
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
    stop : callable, optional
        Asked after every step; True ends the run there, its history and parameters those
        of that step (resumable with ``history``).
    validation : float, optional
        Hold out this fraction of the training rows (:func:`xpnet.validation.split_validation`,
        the same rows for every run) and evaluate on them at every evaluation
        (``val_acc``, ``val_loss``); the test set is then evaluated once, at the end
        (``final_test_acc``). Batches are drawn from the remaining rows.
    eval_sample : int, optional
        Evaluate the accuracies on the first this-many train and test rows only (the
        book's ``evaluate_sample_num_per_epoch``: a conv net's pass over a whole set costs
        as much as many steps); the validation rows are always used whole.
    patience : int, optional
        Early stopping (needs ``validation``): stop once this many evaluations in a row
        did not beat the best validation score (higher accuracy, ties broken by lower
        loss); the net and optimizer end holding the state of the best evaluation
        (``history.best_step``), also when the run goes to the last step.
    compile : {False, True, "auto"}
        Compile the training step (:mod:`xpnet.step`: ``jax.jit``, ``torch.compile``),
        ``"auto"`` where it was measured to pay (JAX). Affine-layer nets only
        (``TwoLayerNet``, ``MultiLayerNet``), ``gradient="backprop"``; True elsewhere is
        an error. On JAX the compiled step consumes the previous parameter arrays: keep
        ``net.params``, not arrays taken from it earlier.

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
    if gradient not in GRADIENT_MODES:
        raise ValueError(f"gradient must be one of {GRADIENT_MODES}, got {gradient!r}")
    check_run_args(x_train, t_train, x_test, t_test, iters=iters, batch_size=batch_size, lr=lr)
    check_labels(t_train, "t_train", net.output_size)
    if t_test is not None:
        check_labels(t_test, "t_test", net.output_size)
    check_validation(validation, patience, int(x_train.shape[0]))
    if validation is not None:
        x_train, t_train, x_val, t_val = split_validation(x_train, t_train, validation)
    for name, value in (("eval_interval", eval_interval), ("eval_sample", eval_sample)):
        if value is not None and (isinstance(value, bool) or int(value) != value or value < 1):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
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
    sample = _first_rows(eval_sample)
    train_eval = sample(x_dev), sample(t_dev)
    test_eval = None if test is None else (sample(test[0]), sample(test[1]))
    val = None if validation is None else (b.asarray(x_val), labels_of(b.asarray(t_val)))
    scale = history.input_scale = input_scale(x_dev)
    stopper = best = None
    if patience is not None:
        stopper = EarlyStopping.from_history(history, patience)
        if history.eval_steps and not history.val_acc:
            raise ValueError("history has no validation scores to stop early on: resume "
                             "with the validation it was trained with")  # fmt: skip
        if history.eval_steps and stopper.best_step[0] != history.eval_steps[-1]:
            raise ValueError(
                "history's best validation score is not its last evaluation: resume early "
                "stopping from the state of its best evaluation (a checkpoint saved there)"
            )
        best = snapshot(net.params, optimizer)
    pending: list[Any] = []  # per-step losses still on the device
    in_place = is_writeable_array(next(iter(net.params.values())))
    stepper = net_stepper(net, optimizer, lr, scale=scale, compile=compile,
                          numerical=gradient == "numerical")  # fmt: skip

    def one_step(xb: Any, tb: Any) -> Any:
        if gradient == "numerical":
            xf = xb * scale if scale is not None else xb
            loss = net.loss(xf, tb)
            grads = net.numerical_gradient(xf, tb)
            (optimizer or SGD(sgd_lr)).update(net.params, grads)
            return loss
        if stepper is not None:  # affine-layer nets: the one step function, maybe compiled
            return stepper(net.params, xb, tb)
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

    if (b.warms_up or getattr(stepper, "compiled", False)) and gradient == "backprop":
        with blas_threads(backend=b):  # the loop's threads: a compiled step guards on them
            history.warmup_seconds += warm_up(
                b,
                net,
                optimizer,
                one_step,
                lambda rows: batch_blocks(x_dev, t_hot, rows, net.dtype),
                x_dev,
                t_dev,
                batch_size,
                scale,
            )
    bar = progress_bar(total=iters, initial=start_step, disable=not progress, unit="step",
                       desc="train")  # fmt: skip
    compile_before = 0.0 if stepper is None else stepper.compile_seconds
    if stepper is not None and stepper.compiled:  # the evaluations' forward compiled too
        count = lambda x, t: stepper.correct_total(net.params, x, t)  # noqa: E731
    else:
        count = lambda x, t: net.correct_total(x, t, scale=scale)  # noqa: E731
    start = time.perf_counter()
    with bar, warnings.catch_warnings():
        warnings.simplefilter("ignore", PrecisionWarning)  # warned once above
        for first, idx_host in batch_chunks(seed, n_train, batch_size, interval, iters,
                                            start_step):  # fmt: skip
            batches = batch_blocks(x_dev, t_hot, b.asarray(idx_host), net.dtype)
            # CPU threads decided per epoch by what else the machine is doing: every core
            # when it is idle, one when another process competes (see xpnet._threads)
            with blas_threads(backend=b):
                for i, (xb, tb) in enumerate(batches):
                    step = first + i
                    pending.append(one_step(xb, tb))
                    if step % interval == 0 or step == iters - 1:
                        _evaluate(count, history, step, pending, *train_eval,
                                  None if val is not None else test_eval)  # fmt: skip
                        if val is not None:
                            _validate(net, history, val, scale)
                        if stopper is not None:
                            up, out = stopper.update([0], history.val_acc[-1:],
                                                     history.val_loss[-1:], step)  # fmt: skip
                            if up[0]:
                                best, history.best_step = snapshot(net.params, optimizer), step
                            elif out[0]:
                                history.stopped_step = step
                        bar.set_postfix_str(_postfix(history), refresh=False)
                        if on_epoch is not None:
                            on_epoch(history)
                        if history.stopped_step is not None:
                            break
                    if stop is not None and stop():
                        break
            bar.update(i + 1)
            if history.stopped_step is not None or (stop is not None and stop()):
                break
        _read_losses(history, pending)
        if best is not None:  # the best evaluation's state is what the run hands over
            restore(best, net.params, optimizer)
        if val is not None and test is not None:
            history.final_test_acc = _accuracy(count, *test)
        b.synchronize()
    history.loop_seconds += time.perf_counter() - start
    if stepper is not None:  # a recompilation inside the loop is not training time
        history.loop_seconds -= stepper.compile_seconds - compile_before
        history.compile_seconds += stepper.compile_seconds
        history.compiles += stepper.compiles
    return history


def _first_rows(n: int | None) -> Callable[[Any], Any]:
    """``a[:n]`` (everything without ``n``): the rows an evaluation sample scores."""
    return (lambda a: a) if n is None else (lambda a: a[: min(n, int(a.shape[0])), ...])


def _folded_lr(optimizer: Optimizer | None, lr: float, params: dict[str, Any]) -> Any:
    """The learning rate to fold into backprop when the update is plain SGD, else None."""
    if optimizer is None:
        return lr
    if type(optimizer) is SGD:
        return hyper_on_device(optimizer.hyper["lr"], next(iter(params.values())))
    return None


def _evaluate(
    count: Callable[[Any, Any], Any],
    history: TrainHistory,
    step: int,
    pending: list[Any],
    x_dev: Any,
    t_dev: Any,
    test: tuple[Any, Any] | None,
) -> None:
    _read_losses(history, pending)
    history.eval_steps.append(step)
    history.train_acc.append(_accuracy(count, x_dev, t_dev))
    if test is not None:
        history.test_acc.append(_accuracy(count, *test))
    _check_runaway(history)


def _validate(net: Any, history: TrainHistory, val: tuple[Any, Any], scale: float | None) -> None:
    """Accuracy and mean loss on the validation rows."""
    correct, loss = net.totals(val[0], val[1], scale=scale)
    n = int(val[0].shape[0])
    history.val_acc.append(int(_host(correct)) / n)
    history.val_loss.append(float(_host(loss)) / n)


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
        hint = (  # step 0's loss comes before any update: the learning rate played no part
            "before any update, so not the learning rate: the initial weights are too "
            "large (a smaller weight_init_std)" if where == 0
            else "the learning rate is probably too large: try a smaller lr"
        )  # fmt: skip
        raise TrainingDivergedError(f"loss became {values[bad[0]]} at step {where}; {hint}")


def _accuracy(count: Callable[[Any, Any], Any], x: Any, t: Any) -> float:
    """Accuracy over a whole set from ``count(x, t)`` (chunks on the device): one read-back."""
    return int(_host(count(x, t))) / int(x.shape[0])


def _postfix(h: TrainHistory) -> str:
    parts = [f"loss={h.loss[-1]:.4f}"] if h.loss else []
    if h.train_acc:
        parts.append(f"train={h.train_acc[-1]:.4f}")
    if h.val_acc:
        parts.append(f"val={h.val_acc[-1]:.4f}")
    if h.test_acc:
        parts.append(f"test={h.test_acc[-1]:.4f}")
    return " ".join(parts)


def _host(x: Any) -> np.ndarray:
    """Every device->host read of the loop goes through here (tests count them)."""
    return to_numpy(x)
