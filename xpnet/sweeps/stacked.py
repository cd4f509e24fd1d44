"""One stackable group of configs trained as one model with a leading model axis."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from array_api_compat import array_namespace, is_writeable_array

from .._threads import blas_threads
from ..backends import Backend, to_numpy
from ..mlp import correct_count, loss_and_grads
from ..nets import EVAL_CHUNK, init_params
from ..optimizers import OPTIMIZERS, SGD
from ..scaling import input_scale
from ..training import batch_blocks, batch_chunks, is_runaway
from .configs import normalize, unit_key
from .device import DeviceData
from .halving import check_rungs, survivors
from .plan import stack_key
from .records import SweepRecord


class StackedGroup:
    """K normalized configs (same layer sizes, activation, optimizer) as one model.

    Row r of every stacked array is the model of config ``members[r]``; rows are cut at
    successive-halving rungs (:meth:`shrink`), and a diverged row is frozen in place
    (:meth:`freeze`) while the others train on. Each member computes what
    :func:`xpnet.train` computes for its config alone.

    Parameters
    ----------
    configs : list of dict
        The group's configs (normalized here).
    data : DeviceData
        The data set on the device the stack trains on.
    iters, batch_size, eval_interval
        As for :func:`xpnet.train`.
    halving : sequence of int, optional
        Rung steps (see :func:`xpnet.sweeps.sweep`).
    """

    def __init__(
        self,
        configs: list[dict[str, Any]],
        data: DeviceData,
        *,
        iters: int,
        batch_size: int,
        eval_interval: int | None = None,
        halving: Sequence[int] | None = None,
    ) -> None:
        b = self.backend = data.backend
        self.xp, self.data = b.xp, data
        configs = [normalize(c) for c in configs]
        first = configs[0]
        if any(stack_key(c) != stack_key(first) for c in configs):
            raise ValueError("run_group: configs differ in layer sizes, activation or optimizer")
        k = len(configs)
        n_train = int(data.x.shape[0])
        self.sizes = (int(data.x.shape[1]), *first["hidden_sizes"], data.classes)
        self.iters, self.batch_size = iters, batch_size
        self.interval = eval_interval or max(n_train // batch_size, 1)
        self.rungs = set(check_rungs(halving, iters=iters, interval=self.interval))
        self.activation, self.dtype = first["activation"], b.float_dtype

        # Each member's initial weights, exactly as its own net would draw them.
        hosts = [init_params(self.sizes, c["weight_init_std"], c["seed"]) for c in configs]
        self.params = stack_params(hosts, b, self.dtype)
        like = self.params["W1"]
        self.weight_decay = _per_model([c["weight_decay"] for c in configs], like, b)
        self.opt_cls = OPTIMIZERS[first["optimizer"]]
        hyper = {h: _per_model([c[h] for c in configs], like, b) for h in self.opt_cls.HYPER}
        self.optimizer = self.opt_cls(**hyper)
        self.sgd_lr = hyper["lr"] if self.opt_cls is SGD else None
        self.in_place = is_writeable_array(like)
        self.active = self.xp.ones((k, 1, 1), dtype=self.dtype, device=b.device)

        seeds = sorted({c["seed"] for c in configs})
        # Every seed's stream keeps drawing after its configs stopped, as the draws of one
        # interval come from one host call; only the rows of running members are gathered.
        self.streams = [batch_chunks(s, n_train, batch_size, self.interval, iters) for s in seeds]
        self.scale = input_scale(data.x)

        self.records = [SweepRecord(dict(c)) for c in configs]
        #: ``members[r]``: the config of row r (increasing: config order).
        self.members = list(range(k))
        self.seed_of = [seeds.index(c["seed"]) for c in configs]
        self.unit_of = [unit_key(c) for c in configs]  # what halving keeps or stops together
        self.pending: list[Any] = []  # the losses since the last read-back, on the device
        self.alive = np.ones(k, dtype=bool)
        self.saved = {n: self.xp.asarray(v, copy=True) for n, v in self.params.items()}
        self.start = time.perf_counter()

    def step(self, xb: Any, tb: Any) -> None:
        """One training step of every row; its losses wait on the device."""
        params = self.params
        step = self.sgd_lr if self.sgd_lr is not None else 1.0
        loss, grads = loss_and_grads(params, xb, tb, self.activation, scale=self.scale,
                                     step=step, weight_decay=self.weight_decay)  # fmt: skip
        if self.sgd_lr is None:
            self.optimizer.update(params, grads)
        elif self.in_place:
            for n, g in grads.items():
                params[n] -= g
        else:
            for n, g in grads.items():
                params[n] = params[n] - g
        if not bool(self.alive.all()):  # frozen members keep their parameters
            for n in params:
                params[n] = self.xp.where(self.active > 0, params[n], self.saved[n])
        self.pending.append(loss)

    def batch_rows(self, chunks: tuple, offset: int) -> np.ndarray:
        """(S, B) rows shared by the stack, or (S, K, B): each model its seed's rows."""
        streams_used = [self.seed_of[m] for m in self.members]
        if len(set(streams_used)) == 1:
            return chunks[streams_used[0]][1][offset:, ...]
        return np.stack([c[1][offset:, ...] for c in chunks], axis=1)[:, streams_used]

    def evaluate(self, step: int) -> None:
        """Read the losses back, evaluate every live row, freeze the rows that diverged."""
        xp, data = self.xp, self.data
        losses = to_numpy(xp.stack(self.pending))  # (steps, K)
        self.pending.clear()
        histories = [self.records[m].history for m in self.members]
        newly = []
        for r in np.flatnonzero(self.alive):
            h = histories[r]
            col = losses[:, r]
            bad = np.flatnonzero(~np.isfinite(col))
            if bad.size:  # keep the losses up to the first bad one, as train() raises there
                h.loss.extend(float(v) for v in col[: bad[0] + 1])
                newly.append(r)
                continue
            since = len(h.loss)
            h.loss.extend(float(v) for v in col)
            if is_runaway(h.loss[0], float(np.mean(h.loss[since:]))) and since > 0:
                newly.append(r)
        counts = self._correct_counts(data.x, data.labels)
        test = None if data.test is None else self._correct_counts(*data.test)
        n_train = int(data.x.shape[0])
        for r in np.flatnonzero(self.alive):
            h = histories[r]
            if r in newly and not np.isfinite(h.loss[-1]):
                continue  # NaN: no evaluation of broken parameters
            h.eval_steps.append(step)
            h.train_acc.append(int(counts[r]) / n_train)
            if test is not None:
                h.test_acc.append(int(test[r]) / int(data.test[0].shape[0]))
        self.freeze(newly)
        for n in self.params:
            self.saved[n] = xp.asarray(self.params[n], copy=True)

    def freeze(self, rows: Sequence[int]) -> None:
        """Mark ``rows`` diverged and put back their last evaluated parameters; from now on
        every step keeps them there."""
        if not len(rows):
            return
        for r in rows:
            self.alive[r] = False
            record = self.records[self.members[r]]
            record.diverged = record.history.diverged = True
        self.active = self.backend.asarray(
            self.alive.astype(np.float64).reshape(-1, 1, 1), dtype=self.dtype
        )
        for n in self.params:
            self.params[n] = self.xp.where(self.active > 0, self.params[n], self.saved[n])

    def shrink(self, keep: list[int], step: int) -> bool:
        """Cut the stack to rows ``keep``; the others stop at this rung. True if it cut."""
        if len(keep) == len(self.members):  # a stack of one keeps it: ceil(1 / 2) = 1
            return False
        xp, now = self.xp, time.perf_counter() - self.start
        for r in sorted(set(range(len(self.members))) - set(keep)):
            self.records[self.members[r]].stopped_at = step
            self.records[self.members[r]].history.loop_seconds = now
        self.members = [self.members[r] for r in keep]
        if not keep:
            return True
        index = self.backend.asarray(np.asarray(keep, dtype=np.int64))
        for n in self.params:
            self.params[n] = _take_models(n, self.params[n], index, self.backend)
            self.saved[n] = _take_models(n, self.saved[n], index, self.backend)
        for slot in self.optimizer.state.values():  # the step counter (Adam's t) is shared
            for n in slot:
                slot[n] = _take_models(n, slot[n], index, self.backend)
        for h in self.opt_cls.HYPER:  # through the optimizer's setter: it drops its device copy
            setattr(self.optimizer, h, _per_model_take(self.optimizer.hyper[h], index, xp))
        self.sgd_lr = self.optimizer.hyper["lr"] if self.opt_cls is SGD else None
        self.weight_decay = _per_model_take(self.weight_decay, index, xp)
        # survivors are all live: diverged members never survive a rung
        self.alive = np.ones(len(keep), dtype=bool)
        self.active = xp.ones((len(keep), 1, 1), dtype=self.dtype, device=self.backend.device)
        return True

    def train_chunk(self, chunks: tuple) -> None:
        """The steps of one interval's batch draws (one chunk per seed stream)."""
        first_step, n_steps = chunks[0][0], chunks[0][1].shape[0]
        offset = 0
        while offset < n_steps and self.members:
            rows = self.backend.asarray(self.batch_rows(chunks, offset))
            blocks = batch_blocks(self.data.x, self.data.t_hot, rows, self.dtype)
            for step, (xb, tb) in enumerate(blocks, start=first_step + offset):
                offset += 1
                self.step(xb, tb)
                if step % self.interval == 0 or step == self.iters - 1:
                    self.evaluate(step)
                    if step in self.rungs and self.halve(step):
                        break  # the rest of this block was gathered for the old stack

    def halve(self, step: int) -> bool:
        """Keep the better half at rung ``step`` (see :func:`survivors`); True if it cut."""
        histories = [self.records[m].history for m in self.members]
        units = [self.unit_of[m] for m in self.members]
        return self.shrink(survivors(histories, self.alive, units), step)

    def train(self, on_steps: Callable[[int], Any] | None = None) -> list[SweepRecord]:
        """Train to the last step; a record per config, in config order.

        ``on_steps(n)`` after each interval's ``n`` steps (all of them counted, also when
        every member stopped early).
        """
        sizes, k = self.sizes, len(self.members)
        flops = 2 * k * self.batch_size * sizes[0] * sizes[1]  # the stack's first matmul
        self.start = time.perf_counter()
        done = 0
        with (
            warnings.catch_warnings(),
            np.errstate(over="ignore", invalid="ignore"),
            blas_threads(flops, self.backend),
        ):
            # a diverging member may overflow before it is frozen; the others are unaffected
            warnings.simplefilter("ignore", RuntimeWarning)
            for chunks in zip(*self.streams, strict=True):
                self.train_chunk(chunks)
                n_steps = chunks[0][1].shape[0]
                done += n_steps
                if on_steps is not None:
                    on_steps(n_steps)
                if not self.members:  # every member diverged and was dropped
                    break
            self.backend.synchronize()
        if on_steps is not None and done < self.iters:
            on_steps(self.iters - done)
        seconds = time.perf_counter() - self.start
        for m in self.members:
            self.records[m].history.loop_seconds = seconds
        return self.records

    def _correct_counts(self, x: Any, labels: Any) -> np.ndarray:
        """Correct rows per model over a whole set, in chunks; one read-back."""
        params, n, total = self.params, int(x.shape[0]), None
        for s in range(0, n, EVAL_CHUNK):
            e = min(n, s + EVAL_CHUNK)
            xc = x[s:e, ...]
            if xc.dtype != params["W1"].dtype:
                xc = array_namespace(xc).astype(xc, params["W1"].dtype)  # once for all K
            c = correct_count(params, xc, labels[s:e, ...], self.activation, scale=self.scale)
            total = c if total is None else total + c
        return to_numpy(total)


def run_group(
    configs: list[dict[str, Any]],
    data: DeviceData,
    *,
    iters: int,
    batch_size: int,
    eval_interval: int | None = None,
    on_steps: Callable[[int], Any] | None = None,
    halving: Sequence[int] | None = None,
) -> list[SweepRecord]:
    """Train one stackable group of normalized configs as one model; a record each.

    ``halving`` rungs (see :func:`xpnet.sweeps.sweep`) cut the stack to its better half
    at each rung.
    """
    group = StackedGroup(configs, data, iters=iters, batch_size=batch_size,
                         eval_interval=eval_interval, halving=halving)  # fmt: skip
    return group.train(on_steps)


def stack_params(hosts: list[dict[str, Any]], like: Backend, dtype: Any) -> dict[str, Any]:
    """K nets' host parameters as one stacked set on ``like``'s backend (a Backend).

    ``Wi`` becomes (K, D_in, D_out) stored model axis second (a transposed view of a
    (D_in, K, D_out) array), so a batch shared by all K meets it in one matrix product;
    on a backend with ``contiguous_stacked_weights`` (CuPy) the weights of layers 2..
    are C-contiguous instead. ``bi`` becomes (K, 1, D_out).
    """
    xp = like.xp
    out = {}
    for name in hosts[0]:
        if name[0] == "W" and model_axis_second(name, like):
            stack = np.stack([h[name] for h in hosts], axis=1)  # (D_in, K, D_out)
            out[name] = xp.permute_dims(like.asarray(stack, dtype=dtype), (1, 0, 2))
        elif name[0] == "W":
            out[name] = like.asarray(np.stack([h[name] for h in hosts]), dtype=dtype)
        else:
            out[name] = like.asarray(np.stack([h[name] for h in hosts])[:, None, :], dtype=dtype)
    return out


def model_axis_second(name: str, b: Backend) -> bool:
    """Whether stacked weight ``name`` is stored model axis second (see :func:`stack_params`)."""
    return name == "W1" or not b.contiguous_stacked_weights


def _per_model(values: list[float], like: Any, b: Backend) -> Any:
    """One hyperparameter for K models: a number when they agree, else (K, 1, 1)."""
    if all(v == values[0] for v in values):
        return float(values[0])
    return b.asarray(np.asarray(values, dtype=np.float64).reshape(-1, 1, 1), dtype=like.dtype)


def _take_models(name: str, a: Any, index: Any, b: Backend) -> Any:
    """The models ``index`` of a stacked array: ``Wi`` (K, D, H) kept in the layout of
    :func:`stack_params` (model axis second: the shared-batch matmul reads it without a
    copy); anything else (K, ...) along its first axis."""
    xp = b.xp
    if name[0] == "W" and model_axis_second(name, b):
        return xp.permute_dims(xp.take(xp.permute_dims(a, (1, 0, 2)), index, axis=1), (1, 0, 2))
    return xp.take(a, index, axis=0)


def _per_model_take(v: Any, index: Any, xp: Any) -> Any:
    """A hyperparameter of the survivors: a number stays; a (K, 1, 1) array is cut."""
    return v if isinstance(v, int | float) else xp.take(v, index, axis=0)
