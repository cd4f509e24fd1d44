"""One stackable group of configs trained as one model with a leading model axis."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._threads import blas_threads
from ..backends import to_numpy
from ..batches import batch_blocks, batch_chunks
from ..evaluation import set_totals
from ..nets import init_params
from ..optimizers import OPTIMIZERS, SGD
from ..scaling import input_scale
from ..step import Stepper, compile_wanted
from ..training import is_runaway
from ..validation import EarlyStopping
from .arrays import (
    host_copy,
    member_optimizer_state,
    member_params,
    per_model,
    per_model_take,
    stack_params,
    take_models,
    to_device,
)
from .configs import normalize
from .device import DeviceData
from .plan import stack_key
from .records import SweepRecord


class StackedGroup:
    """K normalized configs (same layer sizes, activation, optimizer) as one model.

    Row r of every stacked array is the model of config ``members[r]``. A diverged row,
    or one whose validation score ran out of ``patience``, is frozen in place
    (:meth:`freeze`) while the others train on; :meth:`cut` drops rows (successive
    halving's decisions, made by the caller across all stacks of a sweep). Each member
    computes what :func:`xpnet.train` computes for its config alone, ``validation`` and
    ``patience`` included.

    Training goes in segments: :meth:`train_to` runs to an evaluation step and returns,
    and the next call goes on from there; between calls the stack may wait on the host
    (:meth:`park`) while other stacks use the device.

    Parameters
    ----------
    configs : list of dict
        The group's configs (normalized here).
    data : DeviceData
        The data set on the device the stack trains on (with its validation rows, if any).
    iters, batch_size, eval_interval
        As for :func:`xpnet.train`.
    patience : int, optional
        Early stopping per member (needs ``data.val``), as :func:`xpnet.train`'s.
    keep_params : bool
        Hand each member's final parameters and optimizer state to its record
        (:attr:`SweepRecord.params`): the best evaluation's with ``patience``.
    compile : {False, True, "auto"}
        Compile the stack's step, as :func:`xpnet.train`'s ``compile``.
    """

    def __init__(
        self,
        configs: list[dict[str, Any]],
        data: DeviceData,
        *,
        iters: int,
        batch_size: int,
        eval_interval: int | None = None,
        patience: int | None = None,
        keep_params: bool = False,
        compile: bool | str = False,
    ) -> None:
        b = self.backend = data.backend
        self.xp, self.data = b.xp, data
        configs = [normalize(c) for c in configs]
        first = configs[0]
        if any(stack_key(c) != stack_key(first) for c in configs):
            raise ValueError("run_group: configs differ in layer sizes, activation or optimizer")
        if patience is not None and data.val is None:
            raise ValueError("patience needs validation rows: give a validation fraction too")
        k = len(configs)
        n_train = int(data.x.shape[0])
        self.sizes = (int(data.x.shape[1]), *first["hidden_sizes"], data.classes)
        self.iters, self.batch_size = iters, batch_size
        self.interval = eval_interval or max(n_train // batch_size, 1)
        self.activation, self.dtype = first["activation"], b.float_dtype
        self.keep_params = bool(keep_params)

        # Each member's initial weights, exactly as its own net would draw them.
        hosts = [init_params(self.sizes, c["weight_init_std"], c["seed"]) for c in configs]
        self.params = stack_params(hosts, b, self.dtype)
        like = self.params["W1"]
        self.weight_decay = per_model([c["weight_decay"] for c in configs], like, b)
        self.opt_cls = OPTIMIZERS[first["optimizer"]]
        hyper = {h: per_model([c[h] for c in configs], like, b) for h in self.opt_cls.HYPER}
        self.optimizer = self.opt_cls(**hyper)
        self.sgd_lr = hyper["lr"] if self.opt_cls is SGD else None
        self.scale = input_scale(data.x)
        self.stepper = Stepper(b, self.activation, self.optimizer, scale=self.scale,
                               compile=compile_wanted(compile, b))  # fmt: skip
        self.active = self.xp.ones((k, 1, 1), dtype=self.xp.bool, device=b.device)

        seeds = sorted({c["seed"] for c in configs})
        # Every seed's stream keeps drawing after its configs stopped, as the draws of one
        # interval come from one host call; only the rows of running members are gathered.
        streams = [batch_chunks(s, n_train, batch_size, self.interval, iters) for s in seeds]
        self._chunks = zip(*streams, strict=True)
        self._current: tuple[tuple, int] | None = None  # the chunk under way, steps done

        self.records = [SweepRecord(dict(c)) for c in configs]
        #: ``members[r]``: the config of row r (increasing: config order).
        self.members = list(range(k))
        self.seed_of = [seeds.index(c["seed"]) for c in configs]
        self.pending: list[Any] = []  # the losses since the last read-back, on the device
        self.alive = np.ones(k, dtype=bool)  # training: neither diverged nor stopped early
        self.saved = self._copy(self.params)
        self.stopper = None if patience is None else EarlyStopping(k, patience)
        self.best = None  # with patience: the best evaluation's params and optimizer slots
        self.seconds, self.steps_done, self.done = 0.0, 0, False
        self.parked = False
        self.at: int | None = None  # the step train_to last stopped after

    # --- one step, one evaluation ------------------------------------------------------

    def step(self, xb: Any, tb: Any) -> None:
        """One training step of every row; its losses wait on the device."""
        params = self.params
        loss = self.stepper(params, xb, tb, self.weight_decay)
        if not bool(self.alive.all()):  # frozen members keep their parameters
            for n in params:
                params[n] = self.xp.where(self.active, params[n], self.saved[n])
        self.pending.append(loss)

    def batch_rows(self, chunks: tuple, offset: int) -> np.ndarray:
        """(S, B) rows shared by the stack, or (S, K, B): each model its seed's rows."""
        streams_used = [self.seed_of[m] for m in self.members]
        if len(set(streams_used)) == 1:
            return chunks[streams_used[0]][1][offset:, ...]
        return np.stack([c[1][offset:, ...] for c in chunks], axis=1)[:, streams_used]

    def evaluate(self, step: int) -> None:
        """Read the losses back, evaluate every live row; freeze the rows that diverged
        or ran out of patience."""
        data = self.data
        losses = to_numpy(self.xp.stack(self.pending))  # (steps, K)
        self.pending.clear()
        histories = [self.records[m].history for m in self.members]
        diverged = []
        for r in np.flatnonzero(self.alive):
            h = histories[r]
            col = losses[:, r]
            bad = np.flatnonzero(~np.isfinite(col))
            if bad.size:  # keep the losses up to the first bad one, as train() raises there
                h.loss.extend(float(v) for v in col[: bad[0] + 1])
                diverged.append(r)
                continue
            since = len(h.loss)
            h.loss.extend(float(v) for v in col)
            if is_runaway(h.loss[0], float(np.mean(h.loss[since:]))) and since > 0:
                diverged.append(r)
        train, _ = self._totals(self.params, data.x, data.labels)
        test = None
        if data.test is not None and data.val is None:  # with validation: once, at the end
            test, _ = self._totals(self.params, *data.test)
        val = None if data.val is None else self._totals(self.params, *data.val, loss=True)
        n_train = int(data.x.shape[0])
        scored = []
        for r in np.flatnonzero(self.alive):
            h = histories[r]
            if r in diverged and not np.isfinite(h.loss[-1]):
                continue  # NaN: no evaluation of broken parameters
            h.eval_steps.append(step)
            h.train_acc.append(int(train[r]) / n_train)
            if test is not None:
                h.test_acc.append(int(test[r]) / int(data.test[0].shape[0]))
            if val is not None:
                n_val = int(data.val[0].shape[0])
                h.val_acc.append(int(val[0][r]) / n_val)
                h.val_loss.append(float(val[1][r]) / n_val)
                if r not in diverged:
                    scored.append(r)
        self.freeze(diverged)
        if self.stopper is not None and scored:
            self._track_best(np.asarray(scored), histories, step)
        self.saved = self._copy(self.params)

    def _track_best(self, rows: np.ndarray, histories: list[Any], step: int) -> None:
        """Early stopping's bookkeeping for the rows just scored on the validation set."""
        acc = [histories[r].val_acc[-1] for r in rows]
        loss = [histories[r].val_loss[-1] for r in rows]
        up, out = self.stopper.update(rows, acc, loss, step)
        for r in rows[up]:
            histories[r].best_step = step
        if self.best is None:  # the first evaluation: every row's best so far
            self.best = self._state_copy()
        elif up.any():
            mask = self._row_mask(rows[up])
            where = self.xp.where
            best, params = self.best, self.params
            best["params"] = {n: where(mask, params[n], v) for n, v in best["params"].items()}
            for s, slot in self.optimizer.state.items():
                best["slots"][s] = {
                    n: where(mask, slot[n], v) for n, v in best["slots"][s].items()
                }
        for r in rows[out]:
            histories[r].stopped_step = step
        self.freeze(rows[out].tolist(), early=True)

    def freeze(self, rows: Sequence[int], *, early: bool = False) -> None:
        """Freeze ``rows``: diverged (they keep their last evaluated parameters) or, with
        ``early``, out of patience (they take their best evaluation's); from now on every
        step keeps them there."""
        if not len(rows):
            return
        for r in rows:
            self.alive[r] = False
            if not early:
                record = self.records[self.members[r]]
                record.diverged = record.history.diverged = True
        self.active = self._row_mask(np.flatnonzero(self.alive))
        source = self.best["params"] if early else self.saved
        mask = self._row_mask(list(rows))
        for n in self.params:
            self.params[n] = self.xp.where(mask, source[n], self.params[n])

    # --- segments ----------------------------------------------------------------------

    def train_to(
        self, stop: int | None = None, on_steps: Callable[[int], Any] | None = None
    ) -> bool:
        """Train through the evaluation at step ``stop`` (None: to the last step).

        Returns True once the stack is done: its last step trained, or no row left
        training; every row's record is then complete (:meth:`finish`). ``on_steps(n)``
        after each run of ``n`` steps; a stack done early counts its remaining steps.
        """
        if self.done:
            return True
        self.unpark()
        sizes, k = self.sizes, len(self.members)
        flops = 2 * k * self.batch_size * sizes[0] * sizes[1]  # the stack's first matmul
        start, compiling = time.perf_counter(), self.stepper.compile_seconds
        reached = False
        with (
            warnings.catch_warnings(),
            np.errstate(over="ignore", invalid="ignore"),
            blas_threads(flops, self.backend),
        ):
            # a diverging member may overflow before it is frozen; the others are unaffected
            warnings.simplefilter("ignore", RuntimeWarning)
            while not reached and self.members and self.alive.any():
                if self._current is None:
                    chunks = next(self._chunks, None)
                    if chunks is None:
                        break
                    self._current = (chunks, 0)
                chunks, before = self._current
                reached = self._train_chunk(stop)
                ran = (self._current[1] if self._current else _steps(chunks)) - before
                self.steps_done += ran
                if on_steps is not None:
                    on_steps(ran)
            self.backend.synchronize()
        # compilation is not training time (xpnet.train's loop_seconds neither)
        self.seconds += time.perf_counter() - start - (self.stepper.compile_seconds - compiling)
        if reached:
            self.at = stop
            return False
        if on_steps is not None and self.steps_done < self.iters:
            on_steps(self.iters - self.steps_done)
        self.finish()
        return True

    def _train_chunk(self, stop: int | None) -> bool:
        """Steps of the chunk under way; True when it stopped after ``stop``'s evaluation."""
        chunks, offset = self._current
        first, n_steps = chunks[0][0], _steps(chunks)
        while offset < n_steps and self.alive.any():
            rows = self.backend.asarray(self.batch_rows(chunks, offset))
            blocks = batch_blocks(self.data.x, self.data.t_hot, rows, self.dtype)
            for step, (xb, tb) in enumerate(blocks, start=first + offset):
                offset += 1
                self.step(xb, tb)
                if step % self.interval == 0 or step == self.iters - 1:
                    self.evaluate(step)
                    if step == stop or not self.alive.any():
                        # the rest of this block was gathered for the stack as it was
                        self._current = (chunks, offset) if offset < n_steps else None
                        return step == stop
        self._current = None
        return False

    def live(self) -> list[int]:
        """The configs (indices into this group's) still training."""
        return [self.members[r] for r in np.flatnonzero(self.alive)]

    def cut(self, keep: Sequence[int], step: int) -> None:
        """Go on with the configs ``keep`` (live ones) only, after ``step``'s evaluation.

        Every other row leaves the stack with its record complete: a live one with
        ``stopped_at = step``; a diverged one, or one that stopped early, keeps None.
        """
        wanted = set(keep)
        rows = [r for r, m in enumerate(self.members) if m in wanted and self.alive[r]]
        if self.done or len(rows) == len(self.members):
            return
        self.unpark()
        leaving = sorted(set(range(len(self.members))) - set(rows))
        for r in leaving:
            record = self.records[self.members[r]]
            if self.alive[r]:
                record.stopped_at = step
            self._times(record.history)
        self._hand_over(leaving)
        self.members = [self.members[r] for r in rows]
        if not rows:
            self.done = True
            return
        index = self.backend.asarray(np.asarray(rows, dtype=np.int64))
        xp, b = self.xp, self.backend
        self.params = {n: take_models(n, v, index, b) for n, v in self.params.items()}
        self.saved = {n: take_models(n, v, index, b) for n, v in self.saved.items()}
        for slot in self.optimizer.state.values():  # the step counter (Adam's t) is shared
            for n in slot:
                slot[n] = take_models(n, slot[n], index, b)
        if self.best is not None:
            self._map_best(lambda a: {n: take_models(n, v, index, b) for n, v in a.items()})
        if self.stopper is not None:
            self.stopper.take(rows)
        for h in self.opt_cls.HYPER:  # through the optimizer's setter: it drops its device copy
            setattr(self.optimizer, h, per_model_take(self.optimizer.hyper[h], index, xp))
        self.sgd_lr = self.optimizer.hyper["lr"] if self.opt_cls is SGD else None
        self.weight_decay = per_model_take(self.weight_decay, index, xp)
        self.alive = np.ones(len(rows), dtype=bool)  # only live rows stay
        self.active = xp.ones((len(rows), 1, 1), dtype=xp.bool, device=self.backend.device)

    def finish(self) -> None:
        """Complete the records of every row still in the stack (the end of training)."""
        if self.done:
            return
        self.unpark()
        for m in self.members:
            self._times(self.records[m].history)
        self._hand_over(list(range(len(self.members))))
        self.done = True

    def train(self, on_steps: Callable[[int], Any] | None = None) -> list[SweepRecord]:
        """Train to the last step; a record per config, in config order."""
        self.train_to(None, on_steps)
        return self.records

    # --- what leaves the stack ---------------------------------------------------------

    def _hand_over(self, rows: Sequence[int]) -> None:
        """The final test accuracy (with validation) and, with ``keep_params``, the
        parameters and optimizer state of ``rows``: the best evaluation's with patience."""
        if not rows:
            return
        params = self.params if self.best is None else self.best["params"]
        if self.data.val is not None and self.data.test is not None:
            test, _ = self._totals(params, *self.data.test)
            for r in rows:
                h = self.records[self.members[r]].history
                h.final_test_acc = int(test[r]) / int(self.data.test[0].shape[0])
        if not self.keep_params:
            return
        host = host_copy(params)
        slots = self.optimizer.state if self.best is None else self.best["slots"]
        host_slots = {s: host_copy(a) for s, a in slots.items()}
        for r in rows:
            record = self.records[self.members[r]]
            h = record.history
            steps = len(h.loss) if h.best_step is None else h.best_step + 1
            if self.sgd_lr is not None:  # folded into backprop, which counts no updates
                steps = 0
            record.params = member_params(host, r)
            record.optimizer_state = member_optimizer_state(record.config, host_slots, r, steps)

    # --- parking -----------------------------------------------------------------------

    def park(self) -> None:
        """Move the stack's state to the host while other stacks use the device."""
        if self.parked or self.done:
            return
        self.params, self.saved = host_copy(self.params), host_copy(self.saved)
        for s, slot in self.optimizer.state.items():
            self.optimizer.state[s] = host_copy(slot)
        if self.best is not None:
            self._map_best(host_copy)
        self.parked = True

    def unpark(self) -> None:
        """Bring a parked stack's state back to the device, in its training layout."""
        if not self.parked:
            return
        b, dtype = self.backend, self.dtype
        self.params, self.saved = to_device(self.params, b, dtype), to_device(self.saved, b, dtype)
        for s, slot in self.optimizer.state.items():
            self.optimizer.state[s] = to_device(slot, b, dtype)
        if self.best is not None:
            self._map_best(lambda a: to_device(a, b, dtype))
        self.parked = False

    # --- helpers -----------------------------------------------------------------------

    def _times(self, history: Any) -> None:
        history.loop_seconds = self.seconds
        history.compile_seconds, history.compiles = (
            self.stepper.compile_seconds,
            self.stepper.compiles,
        )

    def _copy(self, arrays: dict[str, Any]) -> dict[str, Any]:
        return {n: self.xp.asarray(v, copy=True) for n, v in arrays.items()}

    def _state_copy(self) -> dict[str, Any]:
        """Copies of the parameters and of the optimizer's slots."""
        slots = {s: self._copy(slot) for s, slot in self.optimizer.state.items()}
        return {"params": self._copy(self.params), "slots": slots}

    def _map_best(self, f: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        """Apply ``f`` to each dict of arrays of the best evaluation's state."""
        self.best["params"] = f(self.best["params"])
        self.best["slots"] = {s: f(a) for s, a in self.best["slots"].items()}

    def _row_mask(self, rows: Sequence[int]) -> Any:
        """(K, 1, 1) booleans: True on ``rows`` (``where``'s mask)."""
        mask = np.zeros(len(self.members), dtype=bool)
        mask[np.asarray(rows, dtype=np.int64)] = True
        return self.backend.asarray(mask.reshape(-1, 1, 1))

    def _totals(self, params: dict[str, Any], x: Any, labels: Any, *, loss: bool = False) -> Any:
        """Correct rows per model over a whole set (and the summed loss), read back."""
        correct, total = set_totals(params, x, labels, self.activation, scale=self.scale,
                                    loss=loss)  # fmt: skip
        if not loss:
            return to_numpy(correct), None
        return to_numpy(correct), to_numpy(total)


def _steps(chunks: tuple) -> int:
    return int(chunks[0][1].shape[0])
